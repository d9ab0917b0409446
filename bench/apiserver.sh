#!/usr/bin/env bash
# API server benchmarks (not tests): cold and warm start to /readyz, idle RSS with 1 and 20
# projects, and write throughput (objects/s). Writes bench/results/apiserver-<time>.txt.
set -euo pipefail
# An older binary (a BASE) has no DNS server and no --dns-addr.
dnsflag() {
	"$1" dev --help 2>&1 | grep -q -- --dns-addr && echo -n "--dns-addr 127.0.0.1:0 "
	# Nor the tunnel endpoint's 9443 (on by default since issue 18).
	"$1" dev --help 2>&1 | grep -q -- --tunnel-addr && echo -n "--tunnel-addr 127.0.0.1:0"
	echo
}
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/apoxy}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl (apt-get install curl)" >&2; exit 1; }
out=bench/results/apiserver-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results
exec > >(tee "$out") 2>&1

echo "# apoxy API server benchmarks, $(date -u)"
echo "# machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); $("$BIN" version --client)"

admin=127.0.0.1:19911
api=127.0.0.1:16911
ms() { date +%s%3N; }
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/"$1"/status; }
wait_ready() { until curl -sf "http://$admin/readyz" >/dev/null; do sleep 0.005; done; }

start_server() { # $1 data dir; sets pid and took (ms)
  local t0; t0=$(ms)
  "$BIN" dev --data-dir "$1" --api-addr "$api" --admin-addr "$admin" --http-port 18080 --https-port 18443 $(dnsflag "$BIN") >/dev/null 2>&1 &
  pid=$!
  wait_ready
  took=$(( $(ms) - t0 ))
}

echo
echo "## start to /readyz (ms), 5 runs each"
cold=(); warm=()
for i in 1 2 3 4 5; do
  dir=$(mktemp -d)
  start_server "$dir"; cold+=("$took"); kill -TERM "$pid"; wait "$pid" || true
  start_server "$dir"; warm+=("$took"); kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir"
done
echo "cold (new data dir): ${cold[*]}"
echo "warm (existing data dir): ${warm[*]}"

echo
echo "## idle RSS (MiB, 5 s after the last change)"
dir=$(mktemp -d)
start_server "$dir"
sleep 5; echo "1 project: $(rss "$pid")"
for i in $(seq 2 20); do "$BIN" --config "$dir/config.yaml" project create "p$i" >/dev/null; done
sleep 5; echo "20 projects: $(rss "$pid")"
kill -TERM "$pid"; wait "$pid" || true
rm -rf "$dir"

echo
echo "## write throughput (go test -bench, HTTPS + validation + SQLite synchronous=FULL)"
go test -run '^$' -bench 'BenchmarkCreateBackend|BenchmarkColdStart' -benchtime 3s -count 1 ./internal/apiserver/ | grep -E '^(Benchmark|ok)'
echo
echo "results: $out"
