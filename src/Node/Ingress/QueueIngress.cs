using Akka.Actor;
using ClusterJobs.Node.Workers;

namespace ClusterJobs.Node.Ingress;

/// <summary>Messages between a queue router and its ingress child (always on the same node).</summary>
public static class QueueIngress
{
    /// <summary>Router to ingress: lease up to <paramref name="Max"/> jobs.</summary>
    public sealed record Fetch(int Max) : INoSerializationVerificationNeeded;

    /// <summary>
    /// Ingress to router: the jobs leased; <paramref name="Exhausted"/> when Redis had fewer than asked. Woken: not the
    /// answer to a Fetch but a take the ingress made itself on a wake, for what the router had asked for and not got.
    /// </summary>
    public sealed record Taken(IReadOnlyList<JobLease> Jobs, bool Exhausted) : INoSerializationVerificationNeeded
    {
        public bool Woken { get; init; }
    }

    /// <summary>Ingress to router: new work may be ready (a wake message, or the poll for delayed jobs).</summary>
    public sealed class WorkMayBeAvailable : INoSerializationVerificationNeeded
    {
        public static readonly WorkMayBeAvailable Instance = new();
        private WorkMayBeAvailable() { }
    }

    /// <summary>
    /// Router to ingress: whether a wake may take what the router asked for and did not get, without asking it first.
    /// Not while the queue is paused, capped or rate-limited: then the router decides every take (default: allowed).
    /// </summary>
    public sealed record WakeTakes(bool Allowed) : INoSerializationVerificationNeeded;

    /// <summary>Router to ingress: the node running these jobs is gone; put them back in the queue now.</summary>
    public sealed record Reclaim(IReadOnlyList<string> JobIds) : INoSerializationVerificationNeeded;

    /// <summary>Router to ingress: these jobs were never started; return them to the ready set as they were.</summary>
    public sealed record Return(IReadOnlyList<string> JobIds) : INoSerializationVerificationNeeded;
}

public sealed record QueueIngressSettings
{
    public const int DefaultMaxBatch = 256;
    /// <summary>Most jobs leased in one script call.</summary>
    public int MaxBatch { get; init; } = DefaultMaxBatch;
    /// <summary>How often an idle queue looks for due delayed jobs (and for wake messages it may have missed).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>How often expired leases (of dead nodes) are returned to the queue.</summary>
    public TimeSpan ReclaimInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Envelopes larger than this are dead-lettered unread.</summary>
    public int MaxPayloadBytes { get; init; } = Protocol.JobDefaults.MaxPayloadBytes;
}
