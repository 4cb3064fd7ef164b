namespace ClusterJobs.Node.Recurring;

/// <summary>
/// The node's scripts for recurring schedules (docs/protocol.md). Each checks that the schedule still has the run the
/// node read (and the same definition), so of several nodes that read the same due run, one fires it.
/// </summary>
public static class RecurringScripts
{
    /// <summary>
    /// Fires one run: moves the schedule to its next run (<c>inf</c>: none), records the run, and enqueues its job as the
    /// producer's Enqueue script would, unless a job of that id exists already.
    /// KEYS: recurring zset, schedule hash, job hash, ready.
    /// ARGV: name, run ms, next run ms or 'inf', job id, envelope, now ms, ready score, wake channel, task, events channel,
    ///       max attempts ('' for the task's policy), the schedule's version as read ('' for none).
    /// Returns 1 when it fired the run, 0 when the schedule had changed (another node fired it, or it was rewritten or removed).
    /// Redis keeps a script's writes when a later command fails, so the one write that can fail (the queue's ready set,
    /// written by hand with another type) goes first: a run is fired whole or not at all, and a queue that cannot take
    /// it fails the round (an error that is the queue's, not the schedule's) and the run stays due.
    /// </summary>
    public const string Fire = """
        local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not due or tonumber(due) ~= tonumber(ARGV[2]) then return 0 end
        if (redis.call('HGET', KEYS[2], 'version') or '') ~= ARGV[12] then return 0 end
        local fresh = redis.call('EXISTS', KEYS[3]) == 0
        if fresh then
          local added = redis.pcall('ZADD', KEYS[4], ARGV[7], ARGV[4])
          if type(added) == 'table' and added.err then
            return {err = 'ERR the queue cannot take the run (its ready set ' .. KEYS[4] .. ' refused it): ' .. added.err}
          end
          redis.call('HSET', KEYS[3], 'envelope', ARGV[5], 'state', 'queued', 'task', ARGV[9], 'attempts', 0,
            'max_attempts', ARGV[11], 'ready_score', ARGV[7], 'enqueued_at', ARGV[6])
        end
        redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
        redis.call('HSET', KEYS[2], 'last_run_at', ARGV[2], 'last_fired_at', ARGV[6], 'last_job_id', ARGV[4])
        if fresh then
          redis.call('PUBLISH', ARGV[8], ARGV[4])
          redis.call('PUBLISH', ARGV[10], ARGV[4] .. ' queued')
        end
        return 1
        """;

    /// <summary>
    /// Stops a schedule the node cannot read or fire (written by hand: a bad cron, time zone, template, or a key of the
    /// wrong type), saying why: its next run becomes <c>inf</c> and its <c>error</c> field holds the reason (when the
    /// hash can hold it). Writing it again with a producer clears both. Only while it still has the run and the
    /// <c>version</c> the node read, so a schedule repaired meanwhile is not stopped.
    /// KEYS: recurring zset, schedule hash. ARGV: name, the score read, error, version as read ('' for none).
    /// Returns 1, or 0 when it had changed.
    /// </summary>
    public const string Stop = """
        local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not due or tonumber(due) ~= tonumber(ARGV[2]) then return 0 end
        local written = redis.pcall('HGET', KEYS[2], 'version')
        if type(written) == 'table' and written.err then written = '' end
        if (written or '') ~= ARGV[4] then return 0 end
        redis.call('ZADD', KEYS[1], 'inf', ARGV[1])
        redis.pcall('HSET', KEYS[2], 'error', ARGV[3])
        return 1
        """;
}
