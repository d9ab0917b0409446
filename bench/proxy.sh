#!/usr/bin/env bash
# bench/proxy.sh: `make bench`. Our gateway (`apoxy dev` with a route to the bench backend)
# against nginx, HAProxy, Caddy, a naive Go reverse proxy and the backend itself (direct), all
# started here on loopback. Rounds are interleaved (every target once per round) so each ratio
# is taken against a reference measured seconds apart; summarize.py prints the paired ratios.
#
# Environment: ROUNDS (wrk rounds, default 5), DUR (per wrk run, default 5s), H2ROUNDS (h2load
# rounds per protocol, default 3), H2N (requests per h2load run, default 100000), BENCH_DIR
# (scratch, default /tmp/apoxy-bench). Installs nothing: it says what is missing.
set -u
ROUNDS=${ROUNDS:-5}; DUR=${DUR:-5s}; H2ROUNDS=${H2ROUNDS:-3}; H2N=${H2N:-100000}
ROOT=$(cd "$(dirname "$0")/.." && pwd); B=${BENCH_DIR:-/tmp/apoxy-bench}
missing=()
for t in nginx haproxy caddy wrk h2load curl openssl python3 go redis-server; do command -v $t >/dev/null || missing+=($t); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]}; install them with:" >&2
  echo "  apt-get install -y nginx-light haproxy caddy wrk nghttp2-client curl openssl python3 redis-server" >&2
  exit 2
fi
BACKEND=19000
declare -A H1=([direct]=$BACKEND [nginx]=18071 [haproxy]=18073 [caddy]=18075 [goproxy]=18076 [apoxy]=18077)
declare -A H2C=([direct]=$BACKEND [nginx]=18061 [haproxy]=18063 [caddy]=18075 [goproxy]=18076 [apoxy]=18077)
declare -A TLS=([nginx]=18041 [haproxy]=18043 [caddy]=18045 [goproxy]=18046 [apoxy]=18047)
ORDER=(direct nginx haproxy caddy goproxy apoxy apoxy-filters apoxy-rl apoxy-global apoxy-rr apoxy-to apoxy-jwt apoxy-basic apoxy-quiet apoxy-trace1 apoxy-trace100 apoxy-fnjs apoxy-fnwasm apoxy-tunnel)
# apoxy-filters: the same gateway on a route with filters (request and response header
# modifiers, CORS), so the filter chain's cost is a row of its own.
H1[apoxy-filters]=18077; H2C[apoxy-filters]=18077; TLS[apoxy-filters]=18047
declare -A PATHS=([apoxy-filters]=/filters) PROC=([apoxy-filters]=apoxy)
# TrafficPolicy rows (issue 13): a Local limit that never trips, the same limit Global in Redis,
# RoundRobin against the default LeastRequest ("apoxy"), every TrafficPolicy timeout set ("to":
# stream idle and max duration, connect, connection idle).
for t in rl global rr to; do
  H1[apoxy-$t]=18077; H2C[apoxy-$t]=18077; TLS[apoxy-$t]=18047; PATHS[apoxy-$t]=/$t; PROC[apoxy-$t]=apoxy
done
# AuthPolicy rows (issue 14): a JWT verified against a local JWKS (the same token on every
# request: the verified-token cache), basic auth with a bcrypt user (the verification cache).
# HDR holds the header each row's requests carry.
declare -A HDR
for t in jwt basic; do
  H1[apoxy-$t]=18077; H2C[apoxy-$t]=18077; TLS[apoxy-$t]=18047; PATHS[apoxy-$t]=/$t; PROC[apoxy-$t]=apoxy
done
# Telemetry rows (issue 15): Gateways of their own (bench/proxies/apoxy-telemetry.yaml), HTTP
# only: no access-log line, then tracing at 1 % and at 100 %.
H1[apoxy-quiet]=18079; H2C[apoxy-quiet]=18079; PROC[apoxy-quiet]=apoxy
H1[apoxy-trace1]=18080; H2C[apoxy-trace1]=18080; PROC[apoxy-trace1]=apoxy
H1[apoxy-trace100]=18081; H2C[apoxy-trace100]=18081; PROC[apoxy-trace100]=apoxy
# Edge-function rows (issue 16): a pass-through JavaScript filter and a pass-through Go filter
# compiled to WebAssembly (bench/proxies/apoxy-functions.yaml).
H1[apoxy-fnjs]=18077; H2C[apoxy-fnjs]=18077; TLS[apoxy-fnjs]=18047; PATHS[apoxy-fnjs]=/fn-js; PROC[apoxy-fnjs]=apoxy
H1[apoxy-fnwasm]=18077; H2C[apoxy-fnwasm]=18077; TLS[apoxy-fnwasm]=18047; PATHS[apoxy-fnwasm]=/fn-wasm; PROC[apoxy-fnwasm]=apoxy
# Tunnel row (issue 18): the backend behind a user-mode tunnel agent on this machine
# (bench/proxies/apoxy-tunnel.yaml); its CPU column is the gateway's and the agent's.
H1[apoxy-tunnel]=18077; H2C[apoxy-tunnel]=18077; TLS[apoxy-tunnel]=18047; PATHS[apoxy-tunnel]=/tunnel; PROC[apoxy-tunnel]=apoxy
# HTTP/2 A/B (issue 20): the same binary with APOXY_HTTP2=std serves HTTP/2 with net/http's
# server; its own `apoxy dev` on ports of its own.
H1[apoxy-stdh2]=18082; H2C[apoxy-stdh2]=18082; TLS[apoxy-stdh2]=18052; ORDER+=(apoxy-stdh2)
# BASE=<commit>: also run the gateway built from that commit ("base") for a paired A/B.
if [ -n "${BASE:-}" ]; then
  H1[base]=18078; H2C[base]=18078; TLS[base]=18048; ORDER+=(base)
  H1[base-filters]=18078; H2C[base-filters]=18078; TLS[base-filters]=18048; ORDER+=(base-filters)
  PATHS[base-filters]=/filters; PROC[base-filters]=base
fi
pid() { echo "${PID[${PROC[$1]:-$1}]}"; }
# The tunnel row's CPU is the gateway's and the agent's together.
cpuof() { if [ "$1" = apoxy-tunnel ]; then echo $(( $(cpu ${PID[apoxy]}) + $(cpu ${PID[agent]}) )); else cpu $(pid $1); fi; }
path() { echo "${PATHS[$1]:-/}"; }
for p in 18082 18052 19904 16445 $BACKEND 18071 18061 18041 18073 18063 18043 18075 18045 18076 18046 18077 18047 18079 18080 18081 19901 16443 16379; do
  if ss -Hltn "sport = :$p" | grep -q .; then echo "bench: port $p is in use" >&2; exit 2; fi
done

rm -rf $B; mkdir -p $B/{bin,conf,run,log,res,caddy}
# 10k idle client connections need more descriptors than the usual 1024.
ulimit -n 30000 2>/dev/null || ulimit -n $(ulimit -Hn)
RES=$B/res
echo "== build"
(cd $ROOT && go build -trimpath -o $B/bin/backend ./bench/backend && go build -trimpath -o $B/bin/goproxy ./bench/goproxy &&
  go build -trimpath -o $B/bin/idleconns ./bench/idleconns && go build -trimpath -o $B/bin/openloop ./bench/openloop &&
  go build -trimpath -o $B/bin/apoxy ./cmd/apoxy && go build -trimpath -o $B/bin/authgen ./bench/authgen) || exit 1
if [ -n "${BASE:-}" ]; then
  mkdir -p $B/base-src && git -C $ROOT archive "$BASE" | tar -x -C $B/base-src &&
    (cd $B/base-src && go build -trimpath -o $B/bin/apoxy-base ./cmd/apoxy) || { echo "bench: cannot build BASE=$BASE" >&2; exit 1; }
  echo "$BASE $(git -C $ROOT rev-parse --short "$BASE")" > $RES/base.txt
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench.local \
  -addext subjectAltName=DNS:bench.local,IP:127.0.0.1 -keyout $B/conf/key.pem -out $B/conf/cert.pem 2>/dev/null
cat $B/conf/cert.pem $B/conf/key.pem > $B/conf/haproxy.pem
render() { # template port-h1 port-h2c port-tls > out
  sed -e "s|@BACKEND@|$BACKEND|g; s|@H1@|$2|g; s|@H2C@|$3|g; s|@TLS@|$4|g; s|@RUN@|$B/run|g" \
      -e "s|@CERT@|$B/conf/cert.pem|g; s|@KEY@|$B/conf/key.pem|g; s|@PEM@|$B/conf/haproxy.pem|g" "$1"
}
render $ROOT/bench/proxies/nginx.conf 18071 18061 18041 > $B/conf/nginx.conf
render $ROOT/bench/proxies/haproxy.cfg 18073 18063 18043 > $B/conf/haproxy.cfg
render $ROOT/bench/proxies/Caddyfile 18075 18075 18045 > $B/conf/Caddyfile
render $ROOT/bench/proxies/apoxy.yaml 0 0 0 > $B/conf/apoxy.yaml
render $ROOT/bench/proxies/apoxy-policies.yaml 0 0 0 > $B/conf/apoxy-policies.yaml
render $ROOT/bench/proxies/apoxy-telemetry.yaml 0 0 0 > $B/conf/apoxy-telemetry.yaml
render $ROOT/bench/proxies/apoxy-functions.yaml 0 0 0 > $B/conf/apoxy-functions.yaml
render $ROOT/bench/proxies/apoxy-tunnel.yaml 0 0 0 > $B/conf/apoxy-tunnel.yaml
{ read -r HDR[apoxy-jwt]; read -r HDR[apoxy-basic]; } < <($B/bin/authgen -template $ROOT/bench/proxies/apoxy-auth.yaml -backend $BACKEND -out $B/conf/apoxy-auth.yaml)

declare -A PID
start() { local n=$1; shift; "$@" > $B/log/$n.out 2> $B/log/$n.err & PID[$n]=$!; }
cleanup() { for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
start direct $B/bin/backend -addr 127.0.0.1:$BACKEND
start nginx nginx -c $B/conf/nginx.conf
start haproxy haproxy -db -f $B/conf/haproxy.cfg
XDG_DATA_HOME=$B/caddy XDG_CONFIG_HOME=$B/caddy start caddy caddy run --config $B/conf/Caddyfile --adapter caddyfile
start goproxy $B/bin/goproxy -addr 127.0.0.1:18076 -tls-addr 127.0.0.1:18046 -cert $B/conf/cert.pem -key $B/conf/key.pem -upstream http://127.0.0.1:$BACKEND
start redis redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no
# The access log (stdout) goes to a file, as a deployment would keep it.
# An older binary (a BASE) may have no DNS server and no --dns-addr; both must not take 8053.
dnsflag() {
	"$1" dev --help 2>&1 | grep -q -- --dns-addr && echo -n "--dns-addr 127.0.0.1:0 "
	# Nor the tunnel endpoint's 9443 (on by default since issue 18).
	"$1" dev --help 2>&1 | grep -q -- --tunnel-addr && echo -n "--tunnel-addr 127.0.0.1:0"
	echo
}
start apoxy $B/bin/apoxy dev $(dnsflag $B/bin/apoxy) --data-dir $B/apoxy --http-port 18077 --https-port 18047 --admin-addr 127.0.0.1:19901 --api-addr 127.0.0.1:16443 --redis redis://127.0.0.1:16379
for i in $(seq 1 100); do curl -sf http://127.0.0.1:19901/readyz >/dev/null && break; sleep 0.2; done
APOXY_CONFIG=$B/apoxy/config.yaml $B/bin/apoxy apply -f $B/conf/apoxy.yaml -f $B/conf/apoxy-policies.yaml -f $B/conf/apoxy-auth.yaml -f $B/conf/apoxy-telemetry.yaml -f $B/conf/apoxy-functions.yaml -f $B/conf/apoxy-tunnel.yaml > $B/log/apply.out 2>&1 || { cat $B/log/apply.out; exit 1; }
APOXY_CONFIG=$B/apoxy/config.yaml start agent $B/bin/apoxy tunnel run bench-node --name bench --no-tui --socks-addr "" --dns-addr "" --health-addr 127.0.0.1:19903
for i in $(seq 1 100); do [ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:18077/tunnel)" = 200 ] && break; sleep 0.1; done
for p in 18077 18079 18080 18081; do
  for i in $(seq 1 100); do [ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$p/)" = 200 ] && break; sleep 0.1; done
done
# The Go function compiles on first use of the build cache (up to a minute or two).
for f in fn-js fn-wasm; do
  for i in $(seq 1 1800); do [ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:18077/$f)" = 200 ] && break; sleep 0.1; done
done
render $ROOT/bench/proxies/apoxy.yaml 0 0 0 | sed -e 's/18077/18082/g; s/18047/18052/g' > $B/conf/apoxy-stdh2.yaml
APOXY_HTTP2=std start apoxy-stdh2 $B/bin/apoxy dev $(dnsflag $B/bin/apoxy) --data-dir $B/apoxy-stdh2 --http-port 18082 --https-port 18052 --admin-addr 127.0.0.1:19904 --api-addr 127.0.0.1:16445
for i in $(seq 1 100); do curl -sf http://127.0.0.1:19904/readyz >/dev/null && break; sleep 0.2; done
APOXY_CONFIG=$B/apoxy-stdh2/config.yaml $B/bin/apoxy apply -f $B/conf/apoxy-stdh2.yaml > $B/log/apply-stdh2.out 2>&1 || { cat $B/log/apply-stdh2.out; exit 1; }
for i in $(seq 1 100); do [ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:18082/)" = 200 ] && break; sleep 0.1; done
if [ -n "${BASE:-}" ]; then
  render $ROOT/bench/proxies/apoxy.yaml 0 0 0 | sed -e 's/18077/18078/g; s/18047/18048/g' > $B/conf/apoxy-base.yaml
  start base $B/bin/apoxy-base dev $(dnsflag $B/bin/apoxy-base) --data-dir $B/apoxy-base --http-port 18078 --https-port 18048 --admin-addr 127.0.0.1:19902 --api-addr 127.0.0.1:16444
  for i in $(seq 1 100); do curl -sf http://127.0.0.1:19902/readyz >/dev/null && break; sleep 0.2; done
  APOXY_CONFIG=$B/apoxy-base/config.yaml $B/bin/apoxy-base apply -f $B/conf/apoxy-base.yaml > $B/log/apply-base.out 2>&1 || { cat $B/log/apply-base.out; exit 1; }
  for i in $(seq 1 100); do [ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:18078/)" = 200 ] && break; sleep 0.1; done
fi
sleep 10 # settled: start-up garbage and start-up-only code pages handed back
echo "idle apoxy dev (10 s after the route answered) kB: $(grep -E 'VmRSS|RssAnon|RssFile' /proc/${PID[apoxy]}/status | tr -s ' \t\n' ' ')" | tee $RES/apoxy-idle.txt

echo "== sanity (code/bytes/version; every target must answer 200 with 128 bytes)"
for t in "${ORDER[@]}"; do
  a=$(curl -s ${HDR[$t]:+-H} ${HDR[$t]:+"${HDR[$t]}"} -o /dev/null -w '%{http_code}/%{size_download}/%{http_version}' http://127.0.0.1:${H1[$t]}$(path $t))
  b=$(curl -s ${HDR[$t]:+-H} ${HDR[$t]:+"${HDR[$t]}"} --http2-prior-knowledge -o /dev/null -w '%{http_code}/%{size_download}/%{http_version}' http://127.0.0.1:${H2C[$t]}$(path $t))
  c=-; [ -n "${TLS[$t]:-}" ] && c=$(curl -sk ${HDR[$t]:+-H} ${HDR[$t]:+"${HDR[$t]}"} --http2 -o /dev/null -w '%{http_code}/%{size_download}/%{http_version}' https://127.0.0.1:${TLS[$t]}$(path $t))
  echo "$t h1=$a h2c=$b h2=$c"
done | tee $RES/sanity.txt
grep -qv "h1=200/128/1.1 h2c=200/128/2 h2=\(200/128/2\|-\)$" $RES/sanity.txt && { echo "bench: a target answered wrongly" >&2; exit 1; }

ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'; }
# CPU time (user + system, in clock ticks) of a target and its child processes (nginx workers):
# CPU microseconds per request is the stable figure on a shared machine.
TCK=$(getconf CLK_TCK)
cpu() { local tot=0 k; for q in $1 $(pgrep -P $1); do k=$(awk '{print $14+$15}' /proc/$q/stat 2>/dev/null); tot=$((tot + ${k:-0})); done; echo $tot; }
usper() { awk -v t=$1 -v n=$2 -v hz=$TCK 'BEGIN{ if (n > 0) printf "%.1f", t*1000000/hz/n; else print "" }'; }
hwm() { local tot=0 k; for q in $1 $(pgrep -P $1); do k=$(awk '/VmHWM/{print $2}' /proc/$q/status 2>/dev/null); tot=$((tot + ${k:-0})); done; echo $tot; }

echo "== warm-up"
for t in "${ORDER[@]}"; do wrk -t1 -c64 -d2s ${HDR[$t]:+-H} ${HDR[$t]:+"${HDR[$t]}"} http://127.0.0.1:${H1[$t]}$(path $t) > /dev/null; done
echo "round,target,rps,p50_ms,p99_ms,errors,cpu_us" > $RES/wrk.csv
echo "== wrk HTTP/1.1 keep-alive: -t1 -c64 -d$DUR, $ROUNDS interleaved rounds"
for r in $(seq 1 $ROUNDS); do
  for t in "${ORDER[@]}"; do
    f=$RES/wrk-$t-$r.txt
    c0=$(cpuof $t)
    wrk -t1 -c64 -d$DUR --latency ${HDR[$t]:+-H} ${HDR[$t]:+"${HDR[$t]}"} http://127.0.0.1:${H1[$t]}$(path $t) > $f 2>&1
    c1=$(cpuof $t)
    err=$(awk '/Socket errors/{gsub(",","");s=$4+$6+$8+$10} /Non-2xx/{n=$NF} END{print s+n}' $f)
    echo "$r,$t,$(awk '/Requests\/sec/{print $2}' $f),$(ms $(awk '$1=="50%"{print $2}' $f)),$(ms $(awk '$1=="99%"{print $2}' $f)),$err,$(usper $((c1-c0)) $(awk '/requests in/{print $1}' $f))" | tee -a $RES/wrk.csv
  done
done
echo "proto,round,target,rps,mean_ms,errors,cpu_us,p50_ms,p99_ms" > $RES/h2load.csv
# p50 and p99 of one h2load run from its per-request log (third column: microseconds from the
# request's start to the end of its response; failed streams, status -1, left out).
pct() { awk -F'\t' '$2 > 0 {print $3}' $1 | sort -n | awk 'function at(q) { i = int(NR*q); return v[i < 1 ? 1 : i]/1000 } {v[NR]=$1} END{ if (NR) printf "%.2f,%.2f", at(0.50), at(0.99); else printf "," }'; }
for proto in h2c h2; do
  echo "== h2load $proto: -t1 -c16 -m10 -n$H2N, $H2ROUNDS interleaved rounds"
  for r in $(seq 1 $H2ROUNDS); do
    for t in "${ORDER[@]}"; do
      if [ $proto = h2c ]; then url=http://127.0.0.1:${H2C[$t]}$(path $t); else [ -n "${TLS[$t]:-}" ] || continue; url=https://127.0.0.1:${TLS[$t]}$(path $t); fi
      f=$RES/h2load-$proto-$t-$r.txt
      c0=$(cpuof $t)
      h2load -t1 -c16 -m10 -n$H2N --log-file=$f.log ${HDR[$t]:+-H} ${HDR[$t]:+"${HDR[$t]}"} $url > $f 2>&1
      c1=$(cpuof $t)
      err=$(awk -v n=$H2N '/^requests:/{print n-$8}' $f)
      echo "$proto,$r,$t,$(awk '/^finished in/{print $4}' $f),$(ms $(awk '/^time for request:/{print $6}' $f)),${err:-$H2N},$(usper $((c1-c0)) $H2N),$(pct $f.log)" | tee -a $RES/h2load.csv
      rm -f $f.log
    done
  done
done
# Tail latency at fixed request rates (open loop: latency from when a request was due, so a
# stall shows in the tail; wrk's closed loop makes p99 follow throughput).
echo "rate,round,target,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,errors" > $RES/openloop.csv
echo "== openloop HTTP/1.1: rates ${OLRATES:-2000 5000}/s, -c64 -d${OLDUR:-5s}, 2 interleaved rounds"
for rate in ${OLRATES:-2000 5000}; do
  for r in 1 2; do
    for t in nginx haproxy apoxy $([ -n "${BASE:-}" ] && echo base); do
      line=$($B/bin/openloop -url http://127.0.0.1:${H1[$t]}$(path $t) -rate $rate -d ${OLDUR:-5s} -warmup 1s -c 64)
      echo "$rate,$r,$t,$(echo "$line" | awk '{for (i = 1; i < NF; i++) v[$i] = $(i+1); print v["p50"] "," v["p90"] "," v["p99"] "," v["p99.9"] "," v["max"] "," v["errors"]}')" | tee -a $RES/openloop.csv
    done
  done
done
for t in "${ORDER[@]}"; do echo "$t $(hwm $(pid $t))"; done > $RES/vmhwm.txt

echo "== idle keep-alive connections: ${IDLE:-10000} clients held open against apoxy and nginx, HTTP/1.1, h2c and h2 over TLS"
rsstree() { for q in $1 $(pgrep -P $1); do awk '/VmRSS/{print $2}' /proc/$q/status; done | awk '{s+=$1} END{print s}'; }
# apoxy's own view (admin endpoint): live heap after a collection, stacks, goroutines.
heapof() { curl -s "http://127.0.0.1:19901/debug/pprof/heap?gc=1&debug=1" | awk '/^# (HeapAlloc|StackInuse) =/{s+=$4} END{print s+0}'; }
gorof() { curl -s "http://127.0.0.1:19901/debug/pprof/goroutine?debug=1" | awk 'NR==1{print $4}'; }
for t in apoxy nginx; do
  for proto in h1 h2c h2; do
    before=$(rsstree ${PID[$t]})
    [ $t = apoxy ] && { h0=$(heapof); g0=$(gorof); }
    case $proto in h1) port=${H1[$t]} ;; h2c) port=${H2C[$t]} ;; h2) port=${TLS[$t]} ;; esac
    coproc IC { $B/bin/idleconns -addr 127.0.0.1:$port -n ${IDLE:-10000} -h2=$([ $proto = h1 ] && echo false || echo true) -tls=$([ $proto = h2 ] && echo true || echo false); }
    read -r line <&"${IC[0]}"
    sleep 1
    after=$(rsstree ${PID[$t]})
    # Idle connections rest after a second or two (IdleRest); RSS again once they have.
    sleep 5
    settled=$(rsstree ${PID[$t]})
    extra=""
    [ $t = apoxy ] && { h1=$(heapof); g1=$(gorof); extra="; live heap+stacks +$(((h1-h0)/1024/1024)) MiB ($(((h1-h0)/${IDLE:-10000})) B/conn), goroutines $g0 -> $g1"; }
    echo "$t $proto: ${line:-FAILED}; VmRSS $((before/1024)) MiB -> $((after/1024)) MiB after 1 s (+$(((after-before)/1024)) MiB), $((settled/1024)) MiB after 6 s (+$(((settled-before)/1024)) MiB)$extra" | tee -a $RES/idle.txt
    eval "exec ${IC[1]}>&-"; wait $IC_PID 2>/dev/null
    sleep 2
  done
done
out=$ROOT/bench/results/proxy-$(date -u +%Y%m%dT%H%M%SZ).txt
{ echo "make bench: $(date -u), $(nproc) CPUs, ROUNDS=$ROUNDS DUR=$DUR H2ROUNDS=$H2ROUNDS H2N=$H2N, go $(go env GOVERSION), commit $(cd $ROOT && git rev-parse --short HEAD)"
  cat $RES/apoxy-idle.txt; cat $RES/idle.txt 2>/dev/null; echo; echo "sanity:"; cat $RES/sanity.txt; echo
  python3 $ROOT/bench/summarize.py $RES; } | tee $out
echo "written: $out (raw runs in $RES)"
