#!/usr/bin/env bash
# bench/density.sh [BIN] [N]: what idle projects cost. Starts `apoxy dev` (BIN, default: built
# from this tree) on its own ports and data directory, creates projects until there are N
# (default 20), lets it settle, then prints RSS, goroutines (admin /debug/pprof) and CPU used
# over 30 idle seconds, in total and per project. Compare two binaries (BASE and HEAD) run one
# after the other on a quiet machine.
set -eu
# An older binary (a BASE) has no DNS server and no --dns-addr.
dnsflag() {
	"$1" dev --help 2>&1 | grep -q -- --dns-addr && echo -n "--dns-addr 127.0.0.1:0 "
	# Nor the tunnel endpoint's 9443 (on by default since issue 18).
	"$1" dev --help 2>&1 | grep -q -- --tunnel-addr && echo -n "--tunnel-addr 127.0.0.1:0"
	echo
}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-}
N=${2:-20}
if [ -z "$BIN" ]; then BIN=/tmp/apoxy-density; (cd "$ROOT" && go build -o "$BIN" ./cmd/apoxy); fi
D=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
"$BIN" dev --data-dir "$D" --api-addr 127.0.0.1:26443 --admin-addr 127.0.0.1:29901 --http-port 28080 --https-port 28443 $(dnsflag "$BIN") > "$D/log" 2>&1 &
PID=$!
for i in $(seq 1 300); do curl -sf http://127.0.0.1:29901/readyz >/dev/null && break; sleep 0.2; done
export APOXY_CONFIG=$D/config.yaml
for i in $(seq 2 "$N"); do "$BIN" project create "p$i" >/dev/null; done
for i in $(seq 1 300); do curl -sf http://127.0.0.1:29901/readyz >/dev/null && break; sleep 0.2; done
sleep 30
ticks() { awk '{print $14+$15}' /proc/$PID/stat; }
t0=$(ticks); sleep 30; t1=$(ticks)
rss=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
gor=$(curl -s 'http://127.0.0.1:29901/debug/pprof/goroutine?debug=1' | head -1 | awk '{print $NF}')
hz=$(getconf CLK_TCK)
awk -v n="$N" -v rss="$rss" -v g="$gor" -v t=$((t1 - t0)) -v hz="$hz" -v bin="$BIN" 'BEGIN{
  printf "%s: %d projects idle: RSS %.0f MiB (%.1f MiB/project), %d goroutines (%.0f/project), CPU %.1f%% of a core\n",
    bin, n, rss/1024, rss/1024/n, g, g/n, t/hz/30*100 }'
# The collector's setting and live heap: the GC runway floor (--gc-runway) must not raise GOGC
# once the live heap is larger than the runway.
curl -s http://127.0.0.1:29901/metrics | awk '/^go_gc_gogc_percent /{g=$2} /^go_memstats_heap_inuse_bytes /{h=$2} END{ if (g != "") printf "GOGC %s, heap in use %.0f MiB\n", g, h/1048576 }'
