# Sourced by bench/run.sh and bench/ab.sh: the kit in a writable work folder, publishing a build as the images ship
# it, and the private Redis on 127.0.0.1:6390. Expects $repo; sets $work (BENCH_WORK or a fresh temp folder).

kit_src=${BENCH_KIT:-$(cd "$repo/.." && pwd)/shared/bench-peers}
[ -f "$kit_src/bench.py" ] || { echo "benchmark kit not found at $kit_src (set BENCH_KIT)" >&2; exit 2; }
/usr/bin/python3 -c 'import redis' || { echo "needs python3-redis (apt-get install python3-redis)" >&2; exit 2; }

work=${BENCH_WORK:-$(mktemp -d /tmp/cj-bench.XXXXXX)}
cp -r "$kit_src/." "$work/" && chmod -R u+w "$work"
mkdir -p "$work/run" "$work/results"

# shellcheck source=bench/publish.sh
. "$repo/bench/publish.sh"  # publish_build

# The Hangfire peer (bench/ClusterJobs.HangfirePeer), published as our bench node is, apart from publish_build: a
# revision that bench/ab.sh builds may predate it.
#   publish_hangfire_peer SOURCE_ROOT OUT   -> OUT/ClusterJobs.HangfirePeer.dll
publish_hangfire_peer() {
  dotnet publish "$1/bench/ClusterJobs.HangfirePeer" -c Release -r linux-x64 --self-contained false -o "$2" -v q -nologo >&2
}

started_redis=0
if ! redis-cli -p 6390 ping >/dev/null 2>&1; then
  redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$work/run/redis-6390.pid" --logfile "$work/run/redis-6390.log" --dir "$work/run"
  started_redis=1
  for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
else
  # A Redis already there (one started by hand, or left by a run that was killed) is used, and the kit reads its CPU
  # time by pid: asked of Redis itself, since the pidfile of a killed run's Redis may be gone with its work folder.
  redis_pid=$(redis-cli -p 6390 info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p') || redis_pid=
  # (a Redis in a container says its own pid there: 1, say, which here is another process)
  [ -n "$redis_pid" ] && [ "$(cat "/proc/$redis_pid/comm" 2>/dev/null)" = redis-server ] || {
    echo "127.0.0.1:6390 answers but is not a Redis on this machine whose pid can be read (INFO server said '$redis_pid');" \
      "stop what listens there: ss -ltnp 'sport = :6390'" >&2; exit 2; }
  echo "$redis_pid" > "$work/run/redis-6390.pid"
  echo "using the Redis already running on 127.0.0.1:6390 (pid $redis_pid); it is flushed before each run" >&2
fi
stop_private_redis() { [ "$started_redis" = 1 ] && kill "$(cat "$work/run/redis-6390.pid")" 2>/dev/null || true; }
