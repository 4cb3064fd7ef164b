using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.Membership;

/// <summary>
/// Says in Redis, every few seconds while this node is Up, that it runs (<see cref="ClusterMemberRegistry"/>), and takes
/// it off when the node stops: a seed started again reads who runs and joins their cluster.
/// </summary>
public sealed class MemberRegistryActor : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Func<IConnectionMultiplexer> _redis;
    private readonly RedisKey _members;
    private readonly string _address;
    private bool _failing;

    public MemberRegistryActor(Func<IConnectionMultiplexer> redis, RedisKey members)
    {
        _redis = redis;
        _members = members;
        var cluster = Cluster.Get(Context.System);
        _address = cluster.SelfAddress.ToString();
        Receive<MemberRegistry.Beat>(_ =>
        {
            if (cluster.SelfMember.Status != MemberStatus.Up) return; // a member yet to be Up cannot let anyone in
            ClusterMemberRegistry.BeatAsync(_redis().GetDatabase(), _members, _address, DateTimeOffset.UtcNow)
                .PipeTo(Self, success: () => MemberRegistry.Beaten.Instance, failure: ex => new MemberRegistry.BeatFailed(ex));
        });
        Receive<MemberRegistry.Beaten>(_ => _failing = false);
        Receive<MemberRegistry.BeatFailed>(f =>
        {
            // Once per outage: a seed started meanwhile joins through its seed list alone, as before
            if (!_failing) _log.Warning("Could not say in Redis that this member runs ({0}); trying again every {1} s", f.Error.Message,
                ClusterMemberRegistry.Beat.TotalSeconds);
            _failing = true;
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart() => Timers.StartPeriodicTimer("beat", MemberRegistry.Beat.Instance, TimeSpan.Zero, ClusterMemberRegistry.Beat);

    protected override void PostStop()
    {
        try { ClusterMemberRegistry.Leave(_redis().GetDatabase(), _members, _address); }
        catch (Exception) { /* Redis out of reach: the entry goes stale by itself */ }
    }
}

/// <summary>The messages of <see cref="MemberRegistryActor"/>: all its own.</summary>
public static class MemberRegistry
{
    internal sealed class Beat
    {
        public static readonly Beat Instance = new();
        private Beat() { }
    }

    internal sealed class Beaten
    {
        public static readonly Beaten Instance = new();
        private Beaten() { }
    }

    internal sealed record BeatFailed(Exception Error);
}

public static class MemberRegistryActorExtensions
{
    /// <summary>This node's entry in its cluster's member registry (<see cref="ClusterMemberRegistry"/>).</summary>
    public static AkkaConfigurationBuilder AddMemberRegistry(this AkkaConfigurationBuilder builder, Func<IConnectionMultiplexer> redis, RedisKeys keys) =>
        builder.WithActors((system, registry, _) =>
            registry.Register<MemberRegistryActor>(system.ActorOf(Props.Create(() => new MemberRegistryActor(redis, keys.ClusterMembers(system.Name))), "member-registry")));
}
