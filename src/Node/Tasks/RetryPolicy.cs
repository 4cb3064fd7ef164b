namespace ClusterJobs.Node.Tasks;

public enum BackoffKind
{
    /// <summary>The delay doubles per attempt: delay, 2x delay, 4x delay... up to the cap.</summary>
    Exponential,
    /// <summary>The same delay before every retry (Celery's <c>default_retry_delay</c>).</summary>
    Constant,
}

/// <summary>
/// How a task's failed attempts are retried. Set per task at registration; a job's own <c>max_attempts</c>,
/// <c>backoff_ms</c> and <c>backoff_max_ms</c> override it. Retries wait in Redis as delayed jobs, so they survive
/// the death of any node.
/// </summary>
public sealed record RetryPolicy
{
    public static readonly RetryPolicy Default = new();

    /// <summary>Retries after the first attempt (so MaxRetries = 3 means up to 4 attempts).</summary>
    public int MaxRetries { get; init; } = 2;
    /// <summary>Delay before the first retry.</summary>
    public TimeSpan DefaultRetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    public BackoffKind Backoff { get; init; } = BackoffKind.Exponential;
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Share of each delay that is random (0.5: between 50% and 100% of it), so retries do not stampede.</summary>
    public double Jitter { get; init; } = 0.5;
    /// <summary>Only these exception types (or subtypes) are retried; empty = every exception not in <see cref="FailOn"/>.</summary>
    public IReadOnlyList<Type> RetryOn { get; init; } = [];
    /// <summary>These exception types (or subtypes) fail the job at once.</summary>
    public IReadOnlyList<Type> FailOn { get; init; } = [];

    public int MaxAttempts => MaxRetries + 1;

    /// <summary>
    /// The longest wait before a retry (365 days): longer delays are cut to it. A producer may write a huge
    /// <c>backoff_max_ms</c> (2^63-1 for "no cap"), which as a time would be past the year 9999.
    /// </summary>
    public static readonly TimeSpan LongestDelay = TimeSpan.FromDays(365);

    /// <summary>Celery's <c>@app.task(max_retries=3, default_retry_delay=30)</c>, as is: a constant delay.</summary>
    public static RetryPolicy Celery(int maxRetries, TimeSpan defaultRetryDelay) =>
        new() { MaxRetries = maxRetries, DefaultRetryDelay = defaultRetryDelay, Backoff = BackoffKind.Constant, Jitter = 0 };

    public RetryPolicy RetryOnly<TException>() where TException : Exception => this with { RetryOn = [.. RetryOn, typeof(TException)] };
    public RetryPolicy NeverRetry<TException>() where TException : Exception => this with { FailOn = [.. FailOn, typeof(TException)] };

    public void Validate()
    {
        if (MaxRetries < 0) throw new ArgumentException($"MaxRetries must not be negative, got {MaxRetries}.");
        if (DefaultRetryDelay < TimeSpan.Zero || MaxDelay < TimeSpan.Zero) throw new ArgumentException("Retry delays must not be negative.");
        if (Jitter is < 0 or > 1) throw new ArgumentException($"Jitter must be between 0 and 1, got {Jitter}.");
    }

    /// <summary>Whether <paramref name="error"/> may be retried at all (attempts aside).</summary>
    public bool Retries(Exception error)
    {
        var type = error.GetType();
        if (FailOn.Any(t => t.IsAssignableFrom(type))) return false;
        return RetryOn.Count == 0 || RetryOn.Any(t => t.IsAssignableFrom(type));
    }

    /// <summary>The delay before the retry that follows failed attempt <paramref name="attempt"/> (1-based).</summary>
    public TimeSpan DelayAfter(int attempt, Random? random = null)
    {
        var baseMs = DefaultRetryDelay.TotalMilliseconds;
        var capMs = Math.Max(MaxDelay.TotalMilliseconds, baseMs);
        var ms = Backoff == BackoffKind.Constant ? baseMs : Math.Min(capMs, baseMs * Math.Pow(2, Math.Clamp(attempt - 1, 0, 30)));
        ms *= 1 - Jitter * (random ?? Random.Shared).NextDouble();
        return TimeSpan.FromMilliseconds(Math.Min(ms, LongestDelay.TotalMilliseconds));
    }

    /// <summary>This policy with a job's own overrides (from its envelope) applied.</summary>
    public RetryPolicy For(Protocol.JobEnvelope envelope) =>
        envelope.MaxAttempts is null && envelope.BackoffMs is null && envelope.BackoffMaxMs is null
            ? this
            : this with
            {
                MaxRetries = envelope.MaxAttempts is { } a ? Math.Max(0, a - 1) : MaxRetries,
                DefaultRetryDelay = envelope.BackoffMs is { } b ? Delay(b) : DefaultRetryDelay,
                MaxDelay = envelope.BackoffMaxMs is { } m ? Delay(m) : MaxDelay,
            };

    /// <summary>A delay in ms as an envelope holds it (checked not negative), cut to <see cref="LongestDelay"/>.</summary>
    private static TimeSpan Delay(long ms) => TimeSpan.FromMilliseconds(Math.Min(ms, (long)LongestDelay.TotalMilliseconds));
}
