#!/usr/bin/env bash
# Two builds of ClusterJobs side by side on one workload of the kit, in interleaved pairs: each pair runs A and B back
# to back, the order alternating from pair to pair, so that a machine changing under the runs (this VM does, docs/
# benchmarks.md) weighs on both alike. Prints the kit's line of each run (prefixed `ab pair=K build=A|B`), then
# medians and how many pairs B won. The method behind docs/benchmarks.md's A/B tables.
#   bench/ab.sh [--pairs P] A B -- KIT_ARGS...
#   A, B: a git revision (published from a temporary worktree), `.` (the working tree as it is, uncommitted changes
#         too) or a folder holding a published build (bench/ and seed/, as bench/run.sh leaves in its work folder's bin/).
#   KIT_ARGS: what bench_clusterjobs.py takes for one run, e.g. --mode 1node --workload W1 --n 100000,
#         --mode 3nodes --workload W4 --n 100000, --mode 1node --workload W2 --rate 200 --duration 15.
#   Env for both builds' processes as in bench/run.sh (CJ_CONCURRENCY, CJ_READ_AHEAD, DOTNET_..., CLUSTERJOBS_...).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
pairs=6
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs=$2; shift; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] && [ "$3" = "--" ] || { echo "usage: bench/ab.sh [--pairs P] A B -- KIT_ARGS..." >&2; exit 2; }
build_a=$1 build_b=$2; shift 3
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"  # $work with the kit, publish_build, the private Redis
worktrees=()
cleanup() {
  local w
  for w in "${worktrees[@]}"; do git -C "$repo" worktree remove --force "$w" >/dev/null 2>&1 || true; done
  rm -rf "$work/builds"  # what it published (hundreds of MB); the results stay
  stop_private_redis
}
trap cleanup EXIT

# Sets $prepared to the folder of the published build $1 (published here unless it already is one). Not in a
# subshell: the worktrees it adds are removed on exit.
prepare() {
  local spec=$1 name=$2
  if [ -f "$spec/bench/ClusterJobs.Bench.dll" ] && [ -f "$spec/seed/ClusterJobs.Seed.dll" ]; then
    prepared=$(cd "$spec" && pwd); return
  fi
  local out="$work/builds/$name" src
  if [ "$spec" = . ]; then
    src=$repo
  else
    git -C "$repo" rev-parse --verify -q "$spec^{commit}" >/dev/null || { echo "build $name: '$spec' is no revision and no published build" >&2; exit 2; }
    src="$work/src-$name"
    git -C "$repo" worktree add -f --detach -q "$src" "$spec" >&2
    worktrees+=("$src")
  fi
  echo "publishing build $name ($spec)..." >&2
  publish_build "$src" "$out"
  prepared=$out
}
prepare "$build_a" A; dir_a=$prepared
prepare "$build_b" B; dir_b=$prepared

results="$work/results/ab.txt"
: > "$results"
for pair in $(seq "$pairs"); do
  order="A B"; [ $((pair % 2)) = 0 ] && order="B A"
  for build in $order; do
    dir=$dir_a; [ "$build" = B ] && dir=$dir_b
    CJ_BENCH_DLL="$dir/bench/ClusterJobs.Bench.dll" CJ_SEED_DLL="$dir/seed/ClusterJobs.Seed.dll" \
      /usr/bin/python3 "$repo/bench/bench_clusterjobs.py" "$work" --peer clusterjobs --reps 1 "$@" \
      | grep '^peer=' | sed "s/^/ab pair=$pair build=$build /" | tee -a "$results"
  done
done
echo
/usr/bin/python3 - "$results" "$build_a" "$build_b" <<'PY'
import re, statistics, sys
path, name_a, name_b = sys.argv[1:]
runs = {}
for line in open(path):
    m = re.match(r"ab pair=(\d+) build=([AB]) ", line)
    if m:
        runs.setdefault(int(m.group(1)), {})[m.group(2)] = dict(re.findall(r"(\w+)=(\S+)", line))
w2 = any(r.get("workload") == "W2" for p in runs.values() for r in p.values())
# W2 is latency (lower wins), the others throughput (higher wins).
measures = [("p50_ms", -1), ("p99_ms", -1)] if w2 else [("jobs_per_s", 1)]
for key, sign in measures:
    values = {b: [float(p[b][key]) for p in runs.values() if b in p and p[b].get(key) not in (None, "", "nan")] for b in "AB"}
    both = [p for p in runs.values() if all(p.get(b, {}).get(key) not in (None, "", "nan") for b in "AB")]
    won = sum(1 for p in both if sign * (float(p["B"][key]) - float(p["A"][key])) > 0)
    for b, name in (("A", name_a), ("B", name_b)):
        v = values[b]
        if v:
            print(f"ab summary build={b} ({name}) {key} median={statistics.median(v):.2f} min={min(v):.2f} max={max(v):.2f} runs={len(v)}")
    if values["A"] and values["B"]:
        print(f"ab summary {key} b_over_a={statistics.median(values['B']) / statistics.median(values['A']):.3f} pairs_won_by_b={won}/{len(both)}")
PY
echo "results: $results" >&2
