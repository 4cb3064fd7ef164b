using ClusterJobs.Node.Serialization;

namespace ClusterJobs.Node.Queues;

/// <summary>
/// A queue's runtime settings, changed by operators while the cluster runs and kept in the journal (Redis), so they
/// outlive any node: paused or not, a cluster-wide cap on running jobs, a rate limit on starts.
/// </summary>
public sealed record QueueSettingsState(bool Paused = false, int? MaxRunning = null, double? RateLimitPerSecond = null)
    : IClusterJobsMessage
{
    public static readonly QueueSettingsState Default = new();
}

/// <summary>Commands to a queue's settings (sent through its router, from any node) and the events they persist.</summary>
public static class QueueSettings
{
    /// <summary>A change to the settings; answered with the new <see cref="QueueSettingsState"/>.</summary>
    public sealed record Change(bool? Paused = null, int? MaxRunning = null, double? RateLimitPerSecond = null,
        bool ClearMaxRunning = false, bool ClearRateLimit = false) : IClusterJobsMessage;

    /// <summary>Asks for the current settings; answered with <see cref="QueueSettingsState"/>.</summary>
    public sealed class Get : IClusterJobsMessage
    {
        public static readonly Get Instance = new();
        private Get() { }
    }

    /// <summary>The persisted event: the settings after a change.</summary>
    public sealed record Changed(QueueSettingsState Settings) : IClusterJobsMessage;
}
