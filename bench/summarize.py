#!/usr/bin/python3
"""Medians of result lines (the kit's format) per peer, workload and config, and ClusterJobs / best peer ratios (and
ClusterJobs / each peer's best configuration).
The W2 floors (floor-*: bare Redis consumers, not job systems) are listed but are no peer to compare with.
A W2 configuration that ran under 90% of the offered rate is saturated: its queue grew for the whole run, so its
percentiles measure the backlog, not a job's wait. It is marked, and no ratio is taken against it.

    summarize.py results.txt
"""
import statistics, sys
from collections import defaultdict

rows = defaultdict(list)
for line in open(sys.argv[1]):
    if not line.startswith("peer="):
        continue
    kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    key = (kv["peer"], kv["workload"], kv.get("notes", ""), kv.get("rate", ""))
    rows[key].append(kv)


def med(kvs, field):
    xs = [float(k[field]) for k in kvs if k.get(field) not in (None, "", "nan")]
    return statistics.median(xs) if xs else float("nan")


def saturated(wl, rate, kvs):
    """A W2 run that fell behind its offered rate: median jobs/s under 90% of it (not 100%: in a short run one late job
    costs a few per cent)."""
    return wl == "W2" and bool(rate) and med(kvs, "jobs_per_s") < 0.9 * float(rate)


def size_of(cfg):
    """The run's size suffix (-n100k), so each size is compared with its own."""
    return "-n100k" if cfg.endswith("-n100k") else ""


# per workload and size: the best of every peer's configurations, by peer, and the best of all peers ("best_peer")
best = {}
# enqueue jobs/s: the producer enqueueing W1's and W3's jobs one at a time, awaiting each (what a web request pays).
print("| peer | workload | config | reps | jobs/s | p50 ms | p95 ms | p99 ms | worker peak RSS MB | enqueue jobs/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (peer, wl, cfg, rate), kvs in sorted(rows.items()):
    j, p50, p95, p99, rss, enq = (med(kvs, f) for f in ("jobs_per_s", "p50_ms", "p95_ms", "p99_ms", "worker_peak_rss_mb", "enqueue_per_s"))
    label = wl + (f"@{rate}/s" if rate else "")
    full = saturated(wl, rate, kvs)
    shown = f"{cfg}, saturated" if full else cfg
    print(f"| {peer} | {label} | {shown} | {len(kvs)} | {j:.0f} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {rss:.0f} | {enq:.0f} |")
    if peer != "clusterjobs" and not peer.startswith("floor-"):
        for who in ("best_peer", peer):
            b = best.setdefault(label + size_of(cfg), {}).setdefault(who, {"jobs": 0, "p99": float("inf"), "kept_up": 0})
            b["jobs"] = max(b["jobs"], j if j == j else 0)
            if full:
                b["kept_up"] = max(b["kept_up"], j)
            elif p99 == p99:
                b["p99"] = min(b["p99"], p99)
print()
for (peer, wl, cfg, rate), kvs in sorted(rows.items()):
    label = wl + (f"@{rate}/s" if rate else "")
    key = label + size_of(cfg)  # against the peers at the same size (W1 at 20k and at 100k apart)
    if peer != "clusterjobs" or key not in best:
        continue
    # the best peer first, then each peer on its own
    for who, b in sorted(best[key].items(), key=lambda kv: kv[0] != "best_peer"):
        if wl == "W2" and b["p99"] != float("inf"):
            mark = " (clusterjobs saturated)" if saturated(wl, rate, kvs) else ""
            print(f"ratio workload={label} config={cfg} p99_clusterjobs_over_{who}={med(kvs, 'p99_ms') / b['p99']:.2f}{mark}")
        elif wl == "W2":
            print(f"ratio workload={label} config={cfg} p99_clusterjobs_over_{who}=none ({who} saturated: "
                  f"{b['kept_up']:.0f} of {float(rate):.0f} jobs/s)")
        elif b["jobs"]:
            print(f"ratio workload={label} config={cfg} jobs_per_s_clusterjobs_over_{who}={med(kvs, 'jobs_per_s') / b['jobs']:.2f}")
