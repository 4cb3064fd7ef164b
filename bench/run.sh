#!/usr/bin/env bash
# One command for the benchmarks: W1-W4 against ClusterJobs and, with --peers, Celery, RQ, BullMQ and Hangfire on the
# same private Redis (127.0.0.1:6390), with the kit in ../shared/bench-peers. Prints the kit's result lines, then
# medians and ratios (docs/benchmarks.md explains them).
#   bench/run.sh [--smoke] [--peers | --peers=celery,rq,bullmq,hangfire] [--reps N]
#   --smoke: tiny sizes, one repetition: proves the harness works (a test runs it); numbers mean nothing.
#   --peers: every peer; --peers=LIST: those named (Hangfire, the .NET peer, is built from bench/ClusterJobs.HangfirePeer).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
reps=3 smoke=0 peers=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; reps=1 ;;
    --peers) peers=celery,rq,bullmq,hangfire ;;
    --peers=*) peers=${1#--peers=} ;;
    --reps) reps=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"  # $work with the kit, publish_build, the private Redis
trap stop_private_redis EXIT
results="$work/results/clusterjobs-run.txt"
: > "$results"

echo "publishing (Release, ReadyToRun)..." >&2
publish_build "$repo" "$work/bin"
export CJ_BENCH_DLL="$work/bin/bench/ClusterJobs.Bench.dll"
export CJ_SEED_DLL="$work/bin/seed/ClusterJobs.Seed.dll"
peer() { [[ ",$peers," == *",$1,"* ]]; }
if peer hangfire; then
  publish_hangfire_peer "$repo" "$work/bin/hangfire"
  export CJ_HANGFIRE_DLL="$work/bin/hangfire/ClusterJobs.HangfirePeer.dll"
fi

if [ "$smoke" = 1 ]; then W1N=300 W1BIG=600 W2R=50 W2D=2 W3N=200 W4N=300; W2R2=100
else W1N=20000 W1BIG=100000 W2R=200 W2D=15 W3N=2000 W4N=20000; W2R2=1000; fi

run() { /usr/bin/python3 "$repo/bench/bench_clusterjobs.py" "$work" --reps "$reps" "$@" | tee -a "$results"; }
# The machine as this run found it: what Redis alone does here with one job's commands (bench/redis_ceiling.sh). This
# VM's speed moves from day to day (docs/benchmarks.md, eleventh session), so every run carries its own yardstick.
calibrate() { "$repo/bench/redis_ceiling.sh" "$([ "$smoke" = 1 ] && echo 2000 || echo 200000)" | sed 's/^/machine /' | tee -a "$results"; }
calibrate
run --peer clusterjobs --mode 1node --workload W1 --n "$W1N"
run --peer clusterjobs --mode 1node --workload W1 --n "$W1BIG" --note=-n100k
run --peer clusterjobs --mode 1node --workload W2 --rate "$W2R" --duration "$W2D"
run --peer clusterjobs --mode 1node --workload W2 --rate "$W2R2" --duration "$W2D"
run --peer clusterjobs --mode 1node --workload W3 --n "$W3N" --sleep-ms 20
run --peer clusterjobs --mode 1node-c2000 --workload W3 --n "$W3N" --sleep-ms 20
run --peer clusterjobs --mode 3nodes --workload W4 --n "$W4N"
run --peer clusterjobs --mode 3nodes --workload W4 --n "$W1BIG" --note=-n100k
# W2 floors (docs/benchmarks.md, "W2 floors"): what Redis and this machine allow without a node, and without any lease.
for rate in "$W2R" "$W2R2"; do
  run --peer floor-blpop --mode 1proc --workload W2 --rate "$rate" --duration "$W2D"
  run --peer floor-take --mode 1proc --workload W2 --rate "$rate" --duration "$W2D"
done
# W4 floor: three nodes with no cluster between them (no remoting, each its own router): what three node processes can
# do on two cores at all, so W4 can be split into what the machine costs and what the cluster adds.
run --peer floor-3solo --mode 3solo --workload W4 --n "$W4N"
run --peer floor-3solo --mode 3solo --workload W4 --n "$W1BIG" --note=-n100k
# Each peer in its best configuration of the kit's runs (../shared/bench-peers/README.md; Hangfire: docs/benchmarks.md).
if peer bullmq; then (cd "$work/bullmq" && [ -d node_modules ] || npm install --no-audit --no-fund >&2); fi
if peer celery; then
  run --peer celery --mode 2x-solo --workload W1 --n "$W1N"
  run --peer celery --mode threads-c8 --workload W2 --rate "$W2R" --duration "$W2D"
  run --peer celery --mode gevent-c100 --workload W3 --n "$W3N" --sleep-ms 20
fi
if peer rq; then
  run --peer rq --mode 2workers-simple --workload W1 --n $((W1N / 4))
  run --peer rq --mode 2workers-simple --workload W2 --rate "$W2R" --duration "$W2D"
fi
if peer bullmq; then
  run --peer bullmq --mode 1proc-c50 --workload W1 --n "$W1N"
  run --peer bullmq --mode 1proc-c50 --workload W1 --n "$W1BIG" --note=-n100k
  run --peer bullmq --mode 1proc-c50 --workload W2 --rate "$W2R" --duration "$W2D"
  run --peer bullmq --mode 1proc-c50 --workload W2 --rate "$W2R2" --duration "$W2D"
  run --peer bullmq --mode 2proc-c50 --workload W3 --n "$W3N" --sleep-ms 20
fi
if peer hangfire; then
  run --peer hangfire --mode 1proc-w50 --workload W1 --n "$W1N"
  run --peer hangfire --mode 1proc-w10 --workload W2 --rate "$W2R" --duration "$W2D"
  run --peer hangfire --mode 1proc-w10 --workload W2 --rate "$W2R2" --duration "$W2D"
  run --peer hangfire --mode 1proc-w100 --workload W3 --n "$W3N" --sleep-ms 20
fi
calibrate  # again at the end: a run that spans half an hour can see the machine change under it
echo
/usr/bin/python3 "$repo/bench/summarize.py" "$results"
# W4 / W1: three nodes over one, at 20k jobs and at 100k jobs.
# A smoke drain of a few hundred jobs ends within milliseconds, and its first and last jobs' time stamps (set by the
# kit's body after their INCRs) can land in either order: a negative jobs/s. Medians take it as it is, so the ratio
# lines still print (smoke numbers mean nothing); a full run's drains are seconds long.
median() { grep "workload=$1 " "$results" | grep "peer=${3:-clusterjobs} " | grep -E "notes=$2 *\$" | sed 's/.*jobs_per_s=\(-\{0,1\}[0-9.]*\).*/\1/' \
  | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}' || true; }  # no line: empty, not an exit (set -e)
for size in 20k:"" 100k:-n100k; do
  w1=$(median W1 "1node${size#*:}"); w4=$(median W4 "3nodes${size#*:}"); solo=$(median W4 "3solo${size#*:}" floor-3solo)
  if [ -n "$w1" ] && [ -n "$w4" ]; then
    awk -v a="$w4" -v b="$w1" -v n="${size%%:*}" 'BEGIN { printf "ratio workload=W4 n=%s three_nodes_over_one_node=%.2f\n", n, a / b }'
  fi
  if [ -n "$w1" ] && [ -n "$solo" ]; then
    awk -v a="$solo" -v b="$w1" -v n="${size%%:*}" 'BEGIN { printf "ratio workload=W4 n=%s floor_three_solo_nodes_over_one_node=%.2f\n", n, a / b }'
  fi
done
# W1 against the machine's yardstick (the mean of the run's two Redis ceilings at pipeline 16): comparable across days.
ceiling=$(grep '^machine redis-benchmark job_commands=8 pipeline=16 ' "$results" | sed 's/.*jobs_per_s=\([0-9.]*\).*/\1/' \
  | awk '{s += $1} END {if (NR) print s / NR}' || true)
w1=$(median W1 1node)
if [ -n "$w1" ] && [ -n "$ceiling" ]; then
  awk -v a="$w1" -v b="$ceiling" 'BEGIN { printf "ratio workload=W1 n=20k over_redis_ceiling_pipeline16=%.2f (ceiling %.0f jobs/s)\n", a / b, b }'
fi
echo "results: $results" >&2
