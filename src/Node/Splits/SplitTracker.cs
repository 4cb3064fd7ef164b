using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Serialization;

namespace ClusterJobs.Node.Splits;

/// <summary>Messages to a queue's split tracker, sent through the queue's router from any node.</summary>
public static class SplitTracker
{
    /// <summary>A running job split and now waits for its children: start its coordinator.</summary>
    public sealed record SplitStarted(string ParentId) : IClusterJobsMessage;

    /// <summary>Child jobs ended (as recorded in Redis): their parents' coordinators should look.</summary>
    public sealed record ChildrenFinished(IReadOnlyList<FinishedChild> Children) : IClusterJobsMessage;
}
