#!/usr/bin/env bash
# Where a W1 drain spends its time: Redis CPU and node CPU per job, the Redis commands per job, and a CPU sampling
# profile of the node (dotnet-trace), on the private Redis at 127.0.0.1:6390 (started here if none answers).
#   bench/profile.sh [N]        (default 100000 no-op jobs; needs dotnet-trace: dotnet tool install -g dotnet-trace)
#   TRACE=0 bench/profile.sh    per-job figures only, without the trace's own overhead
# Prints per-job figures, then the top frames of the profile; leaves the trace in $BENCH_WORK (default a temp dir).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100000}
work=${BENCH_WORK:-$(mktemp -d /tmp/cj-profile.XXXXXX)}
export PATH="$PATH:$HOME/.dotnet/tools"
trace=${TRACE:-1}
[ "$trace" = 0 ] || command -v dotnet-trace >/dev/null || { echo "needs dotnet-trace (dotnet tool install -g dotnet-trace)" >&2; exit 2; }
dotnet build "$repo/bench/ClusterJobs.Bench" -c Release -v q -nologo >&2
dll="$repo/bench/ClusterJobs.Bench/bin/Release/net10.0/ClusterJobs.Bench.dll"

started=0
if ! redis-cli -p 6390 ping >/dev/null 2>&1; then
  redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile "$work/redis.pid" --dir "$work"
  started=1
  for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
node_pid=
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; [ "$started" = 1 ] && kill "$(cat "$work/redis.pid")" 2>/dev/null; true; }
trap cleanup EXIT
redis-cli -p 6390 flushall >/dev/null
export REDIS_URL=redis://127.0.0.1:6390/0 CLUSTER_IP=127.0.0.1 CLUSTER_PORT=0 CLUSTERJOBS_CONCURRENCY=500 DOTNET_gcServer=0

echo "enqueueing $n no-op jobs..." >&2
dotnet "$dll" produce --n "$n" >/dev/null || { echo "the producer failed" >&2; exit 1; }
queued=$(redis-cli -p 6390 zcard 'cj:{bench}:ready')
echo "queued: $queued" >&2

redis_pid=$(redis-cli -p 6390 info server | awk -F: '/^process_id/ { print $2 }' | tr -d '\r')
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# shellcheck disable=SC2046  # the node image's runtime settings (DOTNET_ReadyToRun=0), as it ships
env $(python3 "$repo/bench/image_env.py" "$repo/src/Node/Dockerfile") dotnet "$dll" node > "$work/node.log" 2>&1 &
node_pid=$!
# Start-up, and the node's warm-up (its own throwaway jobs and Redis commands), end before its first job of ours does.
until [ -n "$(redis-cli -p 6390 -n 1 get bench:done)" ]; do sleep 0.05; done
redis-cli -p 6390 config resetstat >/dev/null # commandstats of the drain only
r0=$(ticks "$redis_pid"); c0=$(redis-cli -p 6390 info stats | awk -F: '/^total_commands_processed/ { print $2 }' | tr -d '\r')
d0=$(redis-cli -p 6390 -n 1 get bench:done); s0=$(ticks "$node_pid")
trace_pid=
if [ "$trace" != 0 ]; then
  dotnet-trace collect -p "$node_pid" --profile dotnet-sampled-thread-time --duration 00:00:00:04 -o "$work/w1.nettrace" >/dev/null 2>&1 &
  trace_pid=$!
fi
while [ "$(redis-cli -p 6390 zcard 'cj:{bench}:ready')" -gt 0 ] || [ "$(redis-cli -p 6390 zcard 'cj:{bench}:leased')" -gt 0 ]; do sleep 0.2; done
n0=$(ticks "$node_pid")
r1=$(ticks "$redis_pid"); c1=$(redis-cli -p 6390 info stats | awk -F: '/^total_commands_processed/ { print $2 }' | tr -d '\r')
[ -z "$trace_pid" ] || wait "$trace_pid" || true

awk -v n="$((queued - d0))" -v rt=$((r1 - r0)) -v nt="$((n0 - s0))" -v hz="$hz" -v cmds=$((c1 - c0)) 'BEGIN {
  printf "jobs=%d redis_cpu_us_per_job=%.1f node_cpu_us_per_job=%.1f redis_commands_per_job=%.2f\n",
    n, rt / hz * 1e6 / n, nt / hz * 1e6 / n, cmds / n }'
redis-cli -p 6390 info commandstats | grep cmdstat_ | tr -d '\r' || true
[ "$trace" = 0 ] || dotnet-trace report "$work/w1.nettrace" topN -n 40 || echo "(dotnet-trace report failed; open $work/w1.nettrace in PerfView or speedscope)"
[ "$trace" = 0 ] || echo "trace: $work/w1.nettrace" >&2
