#!/usr/bin/env bash
# The soak: a seed and N nodes, plain processes as on a laptop, serve the `soak` queue of a private Redis (append-only
# file, fsync always) while a producer enqueues at a steady rate. Every few seconds one of these happens, in turn:
#   node-kill     a random node killed (SIGKILL) and started again
#   node-stop     a random node stopped (SIGTERM: it drains, hands back and leaves) and started again
#   router-kill   the oldest node (it holds the queue's router) killed and started again
#   redis-kill    Redis killed (SIGKILL) and started again on its files 2 s later
#   seed-kill     the seed killed and started again
# A node that exits by itself is counted and started again (as compose's restart policy would). When the producer is
# done, the check waits for the jobs to settle and exits 1 unless every job succeeded and each handler ran to its end
# at least once (bench/ClusterJobs.Bench/Soak.cs). Long runs belong here, not in the test suite; BenchHarnessSpecs
# runs a short one.
#   bench/soak.sh [--seconds T] [--rate R] [--nodes N] [--every S] [--settle S] [--build DIR]
#   --build: a folder holding a published build (bench/ and seed/, as bench/run.sh leaves in its work folder's bin/)
# Prints `soak chaos ...` (what was done) and the check's `soak jobs=...` line; logs stay in the printed work folder.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=300 rate=100 nodes=3 every=10 settle=180 build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2 ;; --rate) rate=$2 ;; --nodes) nodes=$2 ;; --every) every=$2 ;; --settle) settle=$2 ;;
    --build) build=$2 ;;
    *) echo "usage: bench/soak.sh [--seconds T] [--rate R] [--nodes N] [--every S] [--settle S] [--build DIR]" >&2; exit 2 ;;
  esac
  shift 2
done
# shellcheck source=bench/publish.sh
. "$repo/bench/publish.sh"
work=$(mktemp -d /tmp/cj-soak.XXXXXX)
mkdir -p "$work/logs" "$work/redis"
echo "soak work folder: $work" >&2
if [ -z "$build" ]; then
  echo "publishing..." >&2
  publish_build "$repo" "$work/bin"
  build=$work/bin
fi
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port) seed_port=$(free_port)
redis_url="redis://127.0.0.1:$redis_port/0"
mapfile -t image_env < <(/usr/bin/python3 "$repo/bench/image_env.py" "$repo/src/Node/Dockerfile")
cluster_env=(CLUSTER_IP=127.0.0.1 "CLUSTER_SEEDS=akka.tcp://clusterjobs@127.0.0.1:$seed_port" CLUSTER_HEARTBEAT_PAUSE=6)

redis_pid="" seed_pid="" producer_pid="" check_pid=""
declare -a node_pid node_started
cleanup() {
  local p
  for p in "${node_pid[@]}" "$seed_pid" "$producer_pid" "$check_pid" "$redis_pid"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
    --dir "$work/redis" >> "$work/logs/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return; sleep 0.1; done
  echo "redis did not start (see $work/logs/redis.log)" >&2; exit 1
}
generation=0
start_seed() {
  generation=$((generation + 1))
  env "${cluster_env[@]}" CLUSTER_PORT="$seed_port" dotnet "$build/seed/ClusterJobs.Seed.dll" > "$work/logs/seed-$generation.log" 2>&1 &
  seed_pid=$!
}
start_node() {  # slot
  generation=$((generation + 1))
  env "${image_env[@]}" "${cluster_env[@]}" CLUSTER_PORT=0 REDIS_URL="$redis_url" CLUSTERJOBS_CONCURRENCY=16 \
    dotnet "$build/bench/ClusterJobs.Bench.dll" soak-node > "$work/logs/node-$1-$generation.log" 2>&1 &
  node_pid[$1]=$!
  node_started[$1]=$generation
}
alive() { kill -0 "$1" 2>/dev/null; }
unexpected_exits=0
# A node that ended without being told to: counted, then started again.
revive() {
  local s
  for s in $(seq 0 $((nodes - 1))); do
    if ! alive "${node_pid[$s]}"; then
      local rc=0; wait "${node_pid[$s]}" || rc=$?
      echo "soak node slot=$s exited by itself rc=$rc (log: $(ls -t "$work"/logs/node-"$s"-*.log | head -1))" >&2
      unexpected_exits=$((unexpected_exits + 1))
      start_node "$s"
    fi
  done
  alive "$seed_pid" || { wait "$seed_pid" || true; echo "soak seed exited by itself" >&2; unexpected_exits=$((unexpected_exits + 1)); start_seed; }
}
oldest_slot() {
  local s best=0
  for s in $(seq 0 $((nodes - 1))); do
    if [ "${node_started[$s]}" -lt "${node_started[$best]}" ]; then best=$s; fi
  done
  echo "$best"
}
kill_node() {  # slot signal
  local pid=${node_pid[$1]}
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq 600); do alive "$pid" || break; sleep 0.1; done  # SIGTERM: the node drains (20 s at most) and leaves
  wait "$pid" 2>/dev/null || true
  start_node "$1"
}

start_redis
start_seed
for s in $(seq 0 $((nodes - 1))); do start_node "$s"; done
sleep 5
env REDIS_URL="$redis_url" dotnet "$build/bench/ClusterJobs.Bench.dll" soak-produce --rate "$rate" --seconds "$seconds" \
  > "$work/logs/producer.log" 2>&1 &
producer_pid=$!

declare -A done_count=([node-kill]=0 [node-stop]=0 [router-kill]=0 [redis-kill]=0 [seed-kill]=0)
actions=(node-kill node-stop router-kill redis-kill seed-kill)
k=0
while alive "$producer_pid"; do
  sleep "$every"
  alive "$producer_pid" || break
  revive
  action=${actions[$((k % ${#actions[@]}))]}
  k=$((k + 1))
  case "$action" in
    node-kill) kill_node $((RANDOM % nodes)) KILL ;;
    node-stop) kill_node $((RANDOM % nodes)) TERM ;;
    router-kill) kill_node "$(oldest_slot)" KILL ;;
    redis-kill) kill -9 "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; sleep 2; start_redis ;;
    seed-kill) kill -9 "$seed_pid"; wait "$seed_pid" 2>/dev/null || true; start_seed ;;
  esac
  done_count[$action]=$((done_count[$action] + 1))
  echo "soak t=$SECONDS action=$action" >&2
done
producer_rc=0; wait "$producer_pid" || producer_rc=$?
producer_pid=""
revive
echo "soak chaos node_kills=${done_count[node-kill]} node_stops=${done_count[node-stop]} router_kills=${done_count[router-kill]}" \
  "redis_kills=${done_count[redis-kill]} seed_kills=${done_count[seed-kill]} unexpected_exits=$unexpected_exits"
produced=$(grep -o 'enqueued=[0-9]*' "$work/logs/producer.log" | cut -d= -f2 || true)
[ "$producer_rc" = 0 ] && [ -n "$produced" ] || { echo "the producer failed (rc=$producer_rc): $work/logs/producer.log" >&2; exit 1; }
grep '^soak' "$work/logs/producer.log"
# While the jobs settle, this script stays the supervisor: a node the cluster downs now (a seed restarted just before
# the last kill can be left with one Up peer, and keep-majority's tie then downs the survivors) is started again too.
env REDIS_URL="$redis_url" dotnet "$build/bench/ClusterJobs.Bench.dll" soak-check --n "$produced" --timeout "$settle" &
check_pid=$!
while alive "$check_pid"; do sleep 1; alive "$check_pid" && revive; done
check_rc=0; wait "$check_pid" || check_rc=$?
echo "soak settle unexpected_exits=$unexpected_exits" >&2
exit "$check_rc"
