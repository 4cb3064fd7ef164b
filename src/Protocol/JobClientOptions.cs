using System.Text.Json;

namespace ClusterJobs.Protocol;

public sealed record JobClientOptions
{
    public string KeyPrefix { get; init; } = RedisKeys.DefaultPrefix;
    /// <summary>Largest envelope <see cref="JobClient.EnqueueAsync"/> accepts, in UTF-8 bytes (default 512 KiB).</summary>
    public int MaxPayloadBytes { get; init; } = JobDefaults.MaxPayloadBytes;
    /// <summary>How long an idempotency key keeps pointing at its job.</summary>
    public TimeSpan IdempotencyTtl { get; init; } = JobDefaults.ResultTtl;
    /// <summary>How long a cancelled job's record is kept.</summary>
    public TimeSpan RecordTtl { get; init; } = JobDefaults.ResultTtl;
    /// <summary>How arguments are written (camelCase by default, as ASP.NET does).</summary>
    public JsonSerializerOptions ArgumentJson { get; init; } = JsonSerializerOptions.Web;
    public TimeProvider Clock { get; init; } = TimeProvider.System;
    /// <summary>
    /// The threads that read the connection <see cref="JobClient.ConnectAsync"/> opens. The .NET thread pool (default)
    /// answers sooner: one producer enqueued 1.6-1.8 times as many jobs per second, one at a time, as on
    /// StackExchange.Redis's own threads (<see cref="RedisIoThreads.Dedicated"/>, docs/benchmarks.md). Take
    /// <c>Dedicated</c> in an application that blocks on async calls (<c>.Result</c>, <c>.Wait()</c>): a thread
    /// pool full of blocked threads could not read the replies they wait for.
    /// </summary>
    public RedisIoThreads RedisIo { get; init; } = RedisIoThreads.ThreadPool;
    /// <summary>
    /// How long an enqueue keeps sending its job again while Redis cannot be reached (a restart, a failover, a connection
    /// dropped mid-call, <c>LOADING</c> after a restart) before it gives up with a <see cref="RedisUnavailableException"/>
    /// (default 10 s; <see cref="TimeSpan.Zero"/>: one try). Sending again is safe: the job's id is fixed before the first
    /// send, and the Enqueue script makes no second job for an id it already has (nor for a taken idempotency key).
    /// </summary>
    public TimeSpan EnqueueRetryFor { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// How long <see cref="JobClient.GetAsync(string)"/>, <see cref="JobClient.CancelAsync(string)"/>,
    /// <see cref="JobClient.ReplayAsync(string)"/>, the other reads (jobs, dead letters, schedules), the steps of
    /// <see cref="JobClient.ReplayAllAsync(string, string?)"/> and <see cref="JobClient.PurgeDeadLettersAsync"/>,
    /// <see cref="JobClient.AddOrUpdateRecurringAsync"/>, and removing, pausing and resuming a schedule keep trying while
    /// Redis cannot be reached (a restart, a failover, <c>LOADING</c>) before they give up with a
    /// <see cref="RedisUnavailableException"/> (default 10 s; <see cref="TimeSpan.Zero"/>: one try, as the operator API
    /// uses, which answers 503 at once). Each is safe to send again: a read changes nothing, a cancel that finds its
    /// job cancelled on a later try answers true, a replay that finds the new job it sent already made answers its id, a
    /// purge's delete finds its letter gone, writing a schedule again keeps its next run, and a schedule's removal, pause
    /// or resume that finds it made answers true (each of these only when an earlier try was sent: it may have landed).
    /// </summary>
    public TimeSpan CallRetryFor { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of its range.</summary>
    public void Validate()
    {
        // Sent as PX/PEXPIRE milliseconds: 0 or less would fail the enqueue after its job was queued (SET ... PX 0) or
        // delete a cancelled job's record at once.
        if (IdempotencyTtl < TimeSpan.FromSeconds(1))
            throw new ArgumentException($"IdempotencyTtl must be at least 1 s, got {IdempotencyTtl}.", nameof(IdempotencyTtl));
        if (RecordTtl < TimeSpan.FromSeconds(1))
            throw new ArgumentException($"RecordTtl must be at least 1 s, got {RecordTtl}.", nameof(RecordTtl));
        if (MaxPayloadBytes < 1024) throw new ArgumentException($"MaxPayloadBytes must be at least 1024, got {MaxPayloadBytes}.", nameof(MaxPayloadBytes));
        if (EnqueueRetryFor < TimeSpan.Zero || CallRetryFor < TimeSpan.Zero)
            throw new ArgumentException("EnqueueRetryFor and CallRetryFor must not be negative.", nameof(EnqueueRetryFor));
    }
}

/// <summary>The payload is over the configured cap; store big data elsewhere and pass a reference.</summary>
public sealed class PayloadTooLargeException(int size, int limit)
    : ArgumentException($"The job payload is {size} bytes, over the limit of {limit} bytes: store large data elsewhere and pass a reference.")
{
    public int Size { get; } = size;
    public int Limit { get; } = limit;
}
