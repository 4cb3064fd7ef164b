#!/usr/bin/env bash
# How many jobs per second Redis alone can do on this machine: redis-benchmark runs the Redis commands one job costs a
# node (the take and the record, as in NodeScripts.Take/Complete, without the batch-shared ZPOPMIN) as one EVAL per
# job, pipelined the way the node's batches are, against the private Redis on 127.0.0.1:6390 (started if none).
#   bench/redis_ceiling.sh [requests]
set -euo pipefail
n=${1:-200000}
work=$(mktemp -d /tmp/cj-ceiling.XXXXXX)
started=0
if ! redis-cli -p 6390 ping >/dev/null 2>&1; then
  redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile "$work/redis.pid" --dir "$work"
  started=1
  for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
trap '[ "$started" = 1 ] && kill "$(cat "$work/redis.pid")" 2>/dev/null; true' EXIT

# One job's commands on the node's side: read, lease, record, expire, publish. (The scripts batch the ZPOPMIN, the
# lease ZADD and the ZREM, one call per batch; here, one EVAL per job, each runs once per job.)
job="local k = 'ceiling:job:' .. ARGV[1]
redis.call('HMGET', k, 'envelope', 'cancel_requested', 'phase', 'attempts')
redis.call('HSET', k, 'state', 'running', 'started_at', 1, 'node', 'n', 'attempts', 1)
redis.call('ZADD', 'ceiling:leased', 1, ARGV[1])
redis.call('HMGET', k, 'state', 'parent', 'attempts')
redis.call('ZREM', 'ceiling:leased', ARGV[1])
redis.call('HSET', k, 'state', 'succeeded', 'result', 'null', 'finished_at', 1, 'node', 'n')
redis.call('PEXPIRE', k, 60000)
redis.call('PUBLISH', 'ceiling:events', ARGV[1])
return 1"
for P in 1 16 64; do
  v=$(redis-benchmark -h 127.0.0.1 -p 6390 -n "$n" -c 8 -P "$P" -r 1000000 -q EVAL "$job" 0 __rand_int__ 2>&1 |
      tr '\r' '\n' | grep 'requests per second' | tail -1 | awk -F': ' '{print $2}' | awk '{print $1}')
  echo "redis-benchmark job_commands=8 pipeline=$P jobs_per_s=$v"
done
for t in hset zadd zpopmin; do
  v=$(redis-benchmark -h 127.0.0.1 -p 6390 -t "$t" -n "$n" -c 8 -P 16 -q 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -1 | awk '{print $2}')
  echo "redis-benchmark cmd=$t pipeline=16 ops_per_s=$v"
done
redis-cli -p 6390 --scan --pattern 'ceiling:*' | xargs -r -n 500 redis-cli -p 6390 del >/dev/null
