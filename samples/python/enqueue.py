#!/usr/bin/env python3
"""Enqueue a ClusterJobs job with plain Redis commands (no Lua), optionally waiting for its result.

Follows docs/protocol.md (envelope format v1): the job hash and the queue entry are written in one
MULTI/EXEC block, so nodes never see a queue entry without its record.

    python3 enqueue.py --queue default --task add --args '[2, 40]' --wait 10
    <job id>
    state=succeeded result=42

Needs redis-py 4.x (Debian: python3-redis). Targets a standalone Redis or Garnet; see README.md for
Redis Cluster.
"""

import argparse
import json
import re
import sys
import time
import uuid

import redis

ENVELOPE_VERSION = 1
MAX_PRIORITY = 9
MAX_PAYLOAD_BYTES = 512 * 1024        # nodes dead-letter bigger envelopes (PayloadTooLarge)
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF_MS = 1_000
DEFAULT_BACKOFF_MAX_MS = 300_000
TERMINAL_STATES = {"succeeded", "failed", "dead_lettered", "cancelled"}
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def ready_score(priority: int, enqueued_at_ms: int) -> int:
    """Lower runs first: priority bands of 10^13 ms, then age (docs/protocol.md, "Ready score")."""
    return (MAX_PRIORITY - priority) * 10**13 + enqueued_at_ms


class QueueKeys:
    """The keys and channels of one queue; all share the hash tag {queue}."""

    def __init__(self, prefix: str, queue: str):
        base = f"{prefix}:{{{queue}}}:"
        self.ready = base + "ready"
        self.scheduled = base + "scheduled"
        self.wake = base + "wake"
        self.events = base + "events"
        self.job_prefix = base + "job:"

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id


def build_envelope(job_id, queue, task, args, priority, enqueued_at, not_before, max_attempts):
    envelope = {
        "v": ENVELOPE_VERSION,
        "id": job_id,
        "task": task,
        "queue": queue,
        "args": args,
        "priority": priority,
        "enqueued_at": enqueued_at,
    }
    if not_before is not None:                   # omitted (not null) for jobs that may start at once
        envelope["not_before"] = not_before
    envelope.update({
        "max_attempts": max_attempts,
        "backoff_ms": DEFAULT_BACKOFF_MS,
        "backoff_max_ms": DEFAULT_BACKOFF_MAX_MS,
        "attempt": 0,
    })
    return envelope


def enqueue(r, keys, envelope_json, envelope, task, priority, max_attempts):
    """Writes the job hash and its queue entry atomically (MULTI/EXEC), then tells nodes and waiters."""
    job_id = envelope["id"]
    enqueued_at = envelope["enqueued_at"]
    not_before = envelope.get("not_before")
    score = ready_score(priority, enqueued_at)
    state = "scheduled" if not_before is not None and not_before > enqueued_at else "queued"

    pipe = r.pipeline(transaction=True)          # MULTI ... EXEC
    pipe.hset(keys.job(job_id), mapping={
        "envelope": envelope_json,
        "state": state,
        "task": task,
        "attempts": 0,
        "max_attempts": max_attempts,
        "ready_score": score,                    # also needed for delayed jobs: nodes promote them with it
        "enqueued_at": enqueued_at,
    })
    if state == "scheduled":
        pipe.zadd(keys.scheduled, {job_id: not_before})
    else:
        pipe.zadd(keys.ready, {job_id: score})
        pipe.publish(keys.wake, job_id)          # optional: nodes also poll every 250 ms
    pipe.publish(keys.events, f"{job_id} {state}")
    pipe.execute()


def read_job(r, keys, job_id):
    return r.hgetall(keys.job(job_id))


def wait_for_terminal(r, pubsub, keys, job_id, timeout):
    """Returns the job hash once its state is terminal, or None on timeout.

    The caller subscribed before enqueuing, so no event can be missed; the hash is also re-read
    every second in case pub/sub messages were lost (e.g. on a reconnect).
    """
    deadline = time.monotonic() + timeout
    next_check = 0.0
    while True:
        now = time.monotonic()
        if now >= next_check:
            job = read_job(r, keys, job_id)
            if not job:
                raise RuntimeError(f"job {job_id} has no record in Redis (expired or deleted)")
            if job.get("state") in TERMINAL_STATES:
                return job
            next_check = now + 1.0
        if now >= deadline:
            return None
        message = pubsub.get_message(ignore_subscribe_messages=True,
                                     timeout=max(0.0, min(deadline, next_check) - now))
        if message and message["type"] == "message":
            event_id, _, state = message["data"].rpartition(" ")
            if event_id == job_id and state in TERMINAL_STATES:
                next_check = 0.0                 # read the record now


def parse_args(argv):
    p = argparse.ArgumentParser(description="Enqueue a ClusterJobs job with plain Redis commands.")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="redis:// URL (default %(default)s)")
    p.add_argument("--queue", default="default", help="queue name (default %(default)s)")
    p.add_argument("--task", required=True, help="task name, e.g. add")
    p.add_argument("--args", default="[]", help="JSON array (by position) or object (by name); default []")
    p.add_argument("--priority", type=int, default=0, help="0 (lowest, default) to 9 (highest)")
    p.add_argument("--countdown", type=float, default=0, help="seconds to wait before the job may start")
    p.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS, help="default %(default)s")
    p.add_argument("--prefix", default="cj", help="key prefix (default %(default)s)")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="wait up to SECONDS for a terminal state and print it (exit 1 on timeout)")
    a = p.parse_args(argv)

    if not QUEUE_NAME.match(a.queue):
        p.error("--queue: use 1-100 letters, digits, '_', '.' or '-'")
    if not a.prefix or "{" in a.prefix or "}" in a.prefix:
        p.error("--prefix must be non-empty and contain no braces")
    if not a.task.strip():
        p.error("--task is empty")
    if not 0 <= a.priority <= MAX_PRIORITY:
        p.error(f"--priority must be 0-{MAX_PRIORITY}")
    if a.countdown < 0:
        p.error("--countdown must not be negative")
    if a.max_attempts < 1:
        p.error("--max-attempts must be at least 1")
    if a.wait is not None and a.wait <= 0:
        p.error("--wait must be positive")
    try:
        a.args = json.loads(a.args)
    except json.JSONDecodeError as e:
        p.error(f"--args is not JSON: {e}")
    if not isinstance(a.args, (list, dict)):
        p.error("--args must be a JSON array or object")
    return a


def main(argv=None):
    a = parse_args(argv)
    r = redis.Redis.from_url(a.redis, decode_responses=True)
    keys = QueueKeys(a.prefix, a.queue)

    job_id = f"{a.queue}:{uuid.uuid4().hex}"
    enqueued_at = int(time.time() * 1000)
    not_before = enqueued_at + int(a.countdown * 1000) if a.countdown > 0 else None
    envelope = build_envelope(job_id, a.queue, a.task, a.args, a.priority, enqueued_at, not_before, a.max_attempts)
    envelope_json = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    size = len(envelope_json.encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        print(f"enqueue.py: the envelope is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit: "
              "store large data elsewhere and pass a reference", file=sys.stderr)
        return 2

    pubsub = None
    if a.wait is not None:
        pubsub = r.pubsub()
        pubsub.subscribe(keys.events)            # before enqueuing, so the final event cannot be missed
    try:
        enqueue(r, keys, envelope_json, envelope, a.task, a.priority, a.max_attempts)
        print(job_id, flush=True)
        if pubsub is None:
            return 0
        job = wait_for_terminal(r, pubsub, keys, job_id, a.wait)
        if job is None:
            state = (read_job(r, keys, job_id) or {}).get("state", "gone")
            print(f"enqueue.py: job {job_id} not finished after {a.wait:g} s (state {state})", file=sys.stderr)
            return 1
        print(f"state={job['state']} result={job.get('result', 'null')}", flush=True)
        if "error" in job and job["state"] != "succeeded":
            print(f"error={job['error']}", file=sys.stderr)
        return 0
    finally:
        if pubsub is not None:
            pubsub.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except redis.RedisError as e:
        print(f"enqueue.py: Redis error: {e}", file=sys.stderr)
        sys.exit(2)
