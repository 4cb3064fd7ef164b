namespace ClusterJobs.Protocol;

/// <summary>
/// The producer's Lua scripts. Each touches keys of one queue only (one hash tag), so it runs atomically on a
/// standalone Redis, a Redis Cluster or Garnet. Job hash keys are named in KEYS.
/// </summary>
public static class ProducerScripts
{
    /// <summary>
    /// KEYS: job hash, ready, scheduled, idempotency key (the job key again when there is none).
    /// ARGV: id, envelope, now ms, ready score, not-before ms (0 = now), idempotency ttl ms, wake channel,
    ///       has idempotency key (1/0), max attempts, task, events channel.
    /// Returns {1, id} when created, {0, existing id} when the idempotency key or id already had a job.
    /// </summary>
    public const string Enqueue = """
        if ARGV[8] == '1' then
          local existing = redis.call('GET', KEYS[4])
          if existing then return {0, existing} end
        end
        if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[1]} end
        -- the one write that can fail (a queue key written by hand with another type) first: Redis keeps a script's
        -- writes when a later command fails, and an idempotency key naming no job would refuse every retry
        local state = 'queued'
        if tonumber(ARGV[5]) > tonumber(ARGV[3]) then
          state = 'scheduled'
          redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
        else
          redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
        end
        if ARGV[8] == '1' then redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[6]) end
        redis.call('HSET', KEYS[1], 'envelope', ARGV[2], 'state', state, 'task', ARGV[10], 'attempts', 0,
          'max_attempts', ARGV[9], 'ready_score', ARGV[4], 'enqueued_at', ARGV[3])
        if state == 'queued' then redis.call('PUBLISH', ARGV[7], ARGV[1]) end
        redis.call('PUBLISH', ARGV[11], ARGV[1] .. ' ' .. state)
        return {1, ARGV[1]}
        """;

    /// <summary>
    /// Cancels a job. One not started leaves its queue and ends cancelled at once; for a running one, cancellation is
    /// requested (flag on the job, message on the cancel channel) and the node running it ends it cancelled.
    /// KEYS: job hash, ready, scheduled, optionally stats (counts the cancel). ARGV: id, now ms, record ttl ms, events channel, cancel channel.
    /// Returns 1 when cancelled, 2 when requested for a running job, the state when it is already finished, false when
    /// there is no such job.
    /// </summary>
    public const string Cancel = """
        local state = redis.call('HGET', KEYS[1], 'state')
        if not state then return false end
        if state == 'queued' or state == 'scheduled' or state == 'retrying' then
          redis.call('ZCARD', KEYS[2]) redis.call('ZCARD', KEYS[3]) -- read before any write (see Enqueue)
          redis.call('ZREM', KEYS[2], ARGV[1])
          redis.call('ZREM', KEYS[3], ARGV[1])
          redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[2])
          redis.call('PEXPIRE', KEYS[1], ARGV[3])
          redis.call('PUBLISH', ARGV[4], ARGV[1] .. ' cancelled')
          if KEYS[4] then redis.pcall('HINCRBY', KEYS[4], 'cancelled', 1) end -- a counter a hand made no integer is skipped
          return 1
        end
        if state == 'running' then
          redis.call('HSET', KEYS[1], 'cancel_requested', ARGV[2])
          redis.call('PUBLISH', ARGV[5], ARGV[1])
          return 2
        end
        return state
        """;

    /// <summary>
    /// Replays a dead-lettered job as a new job that keeps its lineage (<c>replay_of</c>; the old record gets
    /// <c>replayed_as</c> and expires after the record ttl). KEYS: old job hash, dead list, ready, new job hash.
    /// ARGV: old id, new id, new envelope, now ms, ready score, wake channel, events channel, task, record ttl ms.
    /// Returns 1, or 0 when the old job is not dead-lettered or was replayed already.
    /// </summary>
    public const string Replay = """
        if redis.call('HGET', KEYS[1], 'state') ~= 'dead_lettered' then return 0 end
        if redis.call('HEXISTS', KEYS[1], 'replayed_as') == 1 then return 0 end
        redis.call('ZCARD', KEYS[3]) -- read before any write (see Enqueue): a dead letter is never taken out for a job not queued
        -- the first copy only: LREM stops there (a dead letter is one entry), where a count of 0 reads the whole list
        -- for every letter, which made replaying a long dead list quadratic
        redis.call('LREM', KEYS[2], 1, ARGV[1])
        redis.call('HSET', KEYS[1], 'replayed_as', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[9])
        redis.call('HSET', KEYS[4], 'envelope', ARGV[3], 'state', 'queued', 'task', ARGV[8], 'attempts', 0,
          'ready_score', ARGV[5], 'enqueued_at', ARGV[4], 'replay_of', ARGV[1])
        redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
        redis.call('PUBLISH', ARGV[6], ARGV[2])
        redis.call('PUBLISH', ARGV[7], ARGV[2] .. ' queued')
        return 1
        """;

    /// <summary>
    /// Deletes one dead letter, its record and its idempotency key (only while that still names it, so a resubmitted
    /// job with the same key runs). KEYS: dead list, job hash, idempotency key (the job hash again when it has none).
    /// ARGV: id. Returns 1, or 0 when it is no longer a dead letter (replayed or deleted meanwhile).
    /// </summary>
    public const string PurgeDead = """
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
        redis.call('DEL', KEYS[2])
        if KEYS[3] ~= KEYS[2] and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
        return 1
        """;

    /// <summary>
    /// A Lua function the recurring scripts that change a schedule start with: its <c>version</c> + 1, where one that is
    /// not a whole number from 0 to 2^53 (written by hand) starts again at 1. Not HINCRBY: that fails on such a value
    /// after the script's first writes (Redis keeps those), and a value Lua reads as inf, nan or past 2^53 would not move
    /// by 1, so a node that read the schedule before could still fire it.
    /// </summary>
    private const string NextVersion = """
        local function bump(key)
          local v = tonumber(redis.call('HGET', key, 'version'))
          if not v or v ~= v or v < 0 or v >= 2^53 or v % 1 ~= 0 then v = 0 end
          redis.call('HSET', key, 'version', string.format('%d', v + 1))
        end

        """;

    /// <summary>
    /// Creates or updates a recurring schedule. Its next run is set only when it is new or its cron expression or time
    /// zone changed (or it had stopped firing), so rewriting the same schedule at every app start neither skips nor
    /// repeats a run. Clears a node's error; counts the schedule's <c>version</c>, which a node's Fire and Stop check
    /// (so a node never fires a rewritten schedule from what it read before); replaces a key of another type (written by
    /// hand). A paused schedule stays paused (and keeps no next run). KEYS: schedule hash, recurring zset.
    /// ARGV: name, cron, time zone, job template, next run ms, now ms.
    /// Returns 1 when the next run was set, 0 when it was kept.
    /// </summary>
    public const string UpsertRecurring = NextVersion + """
        local kind = redis.call('TYPE', KEYS[1])
        if type(kind) == 'table' then kind = kind.ok end
        if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
        local old = redis.call('HMGET', KEYS[1], 'cron', 'time_zone')
        local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
        redis.call('HSET', KEYS[1], 'cron', ARGV[2], 'time_zone', ARGV[3], 'template', ARGV[4], 'updated_at', ARGV[6])
        redis.call('HSETNX', KEYS[1], 'created_at', ARGV[6])
        bump(KEYS[1])
        local broken = redis.call('HDEL', KEYS[1], 'error') == 1
        if redis.call('HEXISTS', KEYS[1], 'paused_at') == 1 then
          if due then return 0 end
          redis.call('HDEL', KEYS[1], 'paused_at') -- its zset entry was removed by hand: a new schedule
        end
        local run = due and tonumber(due)
        local finite = run and run == run and run ~= math.huge and run ~= -math.huge
        if old[1] == ARGV[2] and old[2] == ARGV[3] and finite and not broken then return 0 end
        redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
        return 1
        """;

    /// <summary>
    /// Pauses a recurring schedule: no node fires it until it is resumed (its score becomes <c>inf</c>, its
    /// <c>version</c> moves on, so a node that read it due before cannot fire it). Pausing a paused one applies the pause
    /// again (a score written by hand meanwhile is undone). KEYS: schedule hash, recurring zset. ARGV: name, now ms.
    /// Returns 1, 2 when it was paused already, 0 when there is no such schedule (or its key is not a hash).
    /// </summary>
    public const string PauseRecurring = NextVersion + """
        local kind = redis.call('TYPE', KEYS[1])
        if type(kind) == 'table' then kind = kind.ok end
        if kind ~= 'hash' or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
        local was = redis.call('HSETNX', KEYS[1], 'paused_at', ARGV[2]) == 0
        bump(KEYS[1])
        redis.call('ZADD', KEYS[2], 'inf', ARGV[1])
        if was then return 2 end
        return 1
        """;

    /// <summary>
    /// Resumes a paused recurring schedule from its next occurrence after now (runs missed while paused are skipped),
    /// worked out by the caller from the cron and time zone it read. KEYS: schedule hash, recurring zset. ARGV: name,
    /// next run ms, cron and time zone as read. Returns 1; 2 when it was not paused; 3, changing nothing, when a node
    /// stopped it (an <c>error</c>: only writing it again starts it); 4, changing nothing, when its cron or time zone
    /// is no longer what was read (read again); 0 when there is no such schedule.
    /// </summary>
    public const string ResumeRecurring = NextVersion + """
        local kind = redis.call('TYPE', KEYS[1])
        if type(kind) == 'table' then kind = kind.ok end
        if kind ~= 'hash' or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
        local fields = redis.call('HMGET', KEYS[1], 'paused_at', 'error', 'cron', 'time_zone')
        if not fields[1] then return 2 end
        if fields[2] then return 3 end
        if fields[3] ~= ARGV[3] or (fields[4] or 'UTC') ~= ARGV[4] then return 4 end
        redis.call('HDEL', KEYS[1], 'paused_at')
        bump(KEYS[1])
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
        return 1
        """;

    /// <summary>Removes a recurring schedule (jobs it made stay). KEYS: schedule hash, recurring zset. ARGV: name. Returns 1, or 0 when there was none.</summary>
    public const string RemoveRecurring = """
        local removed = redis.call('ZREM', KEYS[2], ARGV[1])
        return math.max(removed, redis.call('DEL', KEYS[1]))
        """;
}
