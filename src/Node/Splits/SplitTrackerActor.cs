using Akka.Actor;
using Akka.Event;
using ClusterJobs.Node.Broker;
using static ClusterJobs.Node.Splits.SplitTracker;

namespace ClusterJobs.Node.Splits;

/// <summary>
/// Keeps one <see cref="SplitCoordinatorActor"/> per waiting split parent of a queue. A child of the queue's router
/// singleton: where the router starts (first, or after its node died), this actor starts the coordinators of every
/// parent in the queue's waiting set, and they recover their state from the journal. It looks at the waiting set
/// again now and then, for a parent whose SplitStarted was lost with its node.
/// </summary>
public sealed class SplitTrackerActor : ReceiveActor, IWithTimers
{
    private readonly QueueBroker _broker;
    private readonly TimeSpan _reconcileEvery;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, IActorRef> _coordinators = new();
    private readonly Dictionary<IActorRef, string> _parents = new();
    private long _started;

    public SplitTrackerActor(QueueBroker broker, TimeSpan reconcileEvery)
    {
        _broker = broker;
        _reconcileEvery = reconcileEvery;

        Receive<SplitStarted>(s => Coordinator(s.ParentId));
        Receive<ChildrenFinished>(f =>
        {
            foreach (var group in f.Children.GroupBy(c => c.ParentId))
                Coordinator(group.Key).Tell(new SplitCoordinator.ChildrenEnded(group.Select(c => c.ChildId).ToList()));
        });
        Receive<Rescan>(_ => _broker.WaitingParentsAsync()
            .PipeTo(Self, success: ids => new WaitingParents(ids), failure: ex => new RescanFailed(ex)));
        Receive<WaitingParents>(w =>
        {
            var missing = w.ParentIds.Where(id => !_coordinators.ContainsKey(id)).ToList();
            if (missing.Count > 0) _log.Info("Queue {0}: coordinating {1} waiting split parent(s)", _broker.Keys.Name, missing.Count);
            foreach (var id in missing) Coordinator(id);
        });
        Receive<RescanFailed>(f => _log.Warning(f.Error, "Queue {0}: reading the waiting split parents failed; trying again later", _broker.Keys.Name));
        Receive<Terminated>(t =>
        {
            if (_parents.Remove(t.ActorRef, out var parent)) _coordinators.Remove(parent);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        Self.Tell(Rescan.Instance);
        Timers.StartPeriodicTimer("rescan", Rescan.Instance, _reconcileEvery * 2);
    }

    /// <summary>A coordinator that fails restarts and recovers from its journal (the default strategy).</summary>
    private IActorRef Coordinator(string parentId)
    {
        if (_coordinators.TryGetValue(parentId, out var existing)) return existing;
        var coordinator = Context.ActorOf(Props.Create(() => new SplitCoordinatorActor(parentId, _broker, _reconcileEvery)), "split-" + ++_started);
        Context.Watch(coordinator);
        _coordinators[parentId] = coordinator;
        _parents[coordinator] = parentId;
        return coordinator;
    }

    private sealed class Rescan : INoSerializationVerificationNeeded { public static readonly Rescan Instance = new(); }
    private sealed record WaitingParents(IReadOnlyList<string> ParentIds) : INoSerializationVerificationNeeded;
    private sealed record RescanFailed(Exception Error) : INoSerializationVerificationNeeded;
}

public static class SplitTrackerActorExtensions
{
    /// <summary>The split tracker of one queue, started by that queue's router (see <c>AddQueueRouters</c>).</summary>
    public static Props SplitTrackerProps(QueueBroker broker, TimeSpan? reconcileEvery = null) =>
        Props.Create(() => new SplitTrackerActor(broker, reconcileEvery ?? TimeSpan.FromSeconds(5)));
}
