using Akka.Actor;
using Akka.Hosting;
using Akka.Cluster.Tools.Singleton;
using Akka.Event;
using ClusterJobs.Node.Ingress;
using ClusterJobs.Node.Queues;
using ClusterJobs.Node.Workers;
using static ClusterJobs.Node.Routing.QueueRouter;

namespace ClusterJobs.Node.Routing;

/// <summary>
/// The one router of a queue. Worker pools pull: each says how many free slots it has for the queue (Demand); the
/// router leases that many jobs through its ingress child and hands them out, each to the pool with the most free
/// slots, never more than a pool asked for. It knows which pool runs which job, so the jobs of a pool that dies go
/// back to the queue at once instead of waiting for their leases to expire. Up to two takes are in flight, so Redis
/// leases the next batch while the node runs the last one. While the queue is busy it also holds a few jobs leased
/// ahead of demand (<see cref="QueueRouterSettings.ReadAhead"/>); jobs it holds too long go back to the queue.
/// While the queue has a backlog, pools on other nodes get a Grant of their credit instead of jobs and lease their
/// share themselves (<see cref="Ingress.QueueTakerActor"/>), so this node does not take, parse and ship every job;
/// when one of their takes comes back short the router takes for everyone again, and so it does while anything
/// (pause, cap, rate limit) makes it count each job that starts.
/// </summary>
public sealed class QueueRouterActor : ReceiveActor, IWithTimers
{
    private readonly string _queue;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IActorRef, PoolState> _pools = new();
    /// <summary>Leased jobs no pool has taken yet, oldest first, with when they arrived.</summary>
    private readonly Queue<(JobLease Job, DateTime At)> _buffer = new();
    private readonly QueueRouterSettings _routing;
    /// <summary>Jobs handed to pools in the current and the previous <see cref="QueueRouterSettings.BusyWindow"/>.</summary>
    private DateTime _windowStart = DateTime.MinValue;
    private int _dispatchedThisWindow, _dispatchedLastWindow;
    private readonly HashSet<IActorRef> _waitingForWork = [];
    private readonly IActorRef _ingress;
    private readonly Props? _settingsProps;
    /// <summary>Null while it is being started again (its recovery failed) or when the queue has no runtime settings.</summary>
    private IActorRef? _settingsActor;
    private int _settingsRestarts;
    private readonly IActorRef? _splits;
    /// <summary>Takes in flight (at most <see cref="MaxFetchesInFlight"/>) and how many jobs each asked for, oldest first.</summary>
    private readonly Queue<int> _fetches = new();
    private int _asked;
    private bool _exhausted;
    /// <summary>A pool's own take came back short: the queue may be running dry, so this router takes for every pool.</summary>
    private bool _grantsPaused;
    private QueueSettingsState? _settings;
    private double _tokens;
    private DateTime _tokensAt = DateTime.UtcNow;

    public ITimerScheduler Timers { get; set; } = null!;

    private const int MaxFetchesInFlight = 2;
    /// <summary>A second take in flight only for at least this many jobs: small asks wait for the first take's answer.</summary>
    private const int MinPipelinedFetch = 32;

    /// <param name="settingsProps">The queue's persistent settings (pause, caps, rate limit); null: no runtime settings.</param>
    /// <param name="splitsProps">The queue's split tracker (persistent coordinators of waiting parents); null: none.</param>
    /// <param name="routing">Read-ahead and hold limit; null: <see cref="QueueRouterSettings.Default"/> (no read-ahead).</param>
    public QueueRouterActor(string queue, Props ingressProps, Props? settingsProps = null, Props? splitsProps = null,
        QueueRouterSettings? routing = null)
    {
        _queue = queue;
        _routing = routing ?? QueueRouterSettings.Default;
        _ingress = Context.ActorOf(ingressProps, "ingress");
        _settingsProps = settingsProps;
        if (settingsProps is null) _settings = QueueSettingsState.Default;
        else StartSettings();
        if (splitsProps is not null) _splits = Context.ActorOf(splitsProps, "splits");

        Receive<QueueSettingsState>(ApplySettings);
        Receive<Terminated>(t => t.ActorRef.Equals(_settingsActor), _ => SettingsStopped());
        Receive<RestartSettings>(_ => StartSettings());
        Receive<QueueSettings.Change>(c => ForwardToSettings(c));
        Receive<QueueSettings.Get>(g => ForwardToSettings(g));
        Receive<RefillTokens>(_ => DispatchAndFetch());
        Receive<CheckHeld>(_ => ReturnHeldTooLong());
        Receive<Splits.SplitTracker.SplitStarted>(m => _splits?.Forward(m));
        Receive<Splits.SplitTracker.ChildrenFinished>(m => _splits?.Forward(m));

        Receive<Demand>(OnDemand);
        Receive<Withdraw>(_ =>
        {
            var slots = 0;
            if (_pools.TryGetValue(Sender, out var pool))
            {
                slots = pool.Credit;
                pool.Credit = 0;
            }
            Sender.Tell(new WorkerPool.Withdrawn(_queue, slots));
        });
        Receive<QueueIngress.Taken>(OnTaken);
        Receive<Took>(OnTook);
        Receive<QueueIngress.WorkMayBeAvailable>(_ =>
        {
            _exhausted = false;
            TellWaitingPools();
            DispatchAndFetch();
        });
        Receive<JobsCompleted>(c =>
        {
            if (_pools.TryGetValue(Sender, out var pool))
                foreach (var id in c.JobIds) pool.Running.Remove(id);
            if (_settings?.MaxRunning is not null) DispatchAndFetch(); // room under the cap again
        });
        Receive<HandOver>(_ =>
        {
            // This node leaves: jobs leased but not handed to a pool go back to the queue, then the router stops and
            // the router singleton starts on the next oldest node. A take still in flight is awaited and returned too.
            ReturnBuffer();
            Become(HandingOver);
            Timers.StartSingleTimer("handover", HandOverTimeout.Instance, TimeSpan.FromSeconds(5));
            if (_fetches.Count == 0) StopAfterIngress();
        });
        Receive<Terminated>(t => PoolGone(t.ActorRef));
        Receive<GetStatus>(_ => Sender.Tell(new RouterStatus(_queue, _buffer.Count, _pools.Count,
            _pools.Values.Sum(p => p.Credit), _pools.Values.Sum(p => p.Running.Count), _pools.Values.Sum(p => p.Granted))));
    }

    /// <summary>The ingress keeps its leases across a failed message (resume); see docs/supervision.md.</summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(ex =>
    {
        _log.Error(ex, "Ingress of queue {0} failed; resuming it", _queue);
        return Hosting.NodeGuardianStrategy.Decide(ex);
    });

    private void OnDemand(Demand demand)
    {
        var pool = PoolOf(Sender);
        pool.Credit += demand.Slots;
        pool.Parked = demand.Park;
        pool.TakesOwn = demand.TakesOwn;
        pool.ReadsTraceContext = demand.ReadsTraceContext;
        DispatchAndFetch();
    }

    private PoolState PoolOf(IActorRef poolRef)
    {
        if (_pools.TryGetValue(poolRef, out var pool)) return pool;
        // Only a pool on another node takes its own share: the router's own node takes through the ingress anyway.
        var address = poolRef.Path.Address;
        pool = new PoolState
        {
            Remote = _routing.GrantToLocalPools || (address.HasGlobalScope && !address.Equals(((ExtendedActorSystem)Context.System).Provider.DefaultAddress)),
        };
        _pools[poolRef] = pool;
        Context.Watch(poolRef);
        return pool;
    }

    /// <summary>A pool leased jobs under its grant (a router that moved here learns of them too, for reclaim).</summary>
    private void OnTook(Took took)
    {
        var pool = PoolOf(Sender);
        pool.Granted = Math.Max(0, pool.Granted - took.Granted);
        pool.Running.UnionWith(took.JobIds);
        if (took.Exhausted) _grantsPaused = true;
        DispatchAndFetch();
    }

    private void OnTaken(QueueIngress.Taken taken)
    {
        var poolsTold = false;
        if (!taken.Woken) FetchAnswered();
        else if (taken.Jobs.Count > 0) poolsTold = TellWaitingPools();
        _exhausted = taken.Exhausted;
        var now = DateTime.UtcNow;
        foreach (var job in taken.Jobs) _buffer.Enqueue((job, now));
        if (_buffer.Count > 0 && !Timers.IsTimerActive("held"))
            Timers.StartPeriodicTimer("held", CheckHeld.Instance, _routing.MaxHold / 2);
        // These jobs were taken for the credit there was, other nodes' too: they go out before grants resume.
        Dispatch(Allowance());
        if (!taken.Exhausted && taken.Jobs.Count > 0) _grantsPaused = false; // a backlog: pools take their own again
        DispatchAndFetch();
        // A woken take asked for credit the pools may have taken back since: what no pool will take goes back.
        // (The settings may have changed meanwhile, too: a paused queue gives back what a wake took just before.)
        if (taken.Woken && _buffer.Count > 0 && ((!poolsTold && _pools.Values.All(p => p.Credit == 0)) || _settings is { Paused: true }))
            ReturnBuffer();
    }

    /// <summary>Pools that heard Empty from this queue hear it has work again; false if there were none.</summary>
    private bool TellWaitingPools()
    {
        foreach (var pool in _waitingForWork) pool.Tell(new WorkerPool.WorkAvailable(_queue));
        var any = _waitingForWork.Count > 0;
        _waitingForWork.Clear();
        return any;
    }

    /// <summary>A take answered (answers come in the order asked: one ingress, one Redis connection).</summary>
    private void FetchAnswered()
    {
        if (_fetches.TryDequeue(out var asked)) _asked -= asked;
    }

    private void ReturnBuffer()
    {
        if (_buffer.Count > 0) _ingress.Tell(new QueueIngress.Return(_buffer.Select(b => b.Job.Envelope.Id).ToList()));
        _buffer.Clear();
    }

    /// <summary>
    /// Nobody renews the lease of a job the router holds: once the oldest held job has waited
    /// <see cref="QueueRouterSettings.MaxHold"/> (read ahead for pools that then got busy elsewhere, or left for a demand
    /// that was withdrawn), the whole buffer goes back to the queue. Pools take the oldest first, so no pool took any
    /// held job in that time.
    /// </summary>
    private void ReturnHeldTooLong()
    {
        if (_buffer.Count == 0)
        {
            Timers.Cancel("held");
            return;
        }
        if (DateTime.UtcNow - _buffer.Peek().At < _routing.MaxHold) return;
        _log.Debug("Queue {0}: {1} leased job(s) no pool took within {2} go back to the queue", _queue, _buffer.Count, _routing.MaxHold);
        ReturnBuffer();
    }

    private void HandingOver()
    {
        Receive<QueueIngress.Taken>(t =>
        {
            if (!t.Woken) FetchAnswered();
            if (t.Jobs.Count > 0) _ingress.Tell(new QueueIngress.Return(t.Jobs.Select(j => j.Envelope.Id).ToList()));
            if (_fetches.Count == 0) StopAfterIngress();
        });
        Receive<HandOverTimeout>(_ => StopAfterIngress());
        Receive<Terminated>(t => t.ActorRef.Equals(_ingress), _ => Context.Stop(Self));
        ReceiveAny(_ => { });
    }

    /// <summary>The ingress handles the Return messages already in its mailbox, then stops; so does the router.</summary>
    private void StopAfterIngress()
    {
        Context.Watch(_ingress);
        _ingress.Tell(PoisonPill.Instance);
    }

    private void ForwardToSettings(object message)
    {
        if (_settingsProps is null) Sender.Tell(new Status.Failure(new InvalidOperationException($"Queue {_queue} has no runtime settings on this node.")));
        else if (_settingsActor is null)
            Sender.Tell(new Status.Failure(new InvalidOperationException($"Queue {_queue}'s settings could not be read from Redis yet; try again shortly.")));
        else _settingsActor.Forward(message);
    }

    private void StartSettings()
    {
        _settingsActor = Context.ActorOf(_settingsProps!, "settings");
        Context.Watch(_settingsActor);
    }

    /// <summary>
    /// Akka stops a persistent actor whose recovery or write failed (Redis down as the router started, after its node
    /// died, say). Without its settings the queue must start nothing (it may be paused), so they are read again, after
    /// 1 s, then up to 30 s between tries; the last settings read stay in force meanwhile.
    /// </summary>
    private void SettingsStopped()
    {
        _settingsActor = null;
        var delay = TimeSpan.FromSeconds(Math.Min(30, 1 << Math.Min(_settingsRestarts, 5)));
        _settingsRestarts++;
        _log.Warning("Queue {0}: its settings actor stopped (Redis journal unreachable?); reading the settings again in {1}{2}",
            _queue, delay, _settings is null ? ", and starting no job until then" : "");
        Timers.StartSingleTimer("settings-restart", RestartSettings.Instance, delay);
    }

    private void ApplySettings(QueueSettingsState settings)
    {
        _settingsRestarts = 0;
        var wasPaused = _settings?.Paused ?? false;
        var limitedBefore = _settings is { } before && Limited(before);
        _settings = settings;
        if (Limited(settings) != limitedBefore) _ingress.Tell(new QueueIngress.WakeTakes(!Limited(settings)));
        _tokens = Math.Min(_tokens, settings.RateLimitPerSecond ?? 0);
        if (settings.RateLimitPerSecond is { } rate)
            Timers.StartPeriodicTimer("refill", RefillTokens.Instance, TimeSpan.FromMilliseconds(Math.Clamp(1000 / rate, 5, 100)));
        else Timers.Cancel("refill");
        if (settings.Paused && !wasPaused && _buffer.Count > 0)
        {
            // Paused: jobs leased but not handed out go back to the queue, untouched.
            ReturnBuffer();
        }
        _log.Info("Queue {0}: {1}", _queue, settings);
        DispatchAndFetch();
    }

    /// <summary>Settings under which the router must count every job it lets start: no take on a wake alone.</summary>
    private static bool Limited(QueueSettingsState s) => s.Paused || s.MaxRunning is not null || s.RateLimitPerSecond is not null;

    /// <summary>How many more jobs the settings let start now (pause, cluster-wide running cap, rate limit).</summary>
    private int Allowance()
    {
        if (_settings is not { } s) return 0; // not recovered yet
        if (s.Paused) return 0;
        var allowed = int.MaxValue;
        // Slots granted before a cap was set may still start jobs: they count against it as running ones do.
        if (s.MaxRunning is { } cap) allowed = Math.Max(0, RoomUnderCap(cap));
        if (s.RateLimitPerSecond is { } rate)
        {
            var now = DateTime.UtcNow;
            _tokens = Math.Min(Math.Max(1, rate), _tokens + (now - _tokensAt).TotalSeconds * rate);
            _tokensAt = now;
            allowed = Math.Min(allowed, (int)_tokens);
        }
        return allowed;
    }

    /// <summary>
    /// Paused, at its running cap, or its settings not read yet: it can start no job, however much work it has. (Out of
    /// rate tokens is not closed: the next token is a fraction of a second away.)
    /// </summary>
    private bool Closed => _settings is not { } s || s.Paused ||
                           (s.MaxRunning is { } cap && RoomUnderCap(cap) <= 0);

    /// <summary>Jobs that may still start under a running cap: granted slots count as running ones do.</summary>
    private int RoomUnderCap(int cap) => cap - _pools.Values.Sum(p => p.Running.Count + p.Granted);

    /// <summary>Slots given back while closed: the pools that took them elsewhere hear when this queue may start jobs again.</summary>
    private bool _gaveBackWhileClosed;

    private void DispatchAndFetch()
    {
        if (_gaveBackWhileClosed && !Closed)
        {
            _gaveBackWhileClosed = false;
            TellWaitingPools();
        }
        var allowance = Allowance();
        if (GrantsAllowed)
        {
            // Jobs held beyond the read-ahead this node's pools are owed were taken for other pools' credit (a take
            // still in flight when grants resumed): they go out first, to whoever has credit, and only the rest is granted.
            var surplus = _buffer.Count - ReadAhead();
            if (surplus > 0) Dispatch(Math.Min(allowance, surplus));
            Grant();
        }
        Dispatch(allowance);
        if (Closed)
        {
            // A pool's demand that is not parked here waits for an answer before it offers its next queue: kept, it
            // would starve the node's lower queues for as long as this one is closed.
            _gaveBackWhileClosed |= GiveBackUnparkedCredit();
            return;
        }
        var want = Math.Min(_pools.Values.Sum(p => p.Credit) + ReadAhead(), Allowance()) - _buffer.Count - _asked;
        if (want <= 0) return;
        if (!_exhausted)
        {
            // A large demand goes out as two takes at once (one script call leases at most a batch).
            while (want > 0 && (_fetches.Count == 0 || (_fetches.Count < MaxFetchesInFlight && want >= MinPipelinedFetch)))
            {
                var ask = Math.Min(want, QueueIngressSettings.DefaultMaxBatch);
                _fetches.Enqueue(ask);
                _asked += ask;
                want -= ask;
                _ingress.Tell(new QueueIngress.Fetch(ask));
            }
            return;
        }
        if (_fetches.Count > 0) return; // a take in flight may still bring work: wait for its answer
        // The queue is empty: pools whose demand is not parked go ask their next queue.
        GiveBackUnparkedCredit();
    }

    /// <summary>Pools whose demand is not parked here hear Empty for their credit, and go ask their next queue; whether any did.</summary>
    private bool GiveBackUnparkedCredit()
    {
        var any = false;
        foreach (var (poolRef, pool) in _pools)
        {
            if (pool.Parked || pool.Credit == 0) continue;
            poolRef.Tell(new WorkerPool.Empty(_queue, pool.Credit));
            pool.Credit = 0;
            _waitingForWork.Add(poolRef);
            any = true;
        }
        return any;
    }

    /// <summary>
    /// Jobs to lease beyond the demand: as many as went to pools in the last busy window, at most the read-ahead, so a
    /// queue of slow jobs holds next to nothing (what it holds would wait, unrenewed) and a fast one a full batch.
    /// Never while something limits the queue.
    /// </summary>
    private int ReadAhead() =>
        _routing.ReadAhead > 0 && !_exhausted && _settings is { } s && !Limited(s) && _pools.Count > 0
            ? Math.Min(_routing.ReadAhead, RecentlyDispatched())
            : 0;

    private int RecentlyDispatched()
    {
        var age = DateTime.UtcNow - _windowStart;
        if (age >= 2 * _routing.BusyWindow) return 0;
        return age >= _routing.BusyWindow ? _dispatchedThisWindow : Math.Max(_dispatchedThisWindow, _dispatchedLastWindow);
    }

    private void CountDispatched(int jobs)
    {
        var now = DateTime.UtcNow;
        var age = now - _windowStart;
        if (age >= _routing.BusyWindow)
        {
            _dispatchedLastWindow = age < 2 * _routing.BusyWindow ? _dispatchedThisWindow : 0;
            _dispatchedThisWindow = 0;
            _windowStart = now;
        }
        _dispatchedThisWindow += jobs;
    }

    /// <summary>Whether pools on other nodes may lease their own share: the queue has a backlog and nothing limits it.</summary>
    private bool GrantsAllowed => !_grantsPaused && !_exhausted && _settings is { } s && !Limited(s);

    /// <summary>Pools on other nodes that can take their own share get their credit as a grant instead of jobs.</summary>
    private void Grant()
    {
        foreach (var (poolRef, pool) in _pools)
        {
            if (!pool.MayGetGrant || pool.Credit == 0) continue;
            poolRef.Tell(new WorkerPool.Grant(_queue, pool.Credit));
            pool.Granted += pool.Credit;
            pool.Credit = 0;
        }
    }

    /// <summary>Each job goes to the pool with the most free slots, so load follows free capacity.</summary>
    private void Dispatch(int allowance)
    {
        if (_buffer.Count == 0 || allowance <= 0) return;
        Dictionary<IActorRef, List<JobLease>>? batches = null;
        var sent = 0;
        var sentToTakers = 0;
        while (_buffer.Count > 0 && sent < allowance)
        {
            IActorRef? best = null;
            PoolState? bestState = null;
            foreach (var (poolRef, pool) in _pools)
                if (pool.Credit > (bestState?.Credit ?? 0)) (best, bestState) = (poolRef, pool);
            if (best is null) break;
            var job = _buffer.Dequeue().Job;
            sent++;
            bestState!.Credit--;
            bestState.Running.Add(job.Envelope.Id);
            if (bestState.MayGetGrant) sentToTakers++;
            batches ??= new();
            if (!batches.TryGetValue(best, out var batch)) batches[best] = batch = [];
            batch.Add(job);
        }
        if (batches is null) return;
        // Read-ahead is sized by the pools it serves: a pool that takes its own share while the queue is busy does not
        // count, or the jobs read ahead for it would wait for credit it gets as grants.
        CountDispatched(sent - sentToTakers);
        if (_settings?.RateLimitPerSecond is not null) _tokens -= sent;
        foreach (var (poolRef, jobs) in batches)
            poolRef.Tell(new WorkerPool.Dispatch(_queue, _pools[poolRef].ReadsTraceContext ? jobs : WithoutTraceContext(jobs)));
    }

    /// <summary>
    /// For a pool of a version before tracing: a Dispatch carrying trace context is one it cannot read (format 2), so
    /// its jobs go without it (their runs are untraced there; the context stays in Redis).
    /// </summary>
    private static List<JobLease> WithoutTraceContext(List<JobLease> jobs)
    {
        for (var i = 0; i < jobs.Count; i++)
            if (jobs[i].Envelope is { } e && (e.TraceParent is not null || e.TraceState is not null))
                jobs[i] = jobs[i] with { Envelope = e with { TraceParent = null, TraceState = null } };
        return jobs;
    }

    private void PoolGone(IActorRef poolRef)
    {
        _waitingForWork.Remove(poolRef);
        if (!_pools.Remove(poolRef, out var pool)) return;
        if (pool.Running.Count > 0)
        {
            _log.Warning("Queue {0}: worker pool {1} is gone with {2} job(s) running; returning them to the queue",
                _queue, poolRef.Path, pool.Running.Count);
            _ingress.Tell(new QueueIngress.Reclaim(pool.Running.ToList()));
        }
        DispatchAndFetch();
    }

    private sealed class RefillTokens : INoSerializationVerificationNeeded { public static readonly RefillTokens Instance = new(); }
    private sealed class CheckHeld : INoSerializationVerificationNeeded { public static readonly CheckHeld Instance = new(); }
    private sealed class HandOverTimeout : INoSerializationVerificationNeeded { public static readonly HandOverTimeout Instance = new(); }
    private sealed class RestartSettings : INoSerializationVerificationNeeded { public static readonly RestartSettings Instance = new(); }

    private sealed class PoolState
    {
        public int Credit;
        /// <summary>Slots granted to the pool that its own takes have not answered yet.</summary>
        public int Granted;
        public bool Parked;
        public bool TakesOwn;
        public bool ReadsTraceContext;
        public bool Remote;
        public bool MayGetGrant => Remote && TakesOwn;
        public readonly HashSet<string> Running = [];
    }
}

public static class QueueRouterActorExtensions
{
    /// <summary>The cluster role of nodes that serve <paramref name="queue"/>.</summary>
    public static string RoleFor(string queue) => "queue-" + queue;

    /// <summary>
    /// One router per queue in the whole cluster: a cluster singleton among the nodes serving the queue (the oldest
    /// hosts it; when it leaves or dies the next oldest takes over), reached on every node through a singleton proxy,
    /// which <paramref name="routers"/> records. See docs/architecture.md for why a singleton and not sharding.
    /// </summary>
    public static AkkaConfigurationBuilder AddQueueRouters(this AkkaConfigurationBuilder builder, IEnumerable<string> queues,
        QueueRouters routers, Func<string, Props> ingressProps, bool persistentSettings = true, Func<string, Props>? splitsProps = null,
        QueueRouterSettings? routing = null) =>
        builder.WithActors((system, _, _) =>
        {
            foreach (var queue in queues)
            {
                var role = RoleFor(queue);
                var splits = splitsProps is null ? null : splitsProps(queue);
                system.ActorOf(ClusterSingletonManager.Props(
                        Props.Create(() => new QueueRouterActor(queue, ingressProps(queue),
                            persistentSettings ? Props.Create(() => new QueueSettingsActor(queue)) : null, splits, routing)),
                        QueueRouter.HandOver.Instance,
                        ClusterSingletonManagerSettings.Create(system).WithRole(role).WithSingletonName("router")),
                    $"router-{queue}");
                routers.Add(queue, system.ActorOf(ClusterSingletonProxy.Props($"/user/router-{queue}",
                        ClusterSingletonProxySettings.Create(system).WithRole(role).WithSingletonName("router").WithBufferSize(10_000)),
                    $"router-{queue}-proxy"));
            }
        });
}
