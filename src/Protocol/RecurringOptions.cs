namespace ClusterJobs.Protocol;

/// <summary>
/// Options of a recurring schedule (<see cref="JobClient.AddOrUpdateRecurringAsync"/>): where its jobs go, the time zone
/// its cron expression is read in, and the options every job it makes carries. Everything is optional.
/// </summary>
public sealed record RecurringOptions
{
    public string Queue { get; init; } = JobDefaults.Queue;
    /// <summary>The time zone the cron expression's hours and days are in: an IANA id (<c>Europe/Berlin</c>); default UTC.</summary>
    public string TimeZone { get; init; } = RecurringRules.DefaultTimeZone;
    /// <summary>0 (default) to 9; higher runs first within the queue.</summary>
    public int Priority { get; init; }
    public int? MaxAttempts { get; init; }
    public TimeSpan? Backoff { get; init; }
    public TimeSpan? BackoffMax { get; init; }
    /// <summary>The handler's CancellationToken is cancelled at this limit.</summary>
    public TimeSpan? SoftTimeout { get; init; }
    /// <summary>The worker abandons the attempt at this limit.</summary>
    public TimeSpan? HardTimeout { get; init; }

    /// <summary>The options each run's job is enqueued with; throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    internal EnqueueOptions JobOptions()
    {
        var options = new EnqueueOptions
        {
            Queue = Queue, Priority = Priority, MaxAttempts = MaxAttempts, Backoff = Backoff, BackoffMax = BackoffMax,
            SoftTimeout = SoftTimeout, HardTimeout = HardTimeout,
        };
        options.Validate();
        return options;
    }
}
