namespace ClusterJobs.Node.Workers;

/// <summary>Exponential backoff with jitter and a cap: base * 2^(attempt-1), capped, then a random 50-100% of it.</summary>
public static class RetryBackoff
{
    public static TimeSpan Delay(int attempt, long baseMs, long maxMs, Random? random = null)
    {
        if (baseMs <= 0) return TimeSpan.Zero;
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var capped = Math.Min((double)Math.Max(maxMs, baseMs), baseMs * Math.Pow(2, exponent));
        var jittered = capped * (0.5 + 0.5 * (random ?? Random.Shared).NextDouble());
        return TimeSpan.FromMilliseconds(jittered);
    }
}
