using Akka.Actor;
using ClusterJobs.Node.Serialization;
using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Workers;

/// <summary>A job handed to a node to run: the envelope, the attempt number, and its phase ("reduce" once its children are done).</summary>
public sealed record JobLease(JobEnvelope Envelope, int Attempt, string? Phase = null)
{
    public bool IsReduce => Phase == "reduce";
}

/// <summary>Messages a worker pool receives.</summary>
public static class WorkerPool
{
    /// <summary>From a queue's router: jobs to run, never more than the pool asked for.</summary>
    public sealed record Dispatch(string Queue, IReadOnlyList<JobLease> Jobs) : IClusterJobsMessage;

    /// <summary>
    /// From a queue's router: lease up to <paramref name="Slots"/> of its jobs yourself, against credit this pool offered
    /// (a pool on another node than the router, while the queue has a backlog). Answered with QueueRouter.Took.
    /// </summary>
    public sealed record Grant(string Queue, int Slots) : IClusterJobsMessage;

    /// <summary>From a queue's router: it has no work for <paramref name="Slots"/> non-parked slots; ask the next queue.</summary>
    public sealed record Empty(string Queue, int Slots) : IClusterJobsMessage;

    /// <summary>From a queue's router: work arrived after it said Empty.</summary>
    public sealed record WorkAvailable(string Queue) : IClusterJobsMessage;

    /// <summary>From a queue's router: the parked slots it gave back on Withdraw.</summary>
    public sealed record Withdrawn(string Queue, int Slots) : IClusterJobsMessage;

    /// <summary>From a worker: its job's outcome went to the result writer; the worker is free.</summary>
    internal sealed record WorkerFree(IActorRef Worker, string Queue, string JobId) : INoSerializationVerificationNeeded;

    /// <summary>From a worker: it abandoned a handler (hard limit, cancel) that is still running.</summary>
    internal sealed class RunawayStarted : INoSerializationVerificationNeeded
    {
        public static readonly RunawayStarted Instance = new();
    }

    /// <summary>From a worker: an abandoned handler finally returned.</summary>
    internal sealed class RunawayEnded : INoSerializationVerificationNeeded
    {
        public static readonly RunawayEnded Instance = new();
    }

    /// <summary>From the result writer: these jobs' outcomes are in Redis.</summary>
    internal sealed record Recorded(string Queue, IReadOnlyList<string> JobIds) : INoSerializationVerificationNeeded;

    /// <summary>
    /// Stop taking work; finish running jobs within <paramref name="Grace"/>, then hand the rest back. Answered with Drained.
    /// <paramref name="Downed"/>: the cluster removed this node, so no router will answer for the slots it was offered.
    /// </summary>
    public sealed record Drain(TimeSpan Grace, bool Downed = false) : INoSerializationVerificationNeeded;

    public sealed class Drained : INoSerializationVerificationNeeded
    {
        public static readonly Drained Instance = new();
        private Drained() { }
    }

    /// <summary>Asks the pool for its current load (the operator API asks every node's pool; diagnostics and tests).</summary>
    public sealed class GetStatus : IClusterJobsMessage
    {
        public static readonly GetStatus Instance = new();
        private GetStatus() { }
    }

    /// <summary>The pool's load; runaways are abandoned handlers still running (ignoring cancellation or blocking).</summary>
    public sealed record PoolStatus(int Capacity, int Busy, IReadOnlyDictionary<string, int> BusyByQueue,
        IReadOnlyDictionary<string, int> CreditByQueue, int Runaways, int RunawaysTotal) : IClusterJobsMessage;

    /// <summary>The pool's actor name under /user: where another node finds it.</summary>
    public const string ActorName = "workers";
}
