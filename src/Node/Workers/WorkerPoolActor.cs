using Akka.Actor;
using Akka.Hosting;
using Akka.Event;
using Akka;
using ClusterJobs.Protocol;
using StackExchange.Redis;
using ClusterJobs.Node.Routing;
using static ClusterJobs.Node.Workers.WorkerPool;

namespace ClusterJobs.Node.Workers;

/// <summary>A queue this node serves, in priority order, with the most of the node's slots it may use.</summary>
public sealed record ServedQueue(string Name, int MaxConcurrency);

/// <summary>
/// The node's workers: supervises one <see cref="WorkerActor"/> per slot and pulls work for them from the routers of
/// the queues it serves, in priority order. Free slots are offered to the first queue; a queue with no work answers
/// Empty and the slots go to the next; the last queue keeps them parked until work comes. When a higher queue gets
/// work again its router says so, and parked slots are withdrawn from the lower one, so high always drains first.
/// A router may answer a Demand with a Grant instead of jobs (this node is not the router's and the queue has a
/// backlog): the queue's taker, a child of the pool, then leases the jobs here and the router hears which (Took).
/// </summary>
public sealed class WorkerPoolActor : ReceiveActor, IWithTimers
{
    private readonly IReadOnlyList<ServedQueue> _queues;
    private readonly QueueRouters _routers;
    private readonly int _capacity;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Stack<IActorRef> _idle = new();
    private readonly Dictionary<IActorRef, string> _busy = new();
    private readonly Dictionary<string, IActorRef> _runningJobs = new();
    private readonly RecentCancels _recentCancels = new(TimeSpan.FromMinutes(1));
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly int _maxRunaways;
    private readonly IActorRef _leaseKeeper;
    private readonly IActorRef _results;
    /// <summary>Jobs dispatched here whose outcome is not yet recorded in Redis.</summary>
    private readonly HashSet<string> _outstanding = [];
    private IActorRef? _drainRequester;
    private int _runaways;
    private int _runawaysTotal;
    private readonly Dictionary<string, int> _busyByQueue = new();
    private readonly Dictionary<string, int> _credit = new();
    /// <summary>Per queue, slots a router granted whose take (by this node's taker) has not answered yet.</summary>
    private readonly Dictionary<string, int> _granted = new();
    private int _askIndex;
    private string? _awaiting;
    private bool _withdrawing;
    /// <summary>Per queue, the child that leases jobs for this node under a router's grant (none: this pool takes no grants).</summary>
    private readonly Dictionary<string, IActorRef> _takers = new();

    public WorkerPoolActor(IReadOnlyList<ServedQueue> queues, int capacity, QueueRouters routers, Func<Props> workerProps,
        IActorRef leaseKeeper, IActorRef results, IConnectionMultiplexer redis, RedisKeys keys, int maxRunaways = 0,
        Func<string, Props>? takerProps = null)
    {
        _leaseKeeper = leaseKeeper;
        _results = results;
        _maxRunaways = maxRunaways;
        _redis = redis;
        _keys = keys;
        if (queues.Count == 0) throw new ArgumentException("A worker pool needs at least one queue.", nameof(queues));
        _queues = queues;
        _capacity = capacity;
        _routers = routers;
        foreach (var q in queues) { _busyByQueue[q.Name] = 0; _credit[q.Name] = 0; _granted[q.Name] = 0; }
        for (var i = 0; i < capacity; i++) _idle.Push(Context.ActorOf(workerProps(), $"worker-{i}"));
        if (takerProps is not null)
            foreach (var q in queues) _takers[q.Name] = Context.ActorOf(takerProps(q.Name), $"taker-{q.Name}");

        Receive<Dispatch>(OnDispatch);
        Receive<Grant>(OnGrant);
        Receive<Ingress.QueueTaker.Taken>(OnTakenHere);
        Receive<Empty>(e =>
        {
            _credit[e.Queue] = Math.Max(0, _credit[e.Queue] - e.Slots);
            if (_awaiting == e.Queue) _awaiting = null;
            // Work announced meanwhile at a higher queue: start over from the top instead of moving down.
            _askIndex = _workAbove ? 0 : IndexOf(e.Queue) + 1;
            _workAbove = false;
            Offer();
        });
        Receive<WorkAvailable>(w =>
        {
            var index = IndexOf(w.Queue);
            if (_awaiting is not null && index < IndexOf(_awaiting)) _workAbove = true;
            var parkedBelow = _queues.Skip(index + 1).FirstOrDefault(q => _credit[q.Name] > 0 && _awaiting != q.Name);
            if (parkedBelow is not null && !_withdrawing)
            {
                _withdrawing = true;
                _routers[parkedBelow.Name].Tell(QueueRouter.Withdraw.Instance);
            }
            if (_awaiting is null) { _askIndex = 0; Offer(); }
        });
        Receive<Withdrawn>(w =>
        {
            _credit[w.Queue] = Math.Max(0, _credit[w.Queue] - w.Slots);
            _withdrawing = false;
            if (_awaiting == w.Queue) _awaiting = null;
            if (_awaiting is null) { _askIndex = 0; Offer(); }
            CheckDrained();
        });
        Receive<WorkerFree>(f =>
        {
            if (_busy.Remove(f.Worker)) _busyByQueue[f.Queue]--;
            _runningJobs.Remove(f.JobId);
            _idle.Push(f.Worker);
            if (_awaiting is null) _askIndex = 0;
            // Slots freed by a burst of finished jobs are offered in one Demand: the OfferFreed message queues behind
            // the WorkerFree messages already in the mailbox.
            if (_offerQueued) return;
            _offerQueued = true;
            Self.Tell(OfferFreed.Instance);
        });
        Receive<OfferFreed>(_ =>
        {
            _offerQueued = false;
            Offer();
        });
        Receive<Recorded>(r =>
        {
            _outstanding.ExceptWith(r.JobIds);
            _leaseKeeper.Tell(new LeaseKeeper.Untrack(r.Queue, r.JobIds));
            _routers[r.Queue].Tell(new QueueRouter.JobsCompleted(r.JobIds));
            CheckDrained();
        });
        Receive<Drain>(d =>
        {
            _log.Info("Draining: taking no more work, finishing {0} running job(s) within {1}", _busy.Count, d.Grace);
            _draining = true;
            _drainRequester = Sender;
            // Downed: the routers are gone with the cluster and will not answer a Withdraw; what they were offered is
            // forgotten at once, so only the running jobs are waited for (before, a downed node idled out the grace).
            if (d.Downed) foreach (var q in _queues) _credit[q.Name] = 0;
            else foreach (var q in _queues.Where(q => _credit[q.Name] > 0)) _routers[q.Name].Tell(QueueRouter.Withdraw.Instance);
            Timers.StartSingleTimer("drain-grace", DrainGraceOver.Instance, d.Grace);
            CheckDrained();
        });
        Receive<DrainGraceOver>(_ =>
        {
            _log.Warning("Drain grace period over: handing {0} running job(s) back to their queues", _busy.Count);
            foreach (var worker in _busy.Keys) worker.Tell(WorkerActor.HandBack.Instance);
            // A router that never answered our Withdraw (its node is gone, or we were downed) holds no job of ours:
            // whatever it might still send goes back to its queue untouched, so the credit is forgotten.
            foreach (var q in _queues) { _credit[q.Name] = 0; _granted[q.Name] = 0; }
            CheckDrained();
        });
        Receive<Tick>(_ =>
        {
            if (_awaiting is not null || _withdrawing) return;
            _askIndex = 0;
            Offer();
        });
        Receive<CancelRequested>(c =>
        {
            if (_runningJobs.TryGetValue(c.JobId, out var worker)) worker.Tell(new WorkerActor.CancelRunning(c.JobId));
            else _recentCancels.Add(c.JobId, DateTime.UtcNow); // leased, not started yet (or not ours): checked at start
        });
        Receive<RunawayStarted>(_ =>
        {
            _runaways++;
            _runawaysTotal++;
            _log.Warning("{0} abandoned handler(s) still running on this node (they ignored cancellation or block their thread)", _runaways);
            if (_maxRunaways > 0 && _runaways > _maxRunaways) Recycle();
        });
        Receive<RunawayEnded>(_ => _runaways--);
        Receive<Akka.Cluster.ClusterEvent.MemberRemoved>(_ => ResetCredit());
        Receive<GetStatus>(_ => Sender.Tell(new PoolStatus(_capacity, _busy.Count,
            new Dictionary<string, int>(_busyByQueue), new Dictionary<string, int>(_credit), _runaways, _runawaysTotal)));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>This pool's handler of its queues' cancel messages, to unsubscribe it alone.</summary>
    private Action<RedisChannel, RedisValue>? _onCancel;

    protected override void PreStart()
    {
        if (InCluster)
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(Akka.Cluster.ClusterEvent.MemberRemoved));
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromSeconds(1));
        var self = Self;
        _onCancel = (_, id) => self.Tell(new CancelRequested((string)id!));
        foreach (var q in _queues)
            _redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(_keys.Queue(q.Name).CancelChannel), _onCancel)
                .ContinueWith(t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
        Offer();
    }

    protected override void PostStop()
    {
        if (InCluster) Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        foreach (var q in _queues)
        {
            // Its own handler only, without waiting for the answer (see QueueIngressActor.PostStop)
            try { if (_onCancel is not null) _redis.GetSubscriber().Unsubscribe(RedisChannel.Literal(_keys.Queue(q.Name).CancelChannel), _onCancel, CommandFlags.FireAndForget); }
            catch (Exception) { /* connection gone */ }
        }
    }

    /// <summary>A crashed worker is restarted (its job is recorded as a failed attempt by the worker itself).</summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(ex =>
    {
        _log.Error(ex, "A worker crashed; restarting it");
        return Directive.Restart;
    });

    private void OnDispatch(Dispatch d)
    {
        // Credit never goes below zero: after a credit reset (a router moved) an old router may still deliver.
        _credit[d.Queue] = Math.Max(0, _credit[d.Queue] - d.Jobs.Count);
        Start(d.Queue, d.Jobs);
        OfferIfAnswered(d.Queue);
    }

    /// <summary>
    /// A router grants credit this pool offered: the taker leases that many jobs. At most the credit the pool still has
    /// (after a reset it has forgotten what it offered); the rest, and all of it while draining, is declined at once.
    /// </summary>
    private void OnGrant(Grant g)
    {
        if (!_credit.TryGetValue(g.Queue, out var credit))
        {
            Sender.Tell(new QueueRouter.Took([], g.Slots, Exhausted: false)); // not a queue of ours
            return;
        }
        var taking = !_draining && _takers.ContainsKey(g.Queue) ? Math.Min(g.Slots, credit) : 0;
        _credit[g.Queue] = Math.Max(0, credit - g.Slots);
        _granted[g.Queue] += taking;
        if (taking > 0) _takers[g.Queue].Tell(new Ingress.QueueTaker.Take(taking));
        if (taking < g.Slots) _routers[g.Queue].Tell(new QueueRouter.Took([], g.Slots - taking, Exhausted: false));
        CheckDrained();
    }

    /// <summary>
    /// This node's own take under a grant: the whole grant is used up (slots it found no job for are offered again,
    /// and the router, told the take came back short, takes for everyone until the queue has a backlog).
    /// </summary>
    private void OnTakenHere(Ingress.QueueTaker.Taken t)
    {
        _granted[t.Queue] = Math.Max(0, _granted[t.Queue] - t.Granted);
        Start(t.Queue, t.Jobs);
        _routers[t.Queue].Tell(new QueueRouter.Took(t.Jobs.Select(j => j.Envelope.Id).ToList(), t.Granted, t.Exhausted));
        OfferIfAnswered(t.Queue);
        if (_awaiting is null) Offer();
        CheckDrained();
    }

    private void Start(string queue, IReadOnlyList<JobLease> jobs)
    {
        if (jobs.Count == 0) return;
        var ids = jobs.Select(j => j.Envelope.Id).ToList();
        _outstanding.UnionWith(ids);
        _leaseKeeper.Tell(new LeaseKeeper.Track(queue, ids));
        var now = DateTime.UtcNow;
        foreach (var job in jobs)
        {
            if (_recentCancels.Take(job.Envelope.Id, now))
            {
                // Cancelled after it was leased, before it reached a worker: it ends cancelled without running.
                _results.Tell(new Results.ResultWriter.Record(queue, new Broker.JobOutcome.Cancelled(job.Envelope.Id), Self));
                continue;
            }
            if (_draining || !_idle.TryPop(out var worker))
            {
                // Not started (we are draining, or more came than we have slots for): back to the queue untouched.
                _results.Tell(new Results.ResultWriter.Record(queue, new Broker.JobOutcome.Returned(job.Envelope.Id), Self));
                continue;
            }
            _busy[worker] = queue;
            _runningJobs[job.Envelope.Id] = worker;
            _busyByQueue[queue]++;
            worker.Tell(new WorkerActor.Run(job));
        }
    }

    /// <summary>The queue we wait on has answered all our credit: offer the free slots again, from the top.</summary>
    private void OfferIfAnswered(string queue)
    {
        if (_awaiting != queue || _credit[queue] > 0) return;
        _awaiting = null;
        _askIndex = 0;
        Offer();
    }

    private void Offer()
    {
        if (_awaiting is not null || _draining) return;
        for (var i = _askIndex; i < _queues.Count; i++)
        {
            var free = _capacity - _busy.Count - _credit.Values.Sum() - _granted.Values.Sum();
            if (free <= 0) return;
            var q = _queues[i];
            var slots = Math.Min(free, q.MaxConcurrency - _busyByQueue[q.Name] - _credit[q.Name] - _granted[q.Name]);
            if (slots <= 0) continue;
            var last = i == _queues.Count - 1;
            _credit[q.Name] += slots;
            _routers[q.Name].Tell(new QueueRouter.Demand(slots, Park: last, TakesOwn: _takers.ContainsKey(q.Name), ReadsTraceContext: true));
            if (!last)
            {
                _awaiting = q.Name;
                _askIndex = i;
                return;
            }
        }
    }

    private bool _draining;

    private bool InCluster => ((ExtendedActorSystem)Context.System).Provider is Akka.Cluster.IClusterActorRefProvider;
    private bool _workAbove;

    /// <summary>
    /// A member left the cluster: a router singleton may have moved with it, and the slots this pool offered to the
    /// old one are lost. Forget all offered credit and offer the free slots again, to wherever the routers are now.
    /// (Should an old router still deliver, the surplus goes back to the queue untouched.)
    /// </summary>
    private void ResetCredit()
    {
        foreach (var q in _queues) _credit[q.Name] = 0;
        _awaiting = null;
        _withdrawing = false;
        _askIndex = 0;
        Offer();
        CheckDrained();
    }

    private void CheckDrained()
    {
        if (!_draining || _drainRequester is null) return;
        if (_outstanding.Count > 0 || _credit.Values.Any(c => c > 0) || _granted.Values.Any(g => g > 0)) return;
        _log.Info("Drained: every job of this node is finished or handed back");
        Timers.Cancel("drain-grace");
        _drainRequester.Tell(Drained.Instance);
        _drainRequester = null;
    }

    /// <summary>Too many runaway handlers hold threads we cannot take back: leave and exit so a fresh process replaces us.</summary>
    private void Recycle()
    {
        _log.Error("{0} runaway handlers exceed the limit of {1}: recycling this node (exit code 75)", _runaways, _maxRunaways);
        CoordinatedShutdown.Get(Context.System).Run(RecycleReason.Instance);
    }

    public const int RecycleExitCode = 75;

    /// <summary>Why the node shut down: too many runaway handlers.</summary>
    public sealed class RecycleReason : CoordinatedShutdown.Reason
    {
        public static readonly RecycleReason Instance = new();
        private RecycleReason() { }
        public override int ExitCode => RecycleExitCode;
    }

    private int IndexOf(string queue)
    {
        for (var i = 0; i < _queues.Count; i++) if (_queues[i].Name == queue) return i;
        return -1;
    }

    private sealed class Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
    private sealed class OfferFreed : INoSerializationVerificationNeeded { public static readonly OfferFreed Instance = new(); }
    private bool _offerQueued;
    private sealed record CancelRequested(string JobId) : INoSerializationVerificationNeeded;
    private sealed class DrainGraceOver : INoSerializationVerificationNeeded { public static readonly DrainGraceOver Instance = new(); }
}

public static class WorkerPoolActorExtensions
{
    /// <summary>Starts the node's worker pool (registered as <see cref="WorkerPoolActor"/>), after the routers it pulls from.</summary>
    public static AkkaConfigurationBuilder AddWorkerPool(this AkkaConfigurationBuilder builder, IReadOnlyList<ServedQueue> queues,
        int concurrency, QueueRouters routers, Func<ActorSystem, IActorRegistry, Props> workerProps,
        Func<IConnectionMultiplexer> redis, RedisKeys keys, int maxRunaways, TimeSpan drainGrace, Func<string, Props>? takerProps = null) =>
        builder.WithActors((system, registry, _) =>
        {
            var worker = workerProps(system, registry);
            var leases = registry.Get<LeaseKeeperActor>();
            var results = registry.Get<Results.ResultWriterActor>();
            var pool = system.ActorOf(Props.Create(() =>
                new WorkerPoolActor(queues, concurrency, routers, () => worker, leases, results, redis(), keys, maxRunaways, takerProps)), WorkerPool.ActorName);
            registry.Register<WorkerPoolActor>(pool);
            // On leave (SIGTERM): stop taking work and finish or hand back every job before the node leaves the cluster.
            CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseServiceRequestsDone, "drain-workers", async () =>
            {
                var downed = CoordinatedShutdown.Get(system).ShutdownReason is CoordinatedShutdown.ClusterDowningReason;
                try { await pool.Ask<Drained>(new Drain(drainGrace, downed), drainGrace + TimeSpan.FromSeconds(10)); }
                catch (Exception ex) { system.Log.Warning(ex, "Draining the worker pool did not finish in time"); }
                return Done.Instance;
            });
        });
}
