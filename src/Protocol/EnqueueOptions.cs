namespace ClusterJobs.Protocol;

/// <summary>Per-job options for <see cref="JobClient.EnqueueAsync"/>. Everything is optional.</summary>
public sealed record EnqueueOptions
{
    public string Queue { get; init; } = JobDefaults.Queue;
    /// <summary>0 (default) to 9; higher runs first within the queue.</summary>
    public int Priority { get; init; }
    /// <summary>Run no sooner than this long from now (Celery's countdown).</summary>
    public TimeSpan? Countdown { get; init; }
    /// <summary>Run no sooner than this moment (Celery's eta).</summary>
    public DateTimeOffset? RunAt { get; init; }
    public int? MaxAttempts { get; init; }
    public TimeSpan? Backoff { get; init; }
    public TimeSpan? BackoffMax { get; init; }
    /// <summary>The handler's CancellationToken is cancelled at this limit.</summary>
    public TimeSpan? SoftTimeout { get; init; }
    /// <summary>The worker abandons the attempt at this limit.</summary>
    public TimeSpan? HardTimeout { get; init; }
    /// <summary>The same key (per queue) gives back the same job while the first one's record lives.</summary>
    public string? IdempotencyKey { get; init; }
    /// <summary>Your own id suffix instead of a generated one; the job id becomes <c>queue:JobIdSuffix</c>.</summary>
    public string? JobIdSuffix { get; init; }
    public string? ParentId { get; init; }
    public string? RootId { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        JobIds.ValidateQueueName(Queue);
        if (Priority is < 0 or > JobDefaults.MaxPriority)
            throw new ArgumentException($"Priority must be between 0 and {JobDefaults.MaxPriority}, got {Priority}.", nameof(Priority));
        if (Countdown is { } c && c < TimeSpan.Zero)
            throw new ArgumentException($"Countdown must not be negative, got {c}.", nameof(Countdown));
        if (Countdown is not null && RunAt is not null)
            throw new ArgumentException("Give either Countdown or RunAt, not both.", nameof(RunAt));
        if (MaxAttempts is { } a && a < 1)
            throw new ArgumentException($"MaxAttempts must be at least 1, got {a}.", nameof(MaxAttempts));
        RequirePositive(Backoff, nameof(Backoff), allowZero: true);
        RequirePositive(BackoffMax, nameof(BackoffMax), allowZero: true);
        RequireTimeLimit(SoftTimeout, nameof(SoftTimeout));
        RequireTimeLimit(HardTimeout, nameof(HardTimeout));
        if (SoftTimeout is { } s && HardTimeout is { } h && s > h)
            throw new ArgumentException($"SoftTimeout ({s}) must not exceed HardTimeout ({h}).", nameof(SoftTimeout));
        if (IdempotencyKey is { Length: 0 or > 200 })
            throw new ArgumentException("IdempotencyKey must be 1-200 characters.", nameof(IdempotencyKey));
        if (JobIdSuffix is not null && !JobIds.IsValid($"{Queue}:{JobIdSuffix}"))
            throw new ArgumentException($"JobIdSuffix '{JobIdSuffix}' must be 1-200 of letters, digits, '_', '.', ':' or '-'.", nameof(JobIdSuffix));
        if (ParentId is not null && !JobIds.IsValid(ParentId))
            throw new ArgumentException($"ParentId '{ParentId}' is not a job id.", nameof(ParentId));
        if (RootId is not null && !JobIds.IsValid(RootId))
            throw new ArgumentException($"RootId '{RootId}' is not a job id.", nameof(RootId));
    }

    private static void RequireTimeLimit(TimeSpan? value, string name)
    {
        RequirePositive(value, name, allowZero: false);
        // Sent in whole milliseconds: less than one would go as 0, which a node refuses (the job dead-lettered)
        if (value is not { } v) return;
        if (v < TimeSpan.FromMilliseconds(1)) throw new ArgumentException($"{name} must be at least 1 ms, got {v}.", name);
        if (v > TimeSpan.FromMilliseconds(JobDefaults.MaxTimeoutMs)) throw new ArgumentException($"{name} must be at most 30 days, got {v}.", name);
    }

    private static void RequirePositive(TimeSpan? value, string name, bool allowZero)
    {
        if (value is not { } v) return;
        if (v < TimeSpan.Zero || (!allowZero && v == TimeSpan.Zero))
            throw new ArgumentException($"{name} must be {(allowZero ? "zero or more" : "positive")}, got {v}.", name);
    }
}
