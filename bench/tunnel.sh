#!/usr/bin/env bash
# bench/tunnel.sh: `make bench-tunnel`. The gateway (`apoxy dev`) in front of the bench backend
# five ways: directly (a Backend at 127.0.0.1), through a user-mode agent on this machine
# (`apoxy tunnel run`, a Backend at its node's name in the tunnel domain), and through a
# kernel-mode agent in a network namespace (a TUN device; its own backend there, reached over
# a veth link; skipped when namespaces cannot be made); each agent twice: connections as QUIC
# streams (the default) and as IP packets (--packets: user-*-pkt rows). For each, interleaved over ROUNDS:
# bulk throughput (one 200 MB download, curl) and the latency of a small GET on one kept-alive
# connection (wrk -c1, p50/p99); and the backend itself as the reference. The agent's TCP
# retransmits over the bulk runs are the tunnel's loss.
#
# Environment: ROUNDS (default 3), DUR (per wrk run, default 5s), BULK (bytes, default
# 200000000), BENCH_DIR (scratch, default /tmp/apoxy-bench-tunnel). Installs nothing.
set -u
ROUNDS=${ROUNDS:-3}; DUR=${DUR:-5s}; BULK=${BULK:-200000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd); B=${BENCH_DIR:-/tmp/apoxy-bench-tunnel}
missing=()
for t in wrk curl go python3 ip; do command -v $t >/dev/null || missing+=($t); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-tunnel: missing ${missing[*]}; install them with: apt-get install -y wrk curl python3 iproute2" >&2
  exit 2
fi
BACKEND=19100; HTTP=18177; TUNNEL=19443
for p in $BACKEND $HTTP 18147 19911 16543 19912 19913; do
  if ss -Hltn "sport = :$p" | grep -q .; then echo "bench-tunnel: port $p is in use" >&2; exit 2; fi
done
rm -rf $B; mkdir -p $B/{bin,conf,log,res}
RES=$B/res
(cd $ROOT && go build -trimpath -o $B/bin/backend ./bench/backend && go build -trimpath -o $B/bin/apoxy ./cmd/apoxy) || exit 1

declare -A PID
start() { local n=$1; shift; "$@" > $B/log/$n.out 2> $B/log/$n.err & PID[$n]=$!; }
NS=apxbench$$
cleanup() {
  for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null; done; wait 2>/dev/null
  for n in $NS ${NS2:-}; do
    ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null
    ip link del ${n}h 2>/dev/null; ip netns del $n 2>/dev/null
  done
}
trap cleanup EXIT

# The kernel-mode agents' namespaces (streams, packets), each joined by a veth pair:
# 10.232.0.1 here, .2 there; 10.232.0.5 and .6.
NS2=apxbenchp$$
netns() { # name, host address, peer address
  ip netns add $1 && ip link add ${1}h type veth peer name ${1}p netns $1 &&
  ip addr add $2/30 dev ${1}h && ip link set ${1}h up &&
  ip -n $1 addr add $3/30 dev ${1}p && ip -n $1 link set ${1}p up && ip -n $1 link set lo up
}
KERNEL=1
if ! { netns $NS 10.232.0.1 10.232.0.2 && netns $NS2 10.232.0.5 10.232.0.6; } 2>$B/log/netns.err; then
  echo "bench-tunnel: no network namespace here ($(cat $B/log/netns.err)); the kernel-mode rows are skipped" >&2
  KERNEL=0
fi

start backend $B/bin/backend -addr 127.0.0.1:$BACKEND
TADDR=127.0.0.1:$TUNNEL; [ $KERNEL = 1 ] && TADDR=0.0.0.0:$TUNNEL
start apoxy $B/bin/apoxy dev --data-dir $B/apoxy --http-port $HTTP --https-port 18147 --admin-addr 127.0.0.1:19911 \
  --api-addr 127.0.0.1:16543 --dns-addr 127.0.0.1:0 --tunnel-addr $TADDR
for i in $(seq 1 100); do curl -sf http://127.0.0.1:19911/readyz >/dev/null && break; sleep 0.2; done
cat > $B/conf/routes.yaml <<EOF
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: direct}
spec: {endpoints: [{ip: 127.0.0.1}]}
---
apiVersion: core.apoxy.dev/v1alpha
kind: TunnelNode
metadata: {name: user-node}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: user}
spec: {endpoints: [{fqdn: user-node.tun.apoxy.net}]}
---
apiVersion: core.apoxy.dev/v1alpha
kind: TunnelNode
metadata: {name: kernel-node}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: kernel}
spec: {endpoints: [{fqdn: kernel-node.tun.apoxy.net}]}
---
apiVersion: core.apoxy.dev/v1alpha
kind: TunnelNode
metadata: {name: user-pkt-node}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: user-pkt}
spec: {endpoints: [{fqdn: user-pkt-node.tun.apoxy.net}]}
---
apiVersion: core.apoxy.dev/v1alpha
kind: TunnelNode
metadata: {name: kernel-pkt-node}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: kernel-pkt}
spec: {endpoints: [{fqdn: kernel-pkt-node.tun.apoxy.net}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: bench}
spec:
  parentRefs: [{name: default}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /direct}}]
    backendRefs: [{kind: Backend, name: direct, port: $BACKEND}]
  - matches: [{path: {type: PathPrefix, value: /user}}]
    backendRefs: [{kind: Backend, name: user, port: $BACKEND}]
  - matches: [{path: {type: PathPrefix, value: /kernel}}]
    backendRefs: [{kind: Backend, name: kernel, port: $BACKEND}]
  - matches: [{path: {type: PathPrefix, value: /userpkt}}]
    backendRefs: [{kind: Backend, name: user-pkt, port: $BACKEND}]
  - matches: [{path: {type: PathPrefix, value: /kernelpkt}}]
    backendRefs: [{kind: Backend, name: kernel-pkt, port: $BACKEND}]
EOF
export APOXY_CONFIG=$B/apoxy/config.yaml
$B/bin/apoxy apply -f $B/conf/routes.yaml > $B/log/apply.out 2>&1 || { cat $B/log/apply.out; exit 1; }
start agent-user $B/bin/apoxy tunnel run user-node --name bench --no-tui --socks-addr "" --dns-addr "" --health-addr 127.0.0.1:19912
start agent-user-pkt $B/bin/apoxy tunnel run user-pkt-node --name bench --no-tui --socks-addr "" --dns-addr "" --health-addr 127.0.0.1:19913 --packets
ORDER=(backend direct user user-pkt)
declare -A URL=([backend]=http://127.0.0.1:$BACKEND [direct]=http://127.0.0.1:$HTTP/direct [user]=http://127.0.0.1:$HTTP/user
  [kernel]=http://127.0.0.1:$HTTP/kernel [user-pkt]=http://127.0.0.1:$HTTP/userpkt [kernel-pkt]=http://127.0.0.1:$HTTP/kernelpkt)
if [ $KERNEL = 1 ]; then
  # The backends in the namespaces listen on [::] (the agents' overlay addresses reach them).
  for k in kernel:$NS:10.232.0.1: kernel-pkt:$NS2:10.232.0.5:--packets; do
    IFS=: read -r t ns ep extra <<< "$k"
    for i in $(seq 1 100); do tok=$($B/bin/apoxy tunnel get $t-node -o jsonpath='{.status.credentials.token}' 2>/dev/null); [ -n "$tok" ] && break; sleep 0.1; done
    start backend-$ns ip netns exec $ns $B/bin/backend -addr "[::]:$BACKEND"
    start agent-$t ip netns exec $ns $B/bin/apoxy tunnel run $t-node --mode kernel --name bench --no-tui \
      --token "$tok" --endpoint $ep:$TUNNEL --health-addr 127.0.0.1:19912 --dns-addr "" ${KMTU:+--mtu $KMTU} $extra
    ORDER+=($t)
  done
fi
for t in "${ORDER[@]}"; do
  for i in $(seq 1 200); do [ "$(curl -s -o /dev/null -w %{http_code} ${URL[$t]}/)" = 200 ] && break; sleep 0.1; done
  echo "$t: $(curl -s -o /dev/null -w '%{http_code}/%{size_download}' ${URL[$t]}/)"
done | tee $RES/sanity.txt
grep -qv ": 200/128$" $RES/sanity.txt && { echo "bench-tunnel: a target answered wrongly" >&2; tail -20 $B/log/*.err >&2; exit 1; }

ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'; }
retx() { curl -s http://127.0.0.1:$1/metrics | awk '/^apoxy_tunnel_agent_tcp_retransmits_total/{print $2+0}'; }
gwretx() { curl -s http://127.0.0.1:19911/metrics | awk '/^apoxy_tunnel_tcp_retransmits_total/{s+=$2} END{print s+0}'; }
echo "round,target,MBps,retransmits,gateway_retransmits" > $RES/bulk.csv
echo "round,target,rps,p50_ms,p99_ms" > $RES/latency.csv
for t in "${ORDER[@]}"; do wrk -t1 -c1 -d1s ${URL[$t]}/ > /dev/null; done
for r in $(seq 1 $ROUNDS); do
  for t in "${ORDER[@]}"; do
    hp=19912; [ $t = user-pkt ] && hp=19913
    r0=$(retx $hp); g0=$(gwretx)
    bps=$(curl -s -o /dev/null -w '%{speed_download}' "${URL[$t]}/bulk?n=$BULK")
    r1=$(retx $hp); g1=$(gwretx)
    rt=""; case $t in user|user-pkt) rt=$((r1-r0));; esac
    echo "$r,$t,$(awk -v b=$bps 'BEGIN{printf "%.1f", b/1e6}'),$rt,$((g1-g0))" | tee -a $RES/bulk.csv
    f=$RES/wrk-$t-$r.txt
    wrk -t1 -c1 -d$DUR --latency ${URL[$t]}/ > $f 2>&1
    echo "$r,$t,$(awk '/Requests\/sec/{print $2}' $f),$(ms $(awk '$1=="50%"{print $2}' $f)),$(ms $(awk '$1=="99%"{print $2}' $f))" | tee -a $RES/latency.csv
  done
done
out=$ROOT/bench/results/tunnel-$(date -u +%Y%m%dT%H%M%SZ).txt
{ echo "make bench-tunnel: $(date -u), $(nproc) CPUs, ROUNDS=$ROUNDS DUR=$DUR BULK=$BULK, go $(go env GOVERSION), commit $(cd $ROOT && git rev-parse --short HEAD)"
  echo "targets: backend (itself), direct (gateway -> backend), user (gateway -> user-mode agent -> backend), kernel (gateway -> kernel-mode agent in a netns -> backend); QUIC streams, and IP packets for the *-pkt rows"
  python3 - $RES <<'PY'
import csv, statistics, sys
res = sys.argv[1]
bulk = list(csv.DictReader(open(res + "/bulk.csv")))
lat = list(csv.DictReader(open(res + "/latency.csv")))
targets = list(dict.fromkeys(r["target"] for r in bulk))
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("\nbulk download (MB/s, median [min-max]); retransmits per run (agent / gateway side):")
for t in targets:
    v = [float(r["MBps"]) for r in bulk if r["target"] == t]
    rx = [r["retransmits"] for r in bulk if r["target"] == t and r["retransmits"]]
    gx = [r["gateway_retransmits"] for r in bulk if r["target"] == t]
    print(f"  {t:10s} {med(v):8.1f} [{min(v):.1f}-{max(v):.1f}]  retransmits agent {','.join(rx) or '-'} gateway {','.join(gx)}")
print("\nsmall GET on one kept-alive connection (wrk -c1): p50 / p99 ms, median of rounds; added = minus 'direct' in the same round:")
p50 = {t: [float(r["p50_ms"]) for r in lat if r["target"] == t] for t in targets}
p99 = {t: [float(r["p99_ms"]) for r in lat if r["target"] == t] for t in targets}
for t in targets:
    added = [a - b for a, b in zip(p50[t], p50.get("direct", []))]
    print(f"  {t:10s} p50 {med(p50[t]):.3f}  p99 {med(p99[t]):.3f}  added p50 vs direct {med(added)*1000:+.0f} us")
PY
} | tee $out
echo "written: $out (raw runs in $RES)"
