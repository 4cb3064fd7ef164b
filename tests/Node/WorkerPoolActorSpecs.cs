using Akka.Actor;
using Akka.TestKit;
using ClusterJobs.Node.Routing;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

/// <summary>The pool listens for cancel requests in Redis, so these specs run in the broker collection (on Garnet).</summary>
[Collection(BrokerCollection.Name)]
public sealed class WorkerPoolActorSpecs : Akka.TestKit.Xunit2.TestKit, IAsyncLifetime
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(250);

    private readonly BrokerFixture _broker;
    private readonly TestProbe _workers;
    private readonly TestProbe _leases;
    private readonly TestProbe _results;
    private readonly Dictionary<string, TestProbe> _routerProbes = new();
    private readonly QueueRouters _routers = new();
    private readonly RedisKeys _keys = new(BrokerFixture.NewPrefix());
    private IConnectionMultiplexer _redis = null!;

    public WorkerPoolActorSpecs(BrokerFixture broker, ITestOutputHelper output) : base(SpecConfig.Hocon, output: output)
    {
        _broker = broker;
        _workers = CreateTestProbe("workers");
        _leases = CreateTestProbe("leases");
        _results = CreateTestProbe("results");
    }

    public async Task InitializeAsync() => _redis = await RedisConnection.ConnectAsync(_broker.Url(BrokerKind.Garnet), "pool-specs");

    public async Task DisposeAsync()
    {
        await Sys.Terminate(); // the pool unsubscribes before the connection goes
        await _redis.DisposeAsync();
    }

    /// <summary>A worker that says it started a job; it is free again only when the spec says so.</summary>
    private sealed class StubWorker : ReceiveActor
    {
        public StubWorker(IActorRef probe)
        {
            Receive<WorkerActor.Run>(r => probe.Tell(new Started(Self, r.Job)));
            Receive<WorkerActor.CancelRunning>(c => probe.Tell(new CancelAsked(Self, c.JobId)));
            Receive<WorkerActor.HandBack>(_ => probe.Tell(new HandBackAsked(Self)));
        }
    }

    /// <summary>Stands in for a queue's taker: what the pool asks of it goes to a probe, which answers the pool.</summary>
    private sealed class PassTo : ReceiveActor
    {
        public PassTo(IActorRef probe) => ReceiveAny(probe.Forward);
    }

    private sealed record HandBackAsked(IActorRef Worker) : INoSerializationVerificationNeeded;

    private sealed record CancelAsked(IActorRef Worker, string JobId) : INoSerializationVerificationNeeded;

    private sealed record Started(IActorRef Worker, JobLease Job) : INoSerializationVerificationNeeded;

    private TestProbe Router(string queue) => _routerProbes[queue];

    private IActorRef StartPool(int capacity, params ServedQueue[] queues) => StartPool(capacity, null, queues);

    /// <summary>A pool whose takers (one per queue) are stand-ins that pass what they get to <paramref name="takers"/>.</summary>
    private IActorRef StartPool(int capacity, TestProbe? takers, params ServedQueue[] queues)
    {
        foreach (var q in queues)
        {
            var probe = CreateTestProbe($"router-{q.Name}");
            _routerProbes[q.Name] = probe;
            _routers.Add(q.Name, probe.Ref);
        }
        var workers = _workers.Ref;
        Func<Props> workerProps = () => Props.Create(() => new StubWorker(workers));
        var routers = _routers;
        var served = queues.ToList();
        var (redis, keys, leases, results) = (_redis, _keys, _leases.Ref, _results.Ref);
        var takerRef = takers?.Ref;
        Func<string, Props>? takerProps = takerRef is null ? null : _ => Props.Create(() => new PassTo(takerRef));
        return Sys.ActorOf(Props.Create(() => new WorkerPoolActor(served, capacity, routers, workerProps, leases, results, redis, keys, 0, takerProps)), "workers");
    }

    /// <summary>What a worker tells its pool when its job's outcome went to the result writer.</summary>
    private static void Free(IActorRef pool, Started started) =>
        pool.Tell(new WorkerPool.WorkerFree(started.Worker, started.Job.Envelope.Queue, started.Job.Envelope.Id));

    private static QueueRouter.Demand Demand(TestProbe router) => router.ExpectMsg<QueueRouter.Demand>();

    private WorkerPool.PoolStatus Status(IActorRef pool)
    {
        var probe = CreateTestProbe();
        probe.Send(pool, WorkerPool.GetStatus.Instance);
        return probe.ExpectMsg<WorkerPool.PoolStatus>();
    }

    /// <summary>No router hears from the pool for a while (all watched at once, well inside the pool's 1 s tick).</summary>
    private void ExpectNoDemand()
    {
        Thread.Sleep(Quiet);
        foreach (var (queue, router) in _routerProbes)
            Assert.False(router.HasMessages, $"The pool sent {router.ReceiveOne(TimeSpan.Zero)} to the router of '{queue}'.");
    }

    [Fact]
    public void Offers_its_free_slots_to_the_first_queue_as_non_parked_demand()
    {
        StartPool(3, new ServedQueue("high", 3), new ServedQueue("low", 3));

        Assert.Equal(new QueueRouter.Demand(3, Park: false, ReadsTraceContext: true), Demand(Router("high")));
        Router("low").ExpectNoMsg(Quiet); // one queue at a time
    }

    [Fact]
    public void A_single_queue_gets_parked_demand()
    {
        StartPool(2, new ServedQueue("only", 5));
        Assert.Equal(new QueueRouter.Demand(2, Park: true, ReadsTraceContext: true), Demand(Router("only")));
    }

    [Fact]
    public void On_Empty_it_asks_the_next_queue_and_parks_its_slots_on_the_last()
    {
        StartPool(3, new ServedQueue("high", 3), new ServedQueue("low", 3));
        Demand(Router("high"));

        Router("high").Reply(new WorkerPool.Empty("high", 3));

        Assert.Equal(new QueueRouter.Demand(3, Park: true, ReadsTraceContext: true), Demand(Router("low")));
        ExpectNoDemand();
    }

    [Fact]
    public void Work_at_a_higher_queue_withdraws_the_slots_parked_at_a_lower_one_and_offers_them_up()
    {
        StartPool(3, new ServedQueue("high", 3), new ServedQueue("low", 3));
        Demand(Router("high"));
        Router("high").Reply(new WorkerPool.Empty("high", 3));
        Demand(Router("low"));

        Router("high").Reply(new WorkerPool.WorkAvailable("high"));

        Router("low").ExpectMsg<QueueRouter.Withdraw>();
        Router("high").ExpectNoMsg(Quiet); // all its slots are still parked at low
        Router("low").Reply(new WorkerPool.Withdrawn("low", 3));
        Assert.Equal(new QueueRouter.Demand(3, Park: false, ReadsTraceContext: true), Demand(Router("high")));
    }

    [Fact]
    public void Slots_of_jobs_the_parked_queue_dispatched_meanwhile_are_not_offered_twice()
    {
        var pool = StartPool(3, new ServedQueue("high", 3), new ServedQueue("low", 3));
        Demand(Router("high"));
        Router("high").Reply(new WorkerPool.Empty("high", 3));
        Demand(Router("low"));
        Router("high").Reply(new WorkerPool.WorkAvailable("high"));
        Router("low").ExpectMsg<QueueRouter.Withdraw>();

        // low had already dispatched one job before it saw the Withdraw; it returns the other two slots.
        Router("low").Reply(new WorkerPool.Dispatch("low", Jobs.Leases("low", "early")));
        Router("low").Reply(new WorkerPool.Withdrawn("low", 2));

        Assert.Equal(new QueueRouter.Demand(2, Park: false, ReadsTraceContext: true), Demand(Router("high")));
        Assert.Equal("low:early", _workers.ExpectMsg<Started>().Job.Envelope.Id);
        var status = Status(pool);
        Assert.Equal(1, status.Busy);
        Assert.Equal(0, status.CreditByQueue["low"]);
        Assert.Equal(2, status.CreditByQueue["high"]);
    }

    [Fact]
    public void Dispatched_jobs_run_on_workers_and_freed_slots_are_offered_again_from_the_top()
    {
        var pool = StartPool(3, new ServedQueue("high", 3), new ServedQueue("low", 3));
        Demand(Router("high"));
        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "1", "2")));
        var started = new[] { _workers.ExpectMsg<Started>(), _workers.ExpectMsg<Started>() };
        Assert.Equal(["high:1", "high:2"], started.Select(s => s.Job.Envelope.Id).Order().ToArray());
        Assert.NotEqual(started[0].Worker, started[1].Worker);
        Router("low").ExpectNoMsg(Quiet); // still waiting for high's answer on the third slot

        Router("high").Reply(new WorkerPool.Empty("high", 1));
        Assert.Equal(new QueueRouter.Demand(1, Park: true, ReadsTraceContext: true), Demand(Router("low")));

        Free(pool, started[0]);
        Assert.Equal(new QueueRouter.Demand(1, Park: false, ReadsTraceContext: true), Demand(Router("high")));
        Router("low").ExpectNoMsg(Quiet);
    }

    [Fact]
    public void With_a_taker_its_demand_says_it_can_take_its_own_share()
    {
        StartPool(2, CreateTestProbe("takers"), new ServedQueue("only", 2));
        Assert.Equal(new QueueRouter.Demand(2, Park: true, TakesOwn: true, ReadsTraceContext: true), Demand(Router("only")));
    }

    [Fact]
    public void A_grant_is_leased_by_the_queues_taker_and_the_router_hears_which_jobs_it_took()
    {
        var takers = CreateTestProbe("takers");
        var pool = StartPool(3, takers, new ServedQueue("only", 3));
        Demand(Router("only"));

        Router("only").Reply(new WorkerPool.Grant("only", 3));

        Assert.Equal(new Ingress.QueueTaker.Take(3), takers.ExpectMsg<Ingress.QueueTaker.Take>());
        takers.Reply(new Ingress.QueueTaker.Taken("only", Jobs.Leases("only", "1", "2", "3"), Granted: 3, Exhausted: false));
        var started = new[] { _workers.ExpectMsg<Started>(), _workers.ExpectMsg<Started>(), _workers.ExpectMsg<Started>() };
        Assert.Equal(["only:1", "only:2", "only:3"], started.Select(s => s.Job.Envelope.Id).Order().ToArray());
        Assert.Equal(["only:1", "only:2", "only:3"], _leases.ExpectMsg<LeaseKeeper.Track>().JobIds.Order().ToArray());
        var took = Router("only").ExpectMsg<QueueRouter.Took>();
        Assert.Equal(["only:1", "only:2", "only:3"], took.JobIds.Order().ToArray());
        Assert.Equal(3, took.Granted);
        Assert.False(took.Exhausted);
        Router("only").ExpectNoMsg(Quiet); // every slot busy: nothing to offer

        Free(pool, started[0]);
        Assert.Equal(new QueueRouter.Demand(1, Park: true, TakesOwn: true, ReadsTraceContext: true), Demand(Router("only")));
    }

    [Fact]
    public void A_grant_the_queue_could_not_fill_uses_up_its_credit_and_the_free_slots_are_offered_again()
    {
        var takers = CreateTestProbe("takers");
        StartPool(3, takers, new ServedQueue("only", 3));
        Demand(Router("only"));
        Router("only").Reply(new WorkerPool.Grant("only", 3));
        takers.ExpectMsg<Ingress.QueueTaker.Take>();

        takers.Reply(new Ingress.QueueTaker.Taken("only", Jobs.Leases("only", "1"), Granted: 3, Exhausted: true));

        _workers.ExpectMsg<Started>();
        var took = Router("only").ExpectMsg<QueueRouter.Took>();
        Assert.Equal(["only:1"], took.JobIds);
        Assert.True(took.Exhausted);
        // The two slots the queue had no job for are offered again (the router now takes for this pool itself).
        Assert.Equal(new QueueRouter.Demand(2, Park: true, TakesOwn: true, ReadsTraceContext: true), Demand(Router("only")));
    }

    [Fact]
    public void A_grant_beyond_the_credit_the_pool_still_has_is_declined_for_the_rest()
    {
        var takers = CreateTestProbe("takers");
        StartPool(2, takers, new ServedQueue("only", 2));
        Demand(Router("only"));

        Router("only").Reply(new WorkerPool.Grant("only", 5)); // say, from a router that moved: the pool offered 2

        Assert.Equal(new Ingress.QueueTaker.Take(2), takers.ExpectMsg<Ingress.QueueTaker.Take>());
        var declined = Router("only").ExpectMsg<QueueRouter.Took>();
        Assert.Empty(declined.JobIds);
        Assert.Equal(3, declined.Granted);
    }

    [Fact]
    public void Slots_whose_take_is_still_running_are_not_offered_again()
    {
        var takers = CreateTestProbe("takers");
        var pool = StartPool(3, takers, new ServedQueue("only", 3));
        Demand(Router("only"));
        Router("only").Reply(new WorkerPool.Grant("only", 3));
        takers.ExpectMsg<Ingress.QueueTaker.Take>();

        // Past the pool's 1 s tick, which offers free slots: there are none while the take runs.
        Router("only").ExpectNoMsg(TimeSpan.FromMilliseconds(1_250));
        takers.Reply(new Ingress.QueueTaker.Taken("only", Jobs.Leases("only", "1", "2", "3"), Granted: 3, Exhausted: false));
        Assert.Equal(3, Enumerable.Range(0, 3).Select(_ => _workers.ExpectMsg<Started>()).Count());
        Router("only").ExpectMsg<QueueRouter.Took>();
        ExpectNoDemand();
    }

    [Fact]
    public void A_grant_for_a_queue_the_pool_does_not_serve_is_declined()
    {
        var takers = CreateTestProbe("takers");
        var pool = StartPool(2, takers, new ServedQueue("only", 2));
        var router = CreateTestProbe("stranger");

        router.Send(pool, new WorkerPool.Grant("other", 4));

        var took = router.ExpectMsg<QueueRouter.Took>();
        Assert.Empty(took.JobIds);
        Assert.Equal(4, took.Granted);
        Assert.False(took.Exhausted);
        takers.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void A_grant_that_comes_while_draining_is_declined_and_the_drain_ends()
    {
        var takers = CreateTestProbe("takers");
        var pool = StartPool(2, takers, new ServedQueue("only", 2));
        Demand(Router("only"));
        var requester = CreateTestProbe();
        requester.Send(pool, new WorkerPool.Drain(TimeSpan.FromSeconds(30)));
        Router("only").ExpectMsg<QueueRouter.Withdraw>();

        // The router granted the slots before it saw the Withdraw.
        Router("only").Reply(new WorkerPool.Grant("only", 2));
        Router("only").Reply(new WorkerPool.Withdrawn("only", 0));

        takers.ExpectNoMsg(Quiet);
        var took = Router("only").ExpectMsg<QueueRouter.Took>();
        Assert.Empty(took.JobIds);
        Assert.Equal(2, took.Granted);
        requester.ExpectMsg<WorkerPool.Drained>();
    }

    [Fact]
    public void Jobs_taken_under_a_grant_after_the_drain_began_are_returned_untouched()
    {
        var takers = CreateTestProbe("takers");
        var pool = StartPool(1, takers, new ServedQueue("only", 1));
        Demand(Router("only"));
        Router("only").Reply(new WorkerPool.Grant("only", 1));
        takers.ExpectMsg<Ingress.QueueTaker.Take>();
        var requester = CreateTestProbe();
        requester.Send(pool, new WorkerPool.Drain(TimeSpan.FromSeconds(30)));
        Router("only").ExpectNoMsg(Quiet); // no credit parked there: it is all granted, the take answers for it
        requester.ExpectNoMsg(TimeSpan.Zero);

        takers.Reply(new Ingress.QueueTaker.Taken("only", Jobs.Leases("only", "late"), Granted: 1, Exhausted: false));

        Assert.Equal(new Broker.JobOutcome.Returned("only:late"), _results.ExpectMsg<Results.ResultWriter.Record>().Outcome);
        _workers.ExpectNoMsg(Quiet);
        Router("only").ExpectMsg<QueueRouter.Took>();
        requester.ExpectNoMsg(TimeSpan.Zero);
        pool.Tell(new WorkerPool.Recorded("only", ["only:late"]));
        requester.ExpectMsg<WorkerPool.Drained>();
    }

    [Fact]
    public void Never_asks_for_more_than_its_capacity_while_all_workers_are_busy()
    {
        var pool = StartPool(2, new ServedQueue("high", 5), new ServedQueue("low", 5));
        Assert.Equal(2, Demand(Router("high")).Slots);
        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "1", "2")));
        var first = _workers.ExpectMsg<Started>();
        _workers.ExpectMsg<Started>();

        ExpectNoDemand();
        Assert.Equal(2, Status(pool).Busy);

        Free(pool, first);
        Assert.Equal(new QueueRouter.Demand(1, Park: false, ReadsTraceContext: true), Demand(Router("high")));
        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "3")));
        Assert.Equal(first.Worker, _workers.ExpectMsg<Started>().Worker);
        ExpectNoDemand();
    }

    [Fact]
    public void Never_runs_more_jobs_than_it_has_workers_even_when_a_router_sends_too_many()
    {
        var pool = StartPool(2, new ServedQueue("only", 5));
        Demand(Router("only"));

        Router("only").Reply(new WorkerPool.Dispatch("only", Jobs.Leases("only", "1", "2", "3")));

        _workers.ExpectMsg<Started>();
        _workers.ExpectMsg<Started>();
        _workers.ExpectNoMsg(Quiet);
        Assert.Equal(2, Status(pool).Busy);
    }

    /// <summary>
    /// Exposes a bug: WorkerPoolActor.OnDispatch subtracts every dispatched job from the queue's credit, also the jobs it
    /// could not run; the credit goes negative and the pool asks for more work while no worker is free.
    /// </summary>
    [Fact]
    public void After_a_router_sent_too_many_jobs_the_pool_does_not_ask_for_more_while_no_worker_is_free()
    {
        StartPool(2, new ServedQueue("high", 5), new ServedQueue("low", 5));
        Demand(Router("high"));

        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "1", "2", "3")));
        _workers.ExpectMsg<Started>();
        _workers.ExpectMsg<Started>();

        ExpectNoDemand();
    }

    [Fact]
    public void The_per_queue_limit_holds_and_the_rest_of_the_slots_go_to_the_next_queue()
    {
        var pool = StartPool(3, new ServedQueue("high", 1), new ServedQueue("low", 3));
        Assert.Equal(new QueueRouter.Demand(1, Park: false, ReadsTraceContext: true), Demand(Router("high")));
        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "1")));
        var running = _workers.ExpectMsg<Started>();

        Assert.Equal(new QueueRouter.Demand(2, Park: true, ReadsTraceContext: true), Demand(Router("low")));
        Router("high").ExpectNoMsg(Quiet); // its one slot is busy

        Free(pool, running);
        Assert.Equal(new QueueRouter.Demand(1, Park: false, ReadsTraceContext: true), Demand(Router("high")));
        var status = Status(pool);
        Assert.Equal(0, status.Busy);
        Assert.Equal(1, status.CreditByQueue["high"]);
        Assert.Equal(2, status.CreditByQueue["low"]);
    }

    [Fact]
    public void The_per_queue_limit_also_holds_for_the_parked_queue()
    {
        StartPool(4, new ServedQueue("high", 4), new ServedQueue("low", 1));
        Demand(Router("high"));
        Router("high").Reply(new WorkerPool.Empty("high", 4));

        Assert.Equal(new QueueRouter.Demand(1, Park: true, ReadsTraceContext: true), Demand(Router("low")));
        ExpectNoDemand();
    }

    [Fact]
    public void Recorded_outcomes_are_reported_to_the_router_of_their_queue_as_JobsCompleted()
    {
        var pool = StartPool(2, new ServedQueue("high", 2), new ServedQueue("low", 2));
        Demand(Router("high"));

        pool.Tell(new WorkerPool.Recorded("low", ["low:a", "low:b"]));

        Assert.Equal(["low:a", "low:b"], Router("low").ExpectMsg<QueueRouter.JobsCompleted>().JobIds);
        Router("high").ExpectNoMsg(Quiet);
    }

    [Fact]
    public void The_leases_of_dispatched_jobs_are_kept_until_their_outcomes_are_recorded()
    {
        var pool = StartPool(2, new ServedQueue("only", 2));
        Demand(Router("only"));

        Router("only").Reply(new WorkerPool.Dispatch("only", Jobs.Leases("only", "a", "b")));
        var track = _leases.ExpectMsg<LeaseKeeper.Track>();
        Assert.Equal("only", track.Queue);
        Assert.Equal(["only:a", "only:b"], track.JobIds);

        pool.Tell(new WorkerPool.Recorded("only", ["only:a"]));
        var untrack = _leases.ExpectMsg<LeaseKeeper.Untrack>();
        Assert.Equal("only", untrack.Queue);
        Assert.Equal(["only:a"], untrack.JobIds);
    }

    [Fact]
    public void Draining_gives_back_the_parked_slots_and_answers_Drained_once_the_running_jobs_are_recorded()
    {
        var pool = StartPool(2, new ServedQueue("only", 2));
        Demand(Router("only"));
        Router("only").Reply(new WorkerPool.Dispatch("only", Jobs.Leases("only", "a")));
        var running = _workers.ExpectMsg<Started>();
        var requester = CreateTestProbe();

        requester.Send(pool, new WorkerPool.Drain(TimeSpan.FromSeconds(30)));

        Router("only").ExpectMsg<QueueRouter.Withdraw>();
        // The router had dispatched into the last slot before it saw the Withdraw: nothing left to give back.
        Router("only").Reply(new WorkerPool.Dispatch("only", Jobs.Leases("only", "late")));
        Router("only").Reply(new WorkerPool.Withdrawn("only", 0));

        // That job is not started but returned to the queue untouched.
        var returned = _results.ExpectMsg<Results.ResultWriter.Record>();
        Assert.Equal(new Broker.JobOutcome.Returned("only:late"), returned.Outcome);
        Assert.Equal(pool, returned.NotifyWhenRecorded);
        _workers.ExpectNoMsg(Quiet);
        requester.ExpectNoMsg(TimeSpan.Zero);
        pool.Tell(new WorkerPool.Recorded("only", ["only:late"]));
        Router("only").ExpectMsg<QueueRouter.JobsCompleted>();
        requester.ExpectNoMsg(Quiet); // a job still runs

        Free(pool, running);
        Router("only").ExpectNoMsg(Quiet); // no new demand while draining
        pool.Tell(new WorkerPool.Recorded("only", ["only:a"]));
        requester.ExpectMsg<WorkerPool.Drained>();
    }

    [Fact]
    public void At_the_end_of_the_drain_grace_running_jobs_are_handed_back()
    {
        var pool = StartPool(1, new ServedQueue("only", 1));
        Demand(Router("only"));
        Router("only").Reply(new WorkerPool.Dispatch("only", Jobs.Leases("only", "slow")));
        var running = _workers.ExpectMsg<Started>();

        pool.Tell(new WorkerPool.Drain(TimeSpan.FromMilliseconds(200)));

        Assert.Equal(running.Worker, _workers.ExpectMsg<HandBackAsked>(TimeSpan.FromSeconds(2)).Worker);
    }

    [Fact]
    public void A_drain_whose_router_never_answers_the_withdraw_still_ends_at_the_grace()
    {
        // The node was downed: its routers are gone and no Withdrawn will come. Shutdown must not wait for one.
        var pool = StartPool(2, new ServedQueue("only", 2));
        Demand(Router("only"));
        var requester = CreateTestProbe();

        requester.Send(pool, new WorkerPool.Drain(TimeSpan.FromMilliseconds(300)));

        Router("only").ExpectMsg<QueueRouter.Withdraw>();
        requester.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        requester.ExpectMsg<WorkerPool.Drained>(TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void A_downed_node_drains_as_soon_as_its_running_jobs_are_recorded_without_waiting_for_its_routers()
    {
        var pool = StartPool(2, new ServedQueue("only", 2));
        Demand(Router("only"));
        Router("only").Reply(new WorkerPool.Dispatch("only", Jobs.Leases("only", "a")));
        var running = _workers.ExpectMsg<Started>(); // one slot runs a job, the other is offered to a router now gone
        var requester = CreateTestProbe();

        requester.Send(pool, new WorkerPool.Drain(TimeSpan.FromSeconds(30), Downed: true));

        Router("only").ExpectNoMsg(Quiet); // no Withdraw: nobody would answer it
        requester.ExpectNoMsg(TimeSpan.Zero); // a job still runs
        Free(pool, running);
        pool.Tell(new WorkerPool.Recorded("only", ["only:a"]));
        requester.ExpectMsg<WorkerPool.Drained>(TimeSpan.FromSeconds(3));
    }
    /// <summary>
    /// Exposes a bug: with three queues, WorkAvailable from the first queue while the pool waits for the second one's
    /// answer is forgotten when that answer is Empty (the Empty handler continues at the queue after the second), so all
    /// slots park at the last queue and the first queue, which has work, is never asked again.
    /// </summary>
    [Fact]
    public void Work_at_the_first_queue_announced_while_a_middle_queue_is_asked_is_not_lost()
    {
        StartPool(2, new ServedQueue("a", 2), new ServedQueue("b", 2), new ServedQueue("c", 2));
        Demand(Router("a"));
        Router("a").Reply(new WorkerPool.Empty("a", 2));
        Assert.Equal(new QueueRouter.Demand(2, Park: false, ReadsTraceContext: true), Demand(Router("b")));

        Router("a").Reply(new WorkerPool.WorkAvailable("a")); // a got work while b looks in Redis
        Router("b").Reply(new WorkerPool.Empty("b", 2));

        // a has work: the slots should go to a, not park at c (where nothing brings them back while c is idle).
        Assert.Equal(new QueueRouter.Demand(2, Park: false, ReadsTraceContext: true), Router("a").ExpectMsg<QueueRouter.Demand>(TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task A_cancel_request_published_in_redis_reaches_the_worker_running_that_job()
    {
        var pool = StartPool(2, new ServedQueue("high", 2));
        Demand(Router("high"));
        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "a", "b")));
        var started = new[] { _workers.ExpectMsg<Started>(), _workers.ExpectMsg<Started>() }.ToDictionary(s => s.Job.Envelope.Id);

        await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(_keys.Queue("high").CancelChannel), "high:b");

        var asked = _workers.ExpectMsg<CancelAsked>(TimeSpan.FromSeconds(3));
        Assert.Equal("high:b", asked.JobId);
        Assert.Equal(started["high:b"].Worker, asked.Worker);

        // A job no longer running here is not cancelled on the worker that ran it.
        Free(pool, started["high:a"]);
        await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(_keys.Queue("high").CancelChannel), "high:a");
        _workers.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task A_job_cancelled_after_it_was_leased_but_before_it_reached_this_pool_ends_cancelled_without_running()
    {
        // Leased, so "running" in Redis, but still in a router's read-ahead when the cancel came: no worker had it.
        StartPool(2, new ServedQueue("high", 2));
        Demand(Router("high"));
        await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(_keys.Queue("high").CancelChannel), "high:c");
        await Task.Delay(300); // the pool hears it over pub/sub

        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "c", "d")));

        var record = _results.ExpectMsg<Results.ResultWriter.Record>();
        Assert.Equal(new Broker.JobOutcome.Cancelled("high:c"), record.Outcome);
        Assert.Equal("high:d", _workers.ExpectMsg<Started>().Job.Envelope.Id);
        _workers.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void Counts_abandoned_handlers_that_still_run()
    {
        var pool = StartPool(1, new ServedQueue("only", 1));
        pool.Tell(WorkerPool.RunawayStarted.Instance);
        pool.Tell(WorkerPool.RunawayStarted.Instance);
        pool.Tell(WorkerPool.RunawayEnded.Instance);

        var status = Status(pool);
        Assert.Equal(1, status.Runaways);
        Assert.Equal(2, status.RunawaysTotal);
    }

    [Fact]
    public void Reports_its_load()
    {
        var pool = StartPool(3, new ServedQueue("high", 3), new ServedQueue("low", 3));
        Demand(Router("high"));
        Router("high").Reply(new WorkerPool.Dispatch("high", Jobs.Leases("high", "1")));
        _workers.ExpectMsg<Started>();

        var status = Status(pool);
        Assert.Equal(3, status.Capacity);
        Assert.Equal(1, status.Busy);
        Assert.Equal(1, status.BusyByQueue["high"]);
        Assert.Equal(2, status.CreditByQueue["high"]);
    }
}
