using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using ClusterJobs.Node.Broker;

namespace ClusterJobs.Node.Workers;

/// <summary>Messages the lease keeper receives (from its node's worker pool).</summary>
public static class LeaseKeeper
{
    /// <summary>These jobs now run on this node: keep their leases alive.</summary>
    public sealed record Track(string Queue, IReadOnlyList<string> JobIds) : INoSerializationVerificationNeeded;

    /// <summary>These jobs' outcomes are recorded (their leases are gone): stop renewing.</summary>
    public sealed record Untrack(string Queue, IReadOnlyList<string> JobIds) : INoSerializationVerificationNeeded;
}

/// <summary>
/// Renews the Redis leases of the jobs running on this node, a quarter of the lease duration apart, in one script call
/// per queue. The node that runs a job keeps it leased, so a job is never handed out twice while its node lives,
/// wherever its queue's router is and even while that router moves to another node.
/// </summary>
public sealed class LeaseKeeperActor : ReceiveActor, IWithTimers
{
    private readonly Func<string, QueueBroker> _brokers;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, HashSet<string>> _leased = new();
    private readonly HashSet<string> _renewing = [];

    public LeaseKeeperActor(Func<string, QueueBroker> brokers, TimeSpan leaseDuration)
    {
        _brokers = brokers;
        Receive<LeaseKeeper.Track>(t =>
        {
            if (!_leased.TryGetValue(t.Queue, out var ids)) _leased[t.Queue] = ids = [];
            ids.UnionWith(t.JobIds);
        });
        Receive<LeaseKeeper.Untrack>(u => { if (_leased.TryGetValue(u.Queue, out var ids)) ids.ExceptWith(u.JobIds); });
        Receive<Renew>(_ =>
        {
            foreach (var (queue, ids) in _leased)
            {
                if (ids.Count == 0 || !_renewing.Add(queue)) continue;
                RenewAsync(queue, ids.ToArray()).PipeTo(Self, success: () => new Renewed(queue, null), failure: ex => new Renewed(queue, ex));
            }
        });
        Receive<Renewed>(r =>
        {
            _renewing.Remove(r.Queue);
            if (r.Error is not null) _log.Warning(r.Error, "Renewing the leases of queue {0} failed; retrying at the next tick", r.Queue);
        });
        Timers.StartPeriodicTimer("renew", Renew.Instance, TimeSpan.FromTicks(leaseDuration.Ticks / 4));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private async Task RenewAsync(string queue, string[] ids)
    {
        var broker = _brokers(queue);
        foreach (var chunk in ids.Chunk(2_000)) await broker.RenewAsync(chunk).ConfigureAwait(false);
    }

    private sealed class Renew : INoSerializationVerificationNeeded { public static readonly Renew Instance = new(); }
    private sealed record Renewed(string Queue, Exception? Error) : INoSerializationVerificationNeeded;
}

public static class LeaseKeeperActorExtensions
{
    /// <summary>Starts the node's lease keeper (registered as <see cref="LeaseKeeperActor"/>).</summary>
    public static AkkaConfigurationBuilder AddLeaseKeeper(this AkkaConfigurationBuilder builder, Func<string, QueueBroker> brokers, TimeSpan leaseDuration) =>
        builder.WithActors((system, registry, _) =>
            registry.Register<LeaseKeeperActor>(system.ActorOf(Props.Create(() => new LeaseKeeperActor(brokers, leaseDuration)), "leases")));
}
