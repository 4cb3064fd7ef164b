namespace ClusterJobs.Protocol;

/// <summary>Where a job is in its life. Stored in Redis as the lower-case snake_case wire name.</summary>
public enum JobState
{
    Queued,
    Scheduled,
    Running,
    /// <summary>Split into child jobs and waiting for them (holding no worker slot).</summary>
    Waiting,
    Retrying,
    Succeeded,
    Failed,
    DeadLettered,
    Cancelled,
}

public static class JobStates
{
    public static string ToWire(this JobState state) => state switch
    {
        JobState.Queued => "queued",
        JobState.Scheduled => "scheduled",
        JobState.Running => "running",
        JobState.Waiting => "waiting",
        JobState.Retrying => "retrying",
        JobState.Succeeded => "succeeded",
        JobState.Failed => "failed",
        JobState.DeadLettered => "dead_lettered",
        JobState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static JobState FromWire(string wire) => TryFromWire(wire, out var state)
        ? state
        : throw new FormatException($"Unknown job state '{wire}'.");

    public static bool TryFromWire(string? wire, out JobState state)
    {
        switch (wire)
        {
            case "queued": state = JobState.Queued; return true;
            case "scheduled": state = JobState.Scheduled; return true;
            case "running": state = JobState.Running; return true;
            case "waiting": state = JobState.Waiting; return true;
            case "retrying": state = JobState.Retrying; return true;
            case "succeeded": state = JobState.Succeeded; return true;
            case "failed": state = JobState.Failed; return true;
            case "dead_lettered": state = JobState.DeadLettered; return true;
            case "cancelled": state = JobState.Cancelled; return true;
            default: state = default; return false;
        }
    }

    /// <summary>Terminal states never change again; waiters return on them.</summary>
    public static bool IsTerminal(this JobState state) =>
        state is JobState.Succeeded or JobState.Failed or JobState.DeadLettered or JobState.Cancelled;
}
