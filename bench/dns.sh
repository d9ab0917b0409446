#!/usr/bin/env bash
# bench/dns.sh: `make bench-dns`. Our authoritative DNS server (bench/dnsserve: the product's
# internal/dns/authority on a zone file) against NSD and Knot serving the same zone, all on
# loopback. Each server is pinned to CPU 1 with one worker (ours: GOMAXPROCS=1), dnsperf to
# CPU 0; rounds are interleaved so each ratio is taken against references measured seconds
# apart. Then: latency percentiles at a fixed rate (dnsperf -v), and each server's RSS with a
# 100k-record zone loaded.
#
# Environment: ROUNDS (default 3), DUR (seconds per dnsperf run, default 10), RATE (queries/s
# of the latency run, default 20000), BENCH_DIR (scratch, default /tmp/apoxy-bench-dns).
# Installs nothing: it says what is missing.
set -u
ROUNDS=${ROUNDS:-3}; DUR=${DUR:-10}; RATE=${RATE:-20000}
ROOT=$(cd "$(dirname "$0")/.." && pwd); B=${BENCH_DIR:-/tmp/apoxy-bench-dns}
missing=()
for t in dnsperf nsd knotd taskset go python3; do command -v $t >/dev/null || missing+=($t); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-dns: missing ${missing[*]}; install them with:" >&2
  echo "  apt-get install -y dnsperf nsd knot util-linux python3" >&2
  exit 2
fi
declare -A PORT=([ours]=5303 [nsd]=5301 [knot]=5302)
ORDER=(ours nsd knot)
for p in 5301 5302 5303; do
  if ss -Hluan "sport = :$p" | grep -q .; then echo "bench-dns: port $p is in use" >&2; exit 2; fi
done
rm -rf $B; mkdir -p $B/{nsd,knot,res}
RES=$B/res
(cd $ROOT && go build -trimpath -o $B/dnsserve ./bench/dnsserve) || exit 1

# The zone: every kind of answer the spike measured (positive, CNAME, wildcard, NXDOMAIN,
# NODATA, a referral) and a REFUSED name outside it; 22 query names in a loop.
zone() { # zone FILE EXTRA_RECORDS
  cat > $1 <<EOF
\$ORIGIN example.com.
\$TTL 300
@ 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 1209600 60
@ 3600 IN NS ns1.example.com.
@ 3600 IN NS ns2.example.com.
ns1 IN A 192.0.2.53
ns2 IN A 192.0.2.54
@ IN A 192.0.2.1
@ IN MX 10 mail.example.com.
mail IN A 192.0.2.25
www IN CNAME gw.example.com.
gw IN A 192.0.2.1
gw IN A 192.0.2.2
gw IN AAAA 2001:db8::1
c1 IN CNAME c2.example.com.
c2 IN CNAME gw.example.com.
*.apps IN A 192.0.2.80
txt IN TXT "v=spf1 mx -all"
_sip._tcp IN SRV 10 5 5060 mail.example.com.
sub IN NS ns.sub.example.com.
ns.sub IN A 192.0.2.99
EOF
  [ -n "${2:-}" ] && python3 -c "
import sys
for i in range($2): print(f'host{i}.big IN A 10.{i>>16&255}.{i>>8&255}.{i&255}')" >> $1
}
zone $B/example.com.zone
cat > $B/queries <<EOF
example.com A
example.com MX
example.com NS
example.com SOA
www.example.com A
gw.example.com A
gw.example.com AAAA
c1.example.com AAAA
x.apps.example.com A
y.z.apps.example.com A
txt.example.com TXT
_sip._tcp.example.com SRV
mail.example.com A
nope.example.com A
nope2.example.com AAAA
gw.example.com TXT
apps.example.com A
host.sub.example.com A
sub.example.com A
example.net A
www.example.org A
ns1.example.com A
EOF

cat > $B/nsd/nsd.conf <<EOF
server:
  ip-address: 127.0.0.1@${PORT[nsd]}
  server-count: 1
  username: ""
  zonesdir: "$B"
  database: ""
  pidfile: "$B/nsd/nsd.pid"
  zonelistfile: "$B/nsd/zone.list"
  xfrdfile: "$B/nsd/xfrd.state"
  xfrdir: "$B/nsd"
  rrl-ratelimit: 0
  hide-version: yes
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: "@ZONE@"
EOF
cat > $B/knot/knot.conf <<EOF
server:
  listen: 127.0.0.1@${PORT[knot]}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  rundir: "$B/knot"
database:
  storage: "$B/knot"
log:
  - target: stderr
    any: error
zone:
  - domain: example.com
    file: "@ZONE@"
    storage: "$B/knot"
    journal-content: none
    zonefile-load: whole
EOF

declare -A PID
start() { # start NAME ZONEFILE
  local z=$2
  case $1 in
    ours) GOMAXPROCS=1 taskset -c 1 $B/dnsserve -addr 127.0.0.1:${PORT[ours]} example.com=$z > $B/ours.log 2>&1 & PID[ours]=$! ;;
    nsd) sed "s|@ZONE@|$z|" $B/nsd/nsd.conf > $B/nsd/run.conf; taskset -c 1 nsd -d -c $B/nsd/run.conf > $B/nsd.log 2>&1 & PID[nsd]=$! ;;
    knot) sed "s|@ZONE@|$z|" $B/knot/knot.conf > $B/knot/run.conf; rm -rf $B/knot/*.mdb $B/knot/timers $B/knot/journal; taskset -c 1 knotd -c $B/knot/run.conf > $B/knot.log 2>&1 & PID[knot]=$! ;;
  esac
  for i in $(seq 1 300); do
    dig +short +tries=1 +time=1 @127.0.0.1 -p ${PORT[$1]} gw.example.com A 2>/dev/null | grep -q 192.0.2.1 && return 0
    sleep 0.1
  done
  echo "bench-dns: $1 did not answer; its log:" >&2; cat $B/$1.log >&2; exit 1
}
stop_all() { for n in "${!PID[@]}"; do kill ${PID[$n]} 2>/dev/null; done; wait 2>/dev/null; PID=(); }
trap stop_all EXIT
# A process and all its descendants (NSD forks its server and xfrd processes).
tree() { echo $1; for c in $(pgrep -P $1); do tree $c; done; }
# CPU ticks of a process tree: utime+stime, read after the command name, which may hold spaces
# ("nsd: server 1").
cpu() { local t=0; for p in $(tree $1); do t=$((t + $(sed 's/.*) //' /proc/$p/stat 2>/dev/null | awk '{print $12+$13}' || echo 0))); done; echo $t; }
rss() { local t=0; for p in $(tree $1); do t=$((t + $(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0))); done; echo $t; }

for n in "${ORDER[@]}"; do start $n $B/example.com.zone; done
echo "== warm-up"
for n in "${ORDER[@]}"; do taskset -c 0 dnsperf -s 127.0.0.1 -p ${PORT[$n]} -d $B/queries -c 4 -q 256 -T 1 -l 2 > /dev/null 2>&1; done
echo "== throughput: dnsperf -c 4 -q 256 -T 1 -l $DUR, $ROUNDS interleaved rounds"
hz=$(getconf CLK_TCK)
for r in $(seq 1 $ROUNDS); do
  for n in "${ORDER[@]}"; do
    c0=$(cpu ${PID[$n]})
    taskset -c 0 dnsperf -s 127.0.0.1 -p ${PORT[$n]} -d $B/queries -c 4 -q 256 -T 1 -l $DUR > $RES/$n-$r.txt 2>&1
    c1=$(cpu ${PID[$n]})
    qps=$(awk '/Queries per second/{print $4}' $RES/$n-$r.txt)
    lost=$(awk '/Queries lost/{print $3}' $RES/$n-$r.txt)
    avg=$(awk '/Average Latency/{print $4}' $RES/$n-$r.txt)
    echo "$r,$n,$qps,$lost,$avg,$(( (c1 - c0) * 100 / hz / DUR ))" | tee -a $RES/throughput.csv
  done
done
echo "== latency at $RATE q/s (dnsperf -Q $RATE -v, 5 s)"
for n in "${ORDER[@]}"; do
  taskset -c 0 dnsperf -s 127.0.0.1 -p ${PORT[$n]} -d $B/queries -c 4 -T 1 -l 5 -Q $RATE -v > $RES/$n-lat.txt 2>&1
done
stop_all
echo "== RSS with a 100k-record zone"
zone $B/big.zone 100000
for n in "${ORDER[@]}"; do
  start $n $B/big.zone
  sleep 2
  dig +short @127.0.0.1 -p ${PORT[$n]} host99999.big.example.com A > $RES/$n-big.txt
  echo "$n,$(rss ${PID[$n]})" | tee -a $RES/rss.csv
  kill ${PID[$n]}; wait ${PID[$n]} 2>/dev/null; unset "PID[$n]"
done

OUT=$ROOT/bench/results/dns-$(date -u +%Y%m%dT%H%M%SZ).txt
{
echo "make bench-dns: $(date -u), $(nproc) CPUs, ROUNDS=$ROUNDS DUR=${DUR}s RATE=$RATE, commit $(git -C $ROOT rev-parse --short HEAD)"
echo "versions: $(nsd -v 2>&1 | head -1); $(knotd -V 2>&1 | head -1); $(dnsperf -h 2>&1 | grep -m1 Version)"
python3 - "$RES" "$ROUNDS" <<'PY'
import sys, statistics, glob, os
res, rounds = sys.argv[1], int(sys.argv[2])
rows = [l.strip().split(",") for l in open(f"{res}/throughput.csv")]
by = {}
for r, n, qps, lost, avg, cpu in rows:
    by.setdefault(n, {})[int(r)] = (float(qps), int(lost), float(avg), int(cpu))
def ratios(a, b):
    return [by[a][r][0] / by[b][r][0] for r in by[a] if r in by[b]]
print("\n| server | q/s median [min-max] | lost | avg latency ms | CPU % | q/s per CPU-second | x NSD (paired) | x Knot (paired) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for n in ("ours", "nsd", "knot"):
    q = [v[0] for v in by[n].values()]
    cpu = statistics.median(v[3] for v in by[n].values())
    per = statistics.median(q) / max(cpu, 1) * 100
    rn, rk = ratios(n, "nsd"), ratios(n, "knot")
    print(f"| {n} | {statistics.median(q):,.0f} [{min(q):,.0f}-{max(q):,.0f}] | {sum(v[1] for v in by[n].values())} | "
          f"{statistics.median(v[2] for v in by[n].values())*1000:.2f} | {cpu} | {per:,.0f} | "
          f"{statistics.median(rn):.2f} [{min(rn):.2f}-{max(rn):.2f}] | {statistics.median(rk):.2f} [{min(rk):.2f}-{max(rk):.2f}] |")
print("\nLatency at a fixed rate (from dnsperf -v, every answered query):")
print("| server | p50 ms | p99 ms | p99.9 ms | answered |")
print("|---|---:|---:|---:|---:|")
for n in ("ours", "nsd", "knot"):
    lat = []
    for l in open(f"{res}/{n}-lat.txt"):
        f = l.split()
        if l.startswith(">") and len(f) >= 5:
            try:
                lat.append(float(f[-1]))
            except ValueError:
                pass
    lat.sort()
    if not lat:
        print(f"| {n} | - | - | - | 0 |"); continue
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000
    print(f"| {n} | {pct(0.5):.3f} | {pct(0.99):.3f} | {pct(0.999):.3f} | {len(lat)} |")
print("\nRSS with a 100k-record zone loaded (one A record per name):")
for l in open(f"{res}/rss.csv"):
    n, kb = l.strip().split(",")
    ok = open(f"{res}/{n}-big.txt").read().strip()
    print(f"- {n}: {int(kb)/1024:.0f} MiB (host99999.big.example.com -> {ok or 'NO ANSWER'})")
PY
} | tee "$OUT"
echo "written: $OUT"
