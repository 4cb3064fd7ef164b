using Akka.Actor;
using ClusterJobs.Node.Serialization;

namespace ClusterJobs.Node.Routing;

/// <summary>Messages a queue router receives from worker pools.</summary>
public static class QueueRouter
{
    /// <summary>
    /// A pool has <paramref name="Slots"/> more free slots for this queue. Parked demand waits for work; demand that is
    /// not parked is answered with Empty when the queue has nothing, so the pool can ask its next queue. TakesOwn: the
    /// pool can lease jobs itself under a Grant (nodes of older versions cannot, and never get one). ReadsTraceContext:
    /// the pool reads jobs' trace context in a Dispatch (format 2); a pool of an older version gets its jobs without it.
    /// </summary>
    public sealed record Demand(int Slots, bool Park, bool TakesOwn = false, bool ReadsTraceContext = false) : IClusterJobsMessage;

    /// <summary>
    /// A pool answers a Grant (or part of one): the jobs it leased and now runs. Exhausted: it got fewer than
    /// <paramref name="Granted"/> (or Redis failed), so the router takes for everyone again until it finds a backlog.
    /// </summary>
    public sealed record Took(IReadOnlyList<string> JobIds, int Granted, bool Exhausted) : IClusterJobsMessage;

    /// <summary>A pool takes back its parked slots (to offer them to a higher-priority queue); answered with Withdrawn.</summary>
    public sealed class Withdraw : IClusterJobsMessage
    {
        public static readonly Withdraw Instance = new();
        private Withdraw() { }
    }

    /// <summary>A pool reports jobs whose outcomes are recorded in Redis: their leases need no more renewal.</summary>
    public sealed record JobsCompleted(IReadOnlyList<string> JobIds) : IClusterJobsMessage;

    /// <summary>The router singleton's termination message when its node leaves: hand back buffered jobs, then stop.</summary>
    public sealed class HandOver : INoSerializationVerificationNeeded
    {
        public static readonly HandOver Instance = new();
        private HandOver() { }
    }

    /// <summary>Asks a router for its state (diagnostics and tests).</summary>
    public sealed class GetStatus : IClusterJobsMessage
    {
        public static readonly GetStatus Instance = new();
        private GetStatus() { }
    }

    /// <summary>Buffered: leased and held here; Credit: free slots offered; Granted: slots pools are leasing for themselves; InFlight: jobs running.</summary>
    public sealed record RouterStatus(string Queue, int Buffered, int Pools, int Credit, int InFlight, int Granted = 0) : IClusterJobsMessage;
}

/// <summary>How a queue router leases ahead of demand.</summary>
public sealed record QueueRouterSettings
{
    /// <summary>No read-ahead: the router leases only what pools asked for (what the specs of the credit rules use).</summary>
    public static readonly QueueRouterSettings Default = new();

    /// <summary>
    /// Jobs leased ahead of the pools' demand while the queue is busy (jobs went to pools in the last
    /// <see cref="BusyWindow"/>), so a freed slot gets its next job without waiting for a Redis round trip. Like
    /// Celery's prefetch, but held by the router, so the next job still goes to whichever pool frees a slot first.
    /// 0 turns it off. Never while the queue is paused, capped or rate-limited.
    /// </summary>
    public int ReadAhead { get; init; }

    /// <summary>A queue counts as busy while jobs went to pools this recently.</summary>
    public TimeSpan BusyWindow { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Leased jobs no pool took for this long go back to the queue, well before their lease (which nobody renews while
    /// the router holds them) can expire. A node sets a quarter of its lease.
    /// </summary>
    public TimeSpan MaxHold { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Pools on the router's own node get grants too (specs of the grant rules, whose pools are all local). Off: the
    /// router's node takes through its ingress, which reads ahead for its pool, so grants would only cost it that.
    /// </summary>
    internal bool GrantToLocalPools { get; init; }
}

/// <summary>Where each queue's router is (a local actor now; the same lookup serves a cluster-wide router).</summary>
public sealed class QueueRouters
{
    private readonly Dictionary<string, IActorRef> _routers = new();

    public void Add(string queue, IActorRef router) => _routers[queue] = router;

    public IActorRef this[string queue] => _routers.TryGetValue(queue, out var router)
        ? router
        : throw new KeyNotFoundException($"No router for queue '{queue}'.");

    public IReadOnlyCollection<string> Queues => _routers.Keys;

    /// <summary>The queue's router, or null when this node does not serve the queue.</summary>
    public IActorRef? TryGet(string queue) => _routers.GetValueOrDefault(queue);
}
