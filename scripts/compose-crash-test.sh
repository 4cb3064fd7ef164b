#!/usr/bin/env bash
# compose-crash-test.sh: proves that docker-compose.yml runs for real and survives a node crash.
#
# Runs the compose file under podman with the compose-kit (no Docker engine needed), with 3 nodes:
#   1. setup.sh (kit base images; idempotent), then up.sh <repo> --scale node=3 --build
#   2. waits for redis (PONG), the seed ("Seed up at") and every node ("Welcome from" = joined the cluster)
#   3. enqueues JOBS jobs into queue "default" from outside the nodes, with plain Redis commands (one Lua EVAL
#      through redis-cli in the redis container) laid out exactly as docs/protocol.md describes
#   4. as soon as node 2 has jobs in flight, SIGKILLs it with crash.sh (restart: on-failure restarts it)
#   5. waits until every job hash says "succeeded" and checks each result, and that the dashboard service's operator
#      API (port 8080) sees the cluster's members and the queue, then prints
#        compose: 1000 of 1000 succeeded after crashing main_node_2
#      and exits 0; otherwise prints diagnostics (status, container logs) and exits 1
#   Always tears the project down with down.sh <repo> -v (also once before starting, for a clean Redis volume).
#
# Env: COMPOSE_KIT (default: <repo>/../shared/compose-kit), JOBS (1000), SLEEP_MS (200: every job but each
#      ADD_EVERY-th one is "sleep" {"ms":SLEEP_MS}; the others are "add" [N,N]), ADD_EVERY (10),
#      DONE_TIMEOUT (120 s after the crash), START_TIMEOUT (180 s), KEEP_UP=1 (skip the final teardown).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kit="${COMPOSE_KIT:-$(cd "$repo/.." && pwd)/shared/compose-kit}"
[[ -f $kit/up.sh ]] || { echo "compose-kit not found at $kit (set COMPOSE_KIT)" >&2; exit 2; }

JOBS=${JOBS:-1000}
SLEEP_MS=${SLEEP_MS:-200}
ADD_EVERY=${ADD_EVERY:-10}
NODES=3
DONE_TIMEOUT=${DONE_TIMEOUT:-120}
START_TIMEOUT=${START_TIMEOUT:-180}

# Project name as the kit (and Docker Compose) derive it: COMPOSE_PROJECT_NAME, else top-level name:, else folder.
project=${COMPOSE_PROJECT_NAME:-$(sed -n 's/^name:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' "$repo/docker-compose.yml" | head -1)}
project=${project:-$(basename "$repo")}
project=$(echo "$project" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9_-')
redis_ctr=${project}_redis_1
seed_ctr=${project}_seed_1
victim=${project}_node_2
nodes=()
for i in $(seq 1 $NODES); do nodes+=("${project}_node_$i"); done

t0=$SECONDS
log() { printf '[crash-test %4ds] %s\n' $((SECONDS - t0)) "$*"; }
pm() { bash "$kit/podman.sh" "$@"; }
rcli() { pm exec "$redis_ctr" redis-cli "$@"; }
# logs_have CONTAINER PATTERN: reads the whole log (no grep -q: with pipefail, its early exit would SIGPIPE podman).
logs_have() { (($(pm logs "$1" 2>&1 | grep -c -- "$2" || true) > 0)); }

teardown() {
  local rc=$?
  if [[ ${KEEP_UP:-0} == 1 ]]; then
    log "KEEP_UP=1: leaving the project running (down: $kit/down.sh $repo -v)"
  else
    log "tearing down: down.sh $repo -v"
    bash "$kit/down.sh" "$repo" -v >/dev/null 2>&1 || bash "$kit/down.sh" "$repo" -v || true
  fi
  exit "$rc"
}

diagnostics() {
  echo "===== diagnostics ====="
  bash "$kit/status.sh" "$repo" || true
  if pm container exists "$redis_ctr" 2>/dev/null; then
    echo "--- job states: $(count_states 2>/dev/null | tr '\n' ' ')"
    echo "--- ready=$(rcli ZCARD 'cj:{default}:ready' 2>/dev/null) leased=$(rcli ZCARD 'cj:{default}:leased' 2>/dev/null)" \
      "scheduled=$(rcli ZCARD 'cj:{default}:scheduled' 2>/dev/null) dead=$(rcli LLEN 'cj:{default}:dead' 2>/dev/null)"
  fi
  local c
  for c in "$redis_ctr" "$seed_ctr" "${nodes[@]}"; do
    echo "--- logs of $c (last 40 lines)"
    pm logs --tail 40 "$c" 2>&1 || true
  done
}

fail() {
  log "FAIL: $*"
  diagnostics
  exit 1
}

# --- Lua run inside redis (docs/protocol.md, "Enqueue with plain commands"; a script is atomic like MULTI/EXEC) --
# KEYS[1] ready ZSET; ARGV: job hash prefix, events channel, wake channel, count, sleep ms, add every.
# Job N: id default:job-N, priority 0 (ready_score = 9*10^13 + enqueued_at), task sleep {"ms":..} or add [N,N].
read -r -d '' ENQUEUE_LUA <<'LUA' || true
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = string.format('%.0f', now)
local score = string.format('%.0f', 9 * 10000000000000 + now)
local n, ms, every = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for i = 1, n do
  local id = 'default:job-' .. i
  local task, args = 'add', '[' .. i .. ',' .. i .. ']'
  if ms > 0 and i % every ~= 0 then task, args = 'sleep', '{"ms":' .. ms .. '}' end
  local envelope = '{"v":1,"id":"' .. id .. '","task":"' .. task .. '","queue":"default","args":' .. args ..
    ',"enqueued_at":' .. now_s .. '}'
  redis.call('HSET', ARGV[1] .. id, 'envelope', envelope, 'state', 'queued', 'task', task, 'attempts', 0,
    'max_attempts', 3, 'ready_score', score, 'enqueued_at', now_s)
  redis.call('ZADD', KEYS[1], score, id)
  redis.call('PUBLISH', ARGV[2], id .. ' queued')
end
redis.call('PUBLISH', ARGV[3], 'default:job-' .. n)
return n
LUA

# ARGV: job hash prefix, count. Returns "state=count" lines.
read -r -d '' COUNT_LUA <<'LUA' || true
local counts = {}
for i = 1, tonumber(ARGV[2]) do
  local s = redis.call('HGET', ARGV[1] .. 'default:job-' .. i, 'state') or 'missing'
  counts[s] = (counts[s] or 0) + 1
end
local out = {}
for k, v in pairs(counts) do out[#out + 1] = k .. '=' .. v end
table.sort(out)
return out
LUA

# KEYS[1] leased ZSET; ARGV: job hash prefix, "@<hostname>:". Jobs leased (in flight) by that node.
read -r -d '' INFLIGHT_LUA <<'LUA' || true
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local node = redis.call('HGET', ARGV[1] .. id, 'node')
  if node and string.find(node, ARGV[2], 1, true) then n = n + 1 end
end
return n
LUA

# ARGV: job hash prefix, count, sleep ms, add every. Checks every result; returns
# {wrong results, jobs delivered more than once (lost >= 1), jobs that took more than one attempt, first wrong id}.
read -r -d '' CHECK_LUA <<'LUA' || true
local bad, lost, retried, first = 0, 0, 0, ''
local ms, every = tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, tonumber(ARGV[2]) do
  local h = redis.call('HMGET', ARGV[1] .. 'default:job-' .. i, 'state', 'result', 'lost', 'attempts')
  local want = tostring(2 * i)
  if ms > 0 and i % every ~= 0 then want = tostring(ms) end
  if h[1] ~= 'succeeded' or h[2] ~= want then
    bad = bad + 1
    if first == '' then first = 'default:job-' .. i .. ' state=' .. tostring(h[1]) .. ' result=' .. tostring(h[2]) end
  end
  if h[3] and tonumber(h[3]) > 0 then lost = lost + 1 end
  if h[4] and tonumber(h[4]) > 1 then retried = retried + 1 end
end
return {bad, lost, retried, first}
LUA

job_prefix='cj:{default}:job:'
count_states() { rcli EVAL "$COUNT_LUA" 0 "$job_prefix" "$JOBS"; }

# ------------------------------------------------------------------------------------------------------------------
trap teardown EXIT

log "repo=$repo kit=$kit project=$project"
log "setup.sh (kit base images)"
# Exit 3 = the container tooling itself could not run (not a ClusterJobs failure); see .ci/run.
bash "$kit/setup.sh" || { log "INFRA: compose-kit setup failed"; exit 3; }

log "down.sh -v first: start from an empty Redis volume"
bash "$kit/down.sh" "$repo" -v >/dev/null 2>&1 || true

log "up.sh $repo --scale node=$NODES --build"
t_up=$SECONDS
if ! bash "$kit/up.sh" "$repo" --scale "node=$NODES" --build; then
  # Our Dockerfiles not building (a compile error, a file the image does not copy) is ours to fix, not the tooling's.
  up_log=/var/cache/compose-kit/projects/$project/up.log
  if [[ -f $up_log ]] && grep -E 'error (CS|MSB|NU)[0-9]+' "$up_log" | head -5 | grep .; then
    fail "an image of ours does not build (the errors above; whole log: $up_log)"
  fi
  log "INFRA: up.sh failed (image build or podman)"; diagnostics; exit 3
fi
log "up.sh done in $((SECONDS - t_up))s"

# --- wait for redis, the seed and every node to be in the cluster ----------------------------------------------
log "waiting for redis, the seed and $NODES nodes to join the cluster (timeout ${START_TIMEOUT}s)"
t_wait=$SECONDS
deadline=$((SECONDS + START_TIMEOUT))
while :; do
  missing=()
  [[ $(rcli PING 2>/dev/null) == PONG ]] || missing+=("$redis_ctr")
  logs_have "$seed_ctr" 'Seed up at' || missing+=("$seed_ctr")
  for c in "${nodes[@]}"; do
    logs_have "$c" 'Welcome from' || missing+=("$c")
  done
  ((${#missing[@]} == 0)) && break
  ((SECONDS < deadline)) || fail "not up after ${START_TIMEOUT}s: ${missing[*]}"
  sleep 2
done
log "all up in $((SECONDS - t_wait))s: $redis_ctr (PONG), $seed_ctr (Seed up), ${nodes[*]} (Welcome from seed)"
for c in "${nodes[@]}"; do pm logs "$c" 2>&1 | awk -v c="$c" '/Welcome from/ && !n++ {print "  " c ": " $0}'; done

victim_host=$(pm inspect --format '{{.Config.Hostname}}' "$victim")
[[ -n $victim_host ]] || fail "cannot read the hostname of $victim"

# --- enqueue -----------------------------------------------------------------------------------------------------
log "enqueueing $JOBS jobs into cj:{default}:ready (sleep ${SLEEP_MS}ms, every ${ADD_EVERY}th: add [N,N])"
n=$(rcli EVAL "$ENQUEUE_LUA" 1 'cj:{default}:ready' "$job_prefix" 'cj:{default}:events' 'cj:{default}:wake' \
  "$JOBS" "$SLEEP_MS" "$ADD_EVERY")
[[ $n == "$JOBS" ]] || fail "enqueue script returned '$n'"
t_enq=$SECONDS
log "enqueued $n jobs"

# --- crash node 2 while it has jobs in flight --------------------------------------------------------------------
# A job's hash names the node that leased it from Redis (the node hosting the queue's router singleton), not the
# node whose worker runs it. So node 2 certainly has work in flight when either it leased jobs itself (it hosts the
# router), or more jobs are running than the other nodes have slots ((NODES-1) x CONCURRENCY): routers lease only as
# many jobs as the pools asked for, and a pool asks for at most its concurrency.
concurrency=${CLUSTERJOBS_CONCURRENCY:-16}
others=$(((NODES - 1) * concurrency))
inflight=0 running=0
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)); do
  inflight=$(rcli EVAL "$INFLIGHT_LUA" 1 'cj:{default}:leased' "$job_prefix" "@${victim_host}:")
  running=$(rcli ZCARD 'cj:{default}:leased')
  ((inflight > 0 || running > others)) && break
  sleep 0.1
done
# The crash comes right after the jobs in flight are seen: counting every job's state first takes seconds, and once
# took long enough for all 1000 to finish before the crash (a run that then proved nothing).
if ((inflight > 0)); then
  log "$victim (hostname $victim_host) hosts the router: it leased $inflight of the $running running job(s); crashing it"
elif ((running > others)); then
  log "$running job(s) running > $others slots on the other nodes, so $victim has at least $((running - others)) in flight; crashing it"
else
  log "WARNING: could not see jobs in flight on $victim within 30s; crashing it anyway"
fi
bash "$kit/crash.sh" "$victim"
t_crash=$SECONDS
log "states right after the crash: $(count_states | tr '\n' ' ')"

# --- wait for every job to succeed -------------------------------------------------------------------------------
log "waiting for $JOBS succeeded jobs (timeout ${DONE_TIMEOUT}s)"
deadline=$((SECONDS + DONE_TIMEOUT))
succeeded=0 peak=0
while :; do
  states=$(count_states | tr '\n' ' ')
  succeeded=$(grep -o 'succeeded=[0-9]*' <<<"$states" | cut -d= -f2 || true)
  succeeded=${succeeded:-0}
  r=$(grep -o 'running=[0-9]*' <<<"$states" | cut -d= -f2 || true)
  ((${r:-0} > peak)) && peak=${r:-0}
  log "progress: $states"
  ((succeeded == JOBS)) && break
  ((SECONDS < deadline)) || fail "only $succeeded of $JOBS succeeded ${DONE_TIMEOUT}s after crashing $victim"
  sleep 1
done
log "all $JOBS succeeded $((SECONDS - t_crash))s after the crash ($((SECONDS - t_enq))s after enqueueing)"

mapfile -t check < <(rcli EVAL "$CHECK_LUA" 0 "$job_prefix" "$JOBS" "$SLEEP_MS" "$ADD_EVERY")
((check[0] == 0)) || fail "${check[0]} job(s) have a wrong result, first: ${check[3]}"
log "results: all $JOBS correct; ${check[1]} job(s) were redelivered after a lost delivery (lost >= 1); ${check[2]} took more than one attempt"
((check[1] > 0)) || fail "no job has lost >= 1: the crash of $victim caught no job in flight, so it proved nothing"
log "most jobs running at once after the crash: $peak (cluster capacity: $((NODES * concurrency)) slots)"
log "$victim after the crash: $(pm inspect --format 'state={{.State.Status}} restarts={{.RestartCount}}' "$victim" 2>/dev/null || echo gone)"

# --- the dashboard service: its operator API sees the whole cluster and the queue it just ran -------------------------
dashboard_ctr=${project}_dashboard_1
dash_ip=$(pm inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$dashboard_ctr" 2>/dev/null || true)
api=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)) && [[ -z $api ]]; do
  # The published port first (as a user reaches it), else the container's own address.
  for base in http://127.0.0.1:8080 ${dash_ip:+http://$dash_ip:8080}; do
    curl -sf --max-time 5 "$base/api/health" >/dev/null 2>&1 && { api=$base; break; }
  done
  [[ -n $api ]] || sleep 2
done
[[ -n $api ]] || fail "the dashboard's operator API ($dashboard_ctr, port 8080) did not answer within 60s"
members=$(curl -sf --max-time 10 "$api/api/cluster" | /usr/bin/python3 -c 'import json,sys; print(sum(m["status"] == "up" for m in json.load(sys.stdin)["members"]))') ||
  fail "the dashboard's /api/cluster did not answer with its members"
default_queue=$(curl -sf --max-time 10 "$api/api/queues/default") || fail "the dashboard's /api/queues/default did not answer"
log "dashboard at $api: $members members up; queue default: $default_queue"
# The seed, the nodes and the dashboard itself; the crashed node may still be rejoining.
((members >= NODES + 1)) || fail "the dashboard sees only $members members up (expected the seed, $NODES nodes and itself, one node perhaps still rejoining)"
/usr/bin/python3 -c 'import json,sys; q=json.loads(sys.argv[1]); j=q["jobs"]; sys.exit(0 if j["ready"] == 0 and j["dead"] == 0 and len(q["served_by"]) >= 1 else 1)' \
  "$default_queue" || fail "the dashboard's view of queue default is wrong: $default_queue"

echo "compose: $succeeded of $JOBS succeeded after crashing $victim"
exit 0
