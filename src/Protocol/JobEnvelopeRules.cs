namespace ClusterJobs.Protocol;

/// <summary>
/// What a node refuses in an envelope's options (docs/protocol.md): the producer client checks the same before it sends
/// one, so a job it accepts is never dead-lettered as malformed.
/// </summary>
public static class JobEnvelopeRules
{
    /// <summary>Why an option is out of its range; null when all are within.</summary>
    public static string? InvalidOption(JobEnvelope e) =>
        e.Priority is < 0 or > JobDefaults.MaxPriority ? $"priority must be 0-{JobDefaults.MaxPriority}, got {e.Priority}."
        : e.MaxAttempts is < 1 ? $"max_attempts must be at least 1, got {e.MaxAttempts}."
        : e.BackoffMs is < 0 || e.BackoffMaxMs is < 0 ? "backoff_ms and backoff_max_ms must not be negative."
        : e.SoftTimeoutMs is <= 0 or > JobDefaults.MaxTimeoutMs || e.HardTimeoutMs is <= 0 or > JobDefaults.MaxTimeoutMs
            ? $"soft_timeout_ms and hard_timeout_ms must be from 1 to {JobDefaults.MaxTimeoutMs} (30 days), got {e.SoftTimeoutMs?.ToString() ?? "null"} and {e.HardTimeoutMs?.ToString() ?? "null"}."
        : null;

    /// <summary>Why a node would dead-letter <paramref name="e"/> unread (its options, task, version); null when it would run it.</summary>
    public static string? Problem(JobEnvelope e) =>
        e.Version > JobEnvelope.CurrentVersion ? $"Envelope format v{e.Version} is newer than nodes understand (v{JobEnvelope.CurrentVersion})."
        : string.IsNullOrEmpty(e.Task) ? "The envelope has no task name."
        : InvalidOption(e);
}
