using ClusterJobs.Node.Serialization;

namespace ClusterJobs.Node.Splits;

/// <summary>Messages of a split parent's coordinator, and the events it persists.</summary>
public static class SplitCoordinator
{
    /// <summary>These children of the parent ended (a hint: the coordinator reads their outcome from Redis).</summary>
    public sealed record ChildrenEnded(IReadOnlyList<string> ChildIds) : IClusterJobsMessage;

    /// <summary>
    /// Persisted first: how many children the parent split into, whether it collects their failures, and when it split
    /// (a journal left from an earlier job with the same id, whose split time differs, is thrown away).
    /// </summary>
    public sealed record Tracked(int ChildrenTotal, bool CollectFailures, long SplitAt = 0) : IClusterJobsMessage;

    /// <summary>Persisted as children end: their outcomes, kept even after the children's own records expire.</summary>
    public sealed record ChildrenRecorded(IReadOnlyList<RecordedChild> Children) : IClusterJobsMessage;

    /// <summary>One child's outcome: its end state, and its result JSON when it succeeded, otherwise its error JSON.</summary>
    public sealed record RecordedChild(string ChildId, string State, string Json)
    {
        public bool Succeeded => State == "succeeded";
    }
}
