#!/usr/bin/env python3
"""summarize.py RESDIR: the `make bench` tables.

Paired ratios: in each round, a target's req/s divided by the reference's req/s from the same
round (run seconds apart), then the median and [min-max] over rounds. Absolute req/s on a shared
machine drift by 20-50 % between minutes; paired ratios do not. A run with any error is not a
result: its row says ERRORS and it is left out of the ratios.
"""
import csv, os, statistics as st, sys

d = sys.argv[1]
REFS = ("nginx", "goproxy", "direct")
if os.path.exists(os.path.join(d, "base.txt")):
    # BASE=<commit> make bench: the same gateway built from an earlier commit, for an A/B.
    REFS += ("base",)
REF_HEAD = " | ".join(f"x {r} (paired)" for r in REFS)
REF_RULE = "---:|" * len(REFS)


def paired(rows, key, target, ref):
    by = {(r[key], r["target"]): r for r in rows}
    out = []
    for k in sorted({r[key] for r in rows}, key=int):
        a, b = by.get((k, target)), by.get((k, ref))
        if a and b and a["errors"] == "0" and b["errors"] == "0" and float(b["rps"]) > 0:
            out.append(float(a["rps"]) / float(b["rps"]))
    return f"{st.median(out):.2f} [{min(out):.2f}-{max(out):.2f}]" if out else "-"


def order(rows):
    seen = []
    for r in rows:
        if r["target"] not in seen:
            seen.append(r["target"])
    return seen


hwm = {}
p = os.path.join(d, "vmhwm.txt")
if os.path.exists(p):
    for line in open(p):
        t, kb = line.split()
        hwm[t] = int(kb) / 1024

def cpu(rs):
    """Median CPU microseconds per request of a target (user + system, its processes)."""
    v = [float(r["cpu_us"]) for r in rs if r.get("cpu_us")]
    return f"{st.median(v):.1f}" if v else "-"


def pctl(rs, key):
    """Median over rounds of a latency percentile column ("-" where the run did not record it)."""
    v = [float(r[key]) for r in rs if r.get(key)]
    return f"{st.median(v):.2f}" if v else "-"


rows = list(csv.DictReader(open(os.path.join(d, "wrk.csv"))))
print("HTTP/1.1 keep-alive (wrk -t1 -c64), per target over rounds")
print(f"| target | req/s median [min-max] | p50 ms | p99 ms | errors | {REF_HEAD} | CPU us/req | peak RSS MiB |")
print(f"|---|---:|---:|---:|---:|{REF_RULE}---:|---:|")
for t in order(rows):
    rs = [r for r in rows if r["target"] == t]
    rps = [float(r["rps"]) for r in rs]
    errs = sum(int(float(r["errors"] or 0)) for r in rs)
    print(f"| {t} | {st.median(rps):,.0f} [{min(rps):,.0f}-{max(rps):,.0f}] | {st.median(float(r['p50_ms']) for r in rs):.2f} "
          f"| {st.median(float(r['p99_ms']) for r in rs):.2f} | {errs}{' ERRORS' if errs else ''} | "
          + " | ".join(paired(rows, "round", t, ref) for ref in REFS) + f" | {cpu(rs)} | {hwm.get(t, 0):.1f} |")

p99 = {t: st.median(float(r["p99_ms"]) for r in rows if r["target"] == t) for t in order(rows)}
if "apoxy" in p99 and "nginx" in p99:
    print(f"\np99 apoxy / p99 nginx (medians over rounds): {p99['apoxy'] / p99['nginx']:.2f}")

p = os.path.join(d, "h2load.csv")
if os.path.exists(p):
    allrows = list(csv.DictReader(open(p)))
    for proto, title in (("h2c", "h2c, prior knowledge"), ("h2", "h2 over TLS")):
        rows = [r for r in allrows if r["proto"] == proto]
        if not rows:
            continue
        print(f"\n{title} (h2load -t1 -c16 -m10)")
        print(f"| target | req/s median [min-max] | mean ms | p50 ms | p99 ms | errors | {REF_HEAD} | CPU us/req |")
        print(f"|---|---:|---:|---:|---:|---:|{REF_RULE}---:|")
        for t in order(rows):
            rs = [r for r in rows if r["target"] == t]
            rps = [float(r["rps"] or 0) for r in rs]
            errs = sum(int(float(r["errors"] or 0)) for r in rs)
            print(f"| {t} | {st.median(rps):,.0f} [{min(rps):,.0f}-{max(rps):,.0f}] | {st.median(float(r['mean_ms'] or 0) for r in rs):.2f} | "
                  f"{pctl(rs, 'p50_ms')} | {pctl(rs, 'p99_ms')} | "
                  f"{errs}{' ERRORS' if errs else ''} | " + " | ".join(paired(rows, "round", t, ref) for ref in REFS) + f" | {cpu(rs)} |")
        q = {t: [float(r["p99_ms"]) for r in rows if r["target"] == t and r.get("p99_ms")] for t in ("apoxy", "nginx")}
        if q["apoxy"] and q["nginx"]:
            print(f"\np99 apoxy / p99 nginx, {proto} (medians over rounds): {st.median(q['apoxy']) / st.median(q['nginx']):.2f}")

# Tail latency at fixed rates (bench/openloop): percentiles are medians over rounds; p99 ratio to
# nginx's in the same round, median [min-max].
p = os.path.join(d, "openloop.csv")
if os.path.exists(p):
    olrows = list(csv.DictReader(open(p)))
    print("\nHTTP/1.1 at a fixed rate (bench/openloop -c64, open loop: latency from when each request was due)")
    print("| rate/s | target | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | p99 x nginx (paired) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for rate in sorted({int(r["rate"]) for r in olrows}):
        rs = [r for r in olrows if int(r["rate"]) == rate]
        for t in order(rs):
            mine = [r for r in rs if r["target"] == t]
            ratios = []
            for r in mine:
                ref = [x for x in rs if x["target"] == "nginx" and x["round"] == r["round"]]
                if ref and float(ref[0]["p99_ms"]) > 0:
                    ratios.append(float(r["p99_ms"]) / float(ref[0]["p99_ms"]))
            errs = sum(int(r["errors"] or 0) for r in mine)
            ratio = f"{st.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]" if ratios else "-"
            print(f"| {rate:,} | {t} | " + " | ".join(pctl(mine, k) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"))
                  + f" | {errs}{' ERRORS' if errs else ''} | {ratio} |")

# Issue 20's A/B: our HTTP/2 server against net/http's (the same binary with APOXY_HTTP2=std),
# paired in each round.
p = os.path.join(d, "h2load.csv")
if os.path.exists(p) and any(r["target"] == "apoxy-stdh2" for r in csv.DictReader(open(p))):
    allrows = list(csv.DictReader(open(p)))
    print("\n### HTTP/2 server A/B: apoxy (internal/proxy/h2) x apoxy-stdh2 (APOXY_HTTP2=std, net/http's), paired\n")
    print("| proto | apoxy x apoxy-stdh2 | CPU us/req apoxy | CPU us/req apoxy-stdh2 |")
    print("|---|---:|---:|---:|")
    for proto in ("h2c", "h2"):
        rows = [r for r in allrows if r["proto"] == proto]
        print(f"| {proto} | {paired(rows, 'round', 'apoxy', 'apoxy-stdh2')} | {cpu([r for r in rows if r['target'] == 'apoxy'])} | "
              f"{cpu([r for r in rows if r['target'] == 'apoxy-stdh2'])} |")

# Issue 15's target: access log + metrics + 1 % tracing against no telemetry line, paired in
# each round (>= 0.90), and 100 % tracing for the record. Rows relative to apoxy-quiet.
wrk_rows = list(csv.DictReader(open(os.path.join(d, "wrk.csv"))))
if any(r["target"] == "apoxy-quiet" for r in wrk_rows):
    print("\n### Telemetry rows, paired against apoxy-quiet (no access-log line, no tracing)\n")
    print("| target | wrk HTTP/1.1 x apoxy-quiet | h2load h2c x apoxy-quiet |")
    print("|---|---:|---:|")
    h2 = []
    p = os.path.join(d, "h2load.csv")
    if os.path.exists(p):
        h2 = [r for r in csv.DictReader(open(p)) if r["proto"] == "h2c"]
    for t in ("apoxy", "apoxy-trace1", "apoxy-trace100"):
        print(f"| {t} | {paired(wrk_rows, 'round', t, 'apoxy-quiet')} | {paired(h2, 'round', t, 'apoxy-quiet') if h2 else '-'} |")

# Issue 16's rows: a pass-through JavaScript filter and a Wasm (Go) filter against the same
# gateway without one, paired in each round, and the p50 latency each adds (wrk, 64
# connections: queueing included, so the per-invocation cost is the CPU column's difference).
if any(r["target"] == "apoxy-fnjs" for r in wrk_rows):
    print("\n### Edge-function rows, paired against apoxy (the same route without a function)\n")
    print("| target | wrk HTTP/1.1 x apoxy | h2load h2c x apoxy | p50 added (wrk, ms) | CPU us/req added (wrk) |")
    print("|---|---:|---:|---:|---:|")
    h2 = []
    p = os.path.join(d, "h2load.csv")
    if os.path.exists(p):
        h2 = [r for r in csv.DictReader(open(p)) if r["proto"] == "h2c"]
    def med(t, k):
        v = [float(r[k]) for r in wrk_rows if r["target"] == t and r[k]]
        return st.median(v) if v else float("nan")
    for t in ("apoxy-fnjs", "apoxy-fnwasm"):
        print(f"| {t} | {paired(wrk_rows, 'round', t, 'apoxy')} | {paired(h2, 'round', t, 'apoxy') if h2 else '-'} | "
              f"{med(t, 'p50_ms') - med('apoxy', 'p50_ms'):.3f} | {med(t, 'cpu_us') - med('apoxy', 'cpu_us'):.1f} |")
