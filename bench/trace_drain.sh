#!/usr/bin/env bash
# A W1/W4-style drain, traced: every ~100 ms the jobs done so far and each process's CPU (seed first, then the nodes,
# in % of one core, from /proc/<pid>/stat), from the first completion on. Shows start-up ramps, idle nodes and tails
# that a single jobs/s figure hides (docs/benchmarks.md, fifth session).
#   bench/trace_drain.sh [N] [NODES]      e.g. bench/trace_drain.sh 20000 3
# Needs redis-server on 127.0.0.1:6390 (bench/run.sh starts one) and a published bench node:
#   BENCH_DLL, SEED_DLL (default: bin/Release of bench/ClusterJobs.Bench and src/Seed; build them first).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100000}; nodes=${2:-3}
dll=${BENCH_DLL:-$repo/bench/ClusterJobs.Bench/bin/Release/net10.0/ClusterJobs.Bench.dll}
seed=${SEED_DLL:-$repo/src/Seed/bin/Release/net10.0/ClusterJobs.Seed.dll}
logs=$(mktemp -d /tmp/cj-trace.XXXXXX)
export REDIS_URL=redis://127.0.0.1:6390/0 CLUSTER_IP=127.0.0.1 CLUSTERJOBS_CONCURRENCY=500 DOTNET_gcServer=0
export CLUSTER_MIN_MEMBERS=$(( nodes > 1 ? nodes + 1 : 1 ))
redis-cli -p 6390 flushall >/dev/null
dotnet "$dll" produce --n "$n" >/dev/null
pids=""; seeds=""
if [ "$nodes" -gt 1 ]; then
  CLUSTER_PORT=4053 CLUSTER_SEEDS= dotnet "$seed" > "$logs/seed.log" 2>&1 & pids="$!"
  seeds=akka.tcp://clusterjobs@127.0.0.1:4053
fi
node_env=$(python3 "$repo/bench/image_env.py" "$repo/src/Node/Dockerfile")  # as the node image runs (DOTNET_ReadyToRun=0)
# shellcheck disable=SC2086
for i in $(seq "$nodes"); do CLUSTER_PORT=0 CLUSTER_SEEDS=$seeds env $node_env dotnet "$dll" node > "$logs/node$i.log" 2>&1 & pids="$pids $!"; done
trap 'kill $pids 2>/dev/null; wait 2>/dev/null' EXIT
# shellcheck disable=SC2086
/usr/bin/python3 - "$n" $pids <<'PY'
import subprocess, sys, time
n, pids = int(sys.argv[1]), sys.argv[2:]
def cpu(p):
    f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
def done():
    out = subprocess.run(["redis-cli", "-p", "6390", "-n", "1", "get", "bench:done"], capture_output=True, text=True).stdout.strip()
    return int(out or 0)
t0, samples = None, []
while True:
    d, t = done(), time.time()
    if d > 0 and t0 is None: t0 = t
    if t0 is not None: samples.append((t - t0, d, [cpu(p) for p in pids]))
    if d >= n: break
    time.sleep(0.02)
ticks = 100  # USER_HZ
prev = (0.0, 0, samples[0][2])
for t, d, c in samples:
    if t - prev[0] >= 0.1 or d >= n:
        dt = max(t - prev[0], 1e-9)
        print(f"{t:6.2f}s {d:8d} jobs/s={(d - prev[1]) / dt:7.0f} cpu%={[round(100 * (a - b) / ticks / dt) for a, b in zip(c, prev[2])]}")
        prev = (t, d, c)
print(f"total {samples[-1][0]:.2f}s  {n / max(samples[-1][0], 1e-9):.0f} jobs/s")
PY
