using Akka.Actor;
using Akka.Event;
using Akka.Hosting;

namespace ClusterJobs.Node.Routing;

/// <summary>
/// Warns when this node cannot reach a queue's router. Every period it asks each queue's router for its status
/// (<see cref="QueueRouter.GetStatus"/>, sent through the queue's singleton proxy, which holds it until it finds the
/// router; not <see cref="Identify"/>, which the proxy would answer itself); a queue whose router has not answered since
/// the last round is logged, with what to check. It replaces Akka's own check of the proxies, which is off because it
/// warned falsely at every start (akkadotnet/akka.net#8568).
/// </summary>
public sealed class RouterLookupWatchActor : ReceiveActor, IWithTimers
{
    /// <summary>How long a queue's router may stay out of reach before this node says so.</summary>
    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromSeconds(30);

    private readonly IReadOnlyDictionary<string, IActorRef> _routers;
    private readonly TimeSpan _period;
    private readonly HashSet<string> _answered = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="routers">Each served queue's router (its singleton proxy).</param>
    public RouterLookupWatchActor(IReadOnlyDictionary<string, IActorRef> routers, TimeSpan period)
    {
        _routers = routers;
        _period = period;
        // A late answer (the proxy found the router after the round ended) still says the router is there.
        Receive<QueueRouter.RouterStatus>(status => _answered.Add(status.Queue));
        Receive<CheckRound>(_ => Check());
    }

    protected override void PreStart()
    {
        Ask();
        Timers.StartPeriodicTimer("round", CheckRound.Instance, _period);
    }

    private void Check()
    {
        foreach (var queue in _routers.Keys.Where(q => !_answered.Contains(q)))
            _log.Warning("Queue {0}: its router has not answered this node for {1} s, so the queue's jobs do not start here. " +
                "Check that this node's cluster is Up: CLUSTER_SEEDS reachable, CLUSTER_MIN_MEMBERS members joined.",
                queue, _period.TotalSeconds.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture));
        _answered.Clear();
        Ask();
    }

    private void Ask()
    {
        foreach (var router in _routers.Values) router.Tell(QueueRouter.GetStatus.Instance);
    }

    private sealed class CheckRound : INoSerializationVerificationNeeded
    {
        public static readonly CheckRound Instance = new();
    }
}

public static class RouterLookupWatchActorExtensions
{
    /// <summary>Starts the watch over the routers of the queues this node serves (after <see cref="QueueRouterActorExtensions.AddQueueRouters"/>).</summary>
    public static AkkaConfigurationBuilder AddRouterLookupWatch(this AkkaConfigurationBuilder builder, QueueRouters routers, TimeSpan period) =>
        builder.WithActors((system, _, _) => system.ActorOf(
            Props.Create(() => new RouterLookupWatchActor(routers.Queues.ToDictionary(q => q, q => routers[q]), period)), "router-lookup-watch"));
}
