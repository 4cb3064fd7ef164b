using System.Text.RegularExpressions;

namespace ClusterJobs.Protocol;

/// <summary>
/// The Redis key layout (docs/protocol.md). Every key of one queue carries the hash tag <c>{queue}</c>, so a queue
/// lives in one Redis Cluster slot and its Lua scripts and MULTI blocks stay single-slot.
/// </summary>
public sealed partial class RedisKeys
{
    public const string DefaultPrefix = "cj";

    public RedisKeys(string prefix = DefaultPrefix)
    {
        if (string.IsNullOrWhiteSpace(prefix) || prefix.Contains('{') || prefix.Contains('}'))
            throw new ArgumentException("The key prefix must be non-empty and contain no braces.", nameof(prefix));
        Prefix = prefix;
    }

    public string Prefix { get; }

    public QueueKeys Queue(string queue)
    {
        JobIds.ValidateQueueName(queue);
        return new QueueKeys(Prefix, queue);
    }

    /// <summary>The queue a job id belongs to (job ids are <c>queue:suffix</c>).</summary>
    public QueueKeys ForJob(string jobId) => Queue(JobIds.QueueOf(jobId));

    /// <summary>HASH: the members of cluster <paramref name="system"/> (CLUSTER_NAME) that run, address → unix ms last seen.</summary>
    public string ClusterMembers(string system) => $"{Prefix}:cluster:{system}:members";
}

/// <summary>Keys and channels of one queue.</summary>
public sealed class QueueKeys(string prefix, string queue)
{
    public string Name { get; } = queue;
    /// <summary>Everything up to and including the hash tag: <c>cj:{queue}:</c>.</summary>
    public string Base { get; } = $"{prefix}:{{{queue}}}:";
    /// <summary>ZSET of job ids ready to run; score = <see cref="JobIds.ReadyScore"/> (priority, then age).</summary>
    public string Ready => Base + "ready";
    /// <summary>ZSET of delayed job ids (countdowns, retries); score = unix ms when due.</summary>
    public string Scheduled => Base + "scheduled";
    /// <summary>ZSET of job ids taken by a node; score = unix ms when the lease expires.</summary>
    public string Leased => Base + "leased";
    /// <summary>LIST of dead-lettered job ids, newest last.</summary>
    public string Dead => Base + "dead";
    /// <summary>HASH of outcomes the nodes recorded, counted since the queue's first: succeeded, retrying (failed attempts
    /// that will run again), dead_lettered, failed (split parents), cancelled (by a node, or by the Cancel script before
    /// any node took the job). Deleted when an operator forgets the queue.</summary>
    public string Stats => Base + "stats";
    /// <summary>SET of split parents waiting for their children (each has a coordinator actor on the router's node).</summary>
    public string Waiting => Base + "waiting";
    /// <summary>
    /// ZSET of the queue's recurring schedules by name; score = unix ms of the next run, <c>+inf</c> for one that fires no
    /// more (its cron has no further occurrence, or a node found it unreadable: see its <c>error</c> field).
    /// </summary>
    public string Recurring => Base + "recurring";
    /// <summary>HASH of one recurring schedule: cron, time zone, the job template and what it fired last (docs/protocol.md).</summary>
    public string RecurringSchedule(string name) => Base + "recurring:" + name;
    /// <summary>Prefix of job hashes: <c>cj:{queue}:job:</c> + job id.</summary>
    public string JobPrefix => Base + "job:";
    public string Job(string jobId) => JobPrefix + jobId;
    public string Idempotency(string key) => Base + "idem:" + key;
    /// <summary>Pub/sub channel told about new ready work (payload: job id). Optional for producers; nodes also poll.</summary>
    public string WakeChannel => Base + "wake";
    /// <summary>Pub/sub channel told to cancel a running job (payload: job id); every node serving the queue listens.</summary>
    public string CancelChannel => Base + "cancel";
    /// <summary>Pub/sub channel told about state changes (payload: <c>job-id state</c>); waiters listen here.</summary>
    public string EventsChannel => Base + "events";
}

/// <summary>Job id and queue name rules.</summary>
public static partial class JobIds
{
    [GeneratedRegex("^[A-Za-z0-9_.-]{1,100}\\z")]
    private static partial Regex QueueNamePattern();

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,200}\\z")]
    private static partial Regex SuffixPattern();

    public static void ValidateQueueName(string queue)
    {
        if (queue is null || !QueueNamePattern().IsMatch(queue))
            throw new ArgumentException(
                $"Invalid queue name '{queue}': use 1-100 characters of letters, digits, '_', '.' or '-'.", nameof(queue));
        // Path segments every URL normalizes away: the operator API, the dashboard and the CLI could not name the queue.
        if (queue is "." or "..") throw new ArgumentException($"Invalid queue name '{queue}': '.' and '..' cannot be named in a URL.", nameof(queue));
    }

    public static bool IsValid(string? jobId)
    {
        if (jobId is null) return false;
        var colon = jobId.IndexOf(':');
        return colon > 0 && QueueNamePattern().IsMatch(jobId[..colon]) && SuffixPattern().IsMatch(jobId[(colon + 1)..]);
    }

    private static long _sequence = Random.Shared.NextInt64(0, 1L << 20);

    /// <summary>
    /// A new id for <paramref name="queue"/>: unix ms (12 hex), a per-process counter (8 hex) and randomness (12 hex).
    /// Ids of one producer sort in creation order, even within a millisecond, so equal ready scores stay FIFO.
    /// </summary>
    public static string New(string queue)
    {
        var ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var seq = (uint)Interlocked.Increment(ref _sequence);
        return $"{queue}:{ms:x12}{seq:x8}{Random.Shared.NextInt64(1L << 47):x12}";
    }

    public static string QueueOf(string jobId)
    {
        if (!IsValid(jobId))
            throw new ArgumentException($"Invalid job id '{jobId}': expected '<queue>:<suffix>'.", nameof(jobId));
        return jobId[..jobId.IndexOf(':')];
    }

    /// <summary>
    /// Ready-set score: lower runs first. Priority bands of 10^13 ms (above any unix-ms timestamp), then age, so a
    /// higher priority always goes first and equal priorities run oldest first. Exact in a double (&lt; 2^53).
    /// </summary>
    public static double ReadyScore(int priority, long enqueuedAtMs) =>
        (JobDefaults.MaxPriority - Math.Clamp(priority, 0, JobDefaults.MaxPriority)) * 10_000_000_000_000d + enqueuedAtMs;
}
