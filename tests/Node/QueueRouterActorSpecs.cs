using Akka.Actor;
using Akka.TestKit;
using ClusterJobs.Node.Ingress;
using ClusterJobs.Node.Routing;
using ClusterJobs.Node.Workers;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

public sealed class QueueRouterActorSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const string Queue = "q";
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(200);

    private readonly TestProbe _ingress;
    private readonly IActorRef _router;

    public QueueRouterActorSpecs(ITestOutputHelper output) : base(SpecConfig.Hocon, output: output)
    {
        _ingress = CreateTestProbe("ingress");
        _router = Sys.ActorOf(Props.Create(() => new QueueRouterActor(Queue, Forwarder.Props(_ingress.Ref))), "router");
    }

    /// <summary>The ingress probe got a Fetch (from the router) and answers it with these jobs.</summary>
    private QueueIngress.Fetch AnswerFetch(IReadOnlyList<JobLease> jobs, bool exhausted)
    {
        var fetch = _ingress.ExpectMsg<QueueIngress.Fetch>();
        _ingress.Reply(new QueueIngress.Taken(jobs, exhausted));
        return fetch;
    }

    private static string[] Ids(WorkerPool.Dispatch d) => d.Jobs.Select(j => j.Envelope.Id).ToArray();

    private QueueRouter.RouterStatus Status() => StatusOf(_router);

    /// <summary>A router that grants to pools that can take their own share (as it does to pools on other nodes).</summary>
    private IActorRef GrantingRouter() => Sys.ActorOf(Props.Create(() => new QueueRouterActor(Queue, Forwarder.Props(_ingress.Ref),
        null, null, new QueueRouterSettings { GrantToLocalPools = true })), "granting-router");

    private QueueRouter.RouterStatus StatusOf(IActorRef router)
    {
        var probe = CreateTestProbe();
        probe.Send(router, QueueRouter.GetStatus.Instance);
        return probe.ExpectMsg<QueueRouter.RouterStatus>();
    }

    [Fact]
    public void A_pool_that_takes_its_own_share_gets_its_credit_as_a_grant_and_the_jobs_it_took_count_as_running()
    {
        var router = GrantingRouter();
        var pool = CreateTestProbe("pool");
        pool.Send(router, new QueueRouter.Demand(5, Park: true, TakesOwn: true));

        Assert.Equal(new WorkerPool.Grant(Queue, 5), pool.ExpectMsg<WorkerPool.Grant>());
        _ingress.ExpectNoMsg(Quiet); // the router's own node takes nothing for it
        Assert.Equal(new QueueRouter.RouterStatus(Queue, Buffered: 0, Pools: 1, Credit: 0, InFlight: 0, Granted: 5), StatusOf(router));

        pool.Send(router, new QueueRouter.Took(["q:1", "q:2", "q:3", "q:4", "q:5"], Granted: 5, Exhausted: false));
        Assert.Equal(new QueueRouter.RouterStatus(Queue, Buffered: 0, Pools: 1, Credit: 0, InFlight: 5, Granted: 0), StatusOf(router));

        // Its node dies: what it took goes back to the queue at once, as jobs the router had dispatched would.
        Sys.Stop(pool.Ref);
        Assert.Equal(["q:1", "q:2", "q:3", "q:4", "q:5"], _ingress.ExpectMsg<QueueIngress.Reclaim>().JobIds.Order());
    }

    [Fact]
    public void A_pool_that_cannot_take_its_own_share_gets_jobs_not_a_grant()
    {
        var router = GrantingRouter();
        var pool = CreateTestProbe("pool");
        pool.Send(router, new QueueRouter.Demand(2, Park: true));

        _ingress.ExpectMsg<QueueIngress.Fetch>();
        _ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "1", "2"), Exhausted: false));
        Assert.Equal(["q:1", "q:2"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));
    }

    /// <summary>A node of a version before tracing cannot read a Dispatch with trace context (format 2): its jobs go without it.</summary>
    [Fact]
    public void A_pool_that_does_not_read_trace_context_gets_its_jobs_without_it_and_one_that_does_gets_it()
    {
        const string traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        JobLease Traced(string suffix) => new(Jobs.Envelope(Queue, suffix) with { TraceParent = traceParent, TraceState = "vendor=1" }, 1);
        var older = CreateTestProbe("older-pool");
        var newer = CreateTestProbe("newer-pool");

        older.Send(_router, new QueueRouter.Demand(1, Park: true));
        AnswerFetch([Traced("1")], exhausted: false);
        var toOlder = older.ExpectMsg<WorkerPool.Dispatch>().Jobs.Single().Envelope;
        newer.Send(_router, new QueueRouter.Demand(1, Park: true, ReadsTraceContext: true));
        AnswerFetch([Traced("2")], exhausted: false);
        var toNewer = newer.ExpectMsg<WorkerPool.Dispatch>().Jobs.Single().Envelope;

        Assert.Equal(("q:1", null, null), (toOlder.Id, toOlder.TraceParent, toOlder.TraceState));
        Assert.Equal(("q:2", traceParent, "vendor=1"), (toNewer.Id, toNewer.TraceParent, toNewer.TraceState));
    }

    [Fact]
    public void After_a_short_take_of_its_own_the_router_takes_for_the_pool_until_a_take_finds_a_backlog()
    {
        var router = GrantingRouter();
        var pool = CreateTestProbe("pool");
        pool.Send(router, new QueueRouter.Demand(3, Park: true, TakesOwn: true));
        pool.ExpectMsg<WorkerPool.Grant>();

        // The queue had one job for three slots: it may be running dry, so the router takes for everyone again.
        pool.Send(router, new QueueRouter.Took(["q:1"], Granted: 3, Exhausted: true));
        pool.Send(router, new QueueRouter.Demand(2, Park: true, TakesOwn: true));
        Assert.Equal(2, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        pool.ExpectNoMsg(Quiet);

        // That take got all it asked for: a backlog, so the pool takes its own share again.
        _ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "2", "3"), Exhausted: false));
        Assert.Equal(["q:2", "q:3"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));
        pool.Send(router, new QueueRouter.Demand(4, Park: true, TakesOwn: true));
        Assert.Equal(new WorkerPool.Grant(Queue, 4), pool.ExpectMsg<WorkerPool.Grant>());
    }

    [Fact]
    public void A_pool_on_the_routers_own_node_is_fed_through_the_ingress_even_when_it_could_take_its_own_share()
    {
        var pool = CreateTestProbe("pool");
        pool.Send(_router, new QueueRouter.Demand(2, Park: true, TakesOwn: true));

        Assert.Equal(2, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        pool.ExpectNoMsg(Quiet);
    }

    [Theory]
    [InlineData("paused")]
    [InlineData("capped")]
    [InlineData("rate-limited")]
    public void While_anything_limits_the_queue_no_pool_gets_a_grant_the_router_counts_every_job(string limit)
    {
        var router = GrantingRouter();
        router.Tell(limit switch
        {
            "paused" => new Queues.QueueSettingsState(Paused: true),
            "capped" => new Queues.QueueSettingsState(MaxRunning: 10),
            _ => new Queues.QueueSettingsState(RateLimitPerSecond: 1000),
        });
        Assert.False(_ingress.ExpectMsg<QueueIngress.WakeTakes>().Allowed);
        var pool = CreateTestProbe("pool");
        pool.Send(router, new QueueRouter.Demand(3, Park: true, TakesOwn: true));

        if (limit != "paused") Assert.InRange(_ingress.ExpectMsg<QueueIngress.Fetch>().Max, 1, 3);
        pool.ExpectNoMsg(Quiet);
        Assert.Equal(0, StatusOf(router).Granted);
    }

    [Fact]
    public void Slots_granted_before_a_running_cap_was_set_count_against_it()
    {
        var router = GrantingRouter();
        var taker = CreateTestProbe("taker");
        taker.Send(router, new QueueRouter.Demand(5, Park: true, TakesOwn: true));
        taker.ExpectMsg<WorkerPool.Grant>();

        router.Tell(new Queues.QueueSettingsState(MaxRunning: 6));
        _ingress.ExpectMsg<QueueIngress.WakeTakes>();
        var other = CreateTestProbe("other");
        other.Send(router, new QueueRouter.Demand(3, Park: true));

        Assert.Equal(1, _ingress.ExpectMsg<QueueIngress.Fetch>().Max); // 6 - 5 granted
    }

    [Fact]
    public void While_the_queue_is_exhausted_no_pool_gets_a_grant_until_work_may_be_there_again()
    {
        var router = GrantingRouter();
        var local = CreateTestProbe("local");
        local.Send(router, new QueueRouter.Demand(1, Park: true));
        _ingress.ExpectMsg<QueueIngress.Fetch>();
        _ingress.Reply(new QueueIngress.Taken([], Exhausted: true));
        var taker = CreateTestProbe("taker");
        taker.Send(router, new QueueRouter.Demand(3, Park: true, TakesOwn: true));
        taker.ExpectNoMsg(Quiet);
        _ingress.ExpectNoMsg(TimeSpan.Zero);

        _ingress.Send(router, QueueIngress.WorkMayBeAvailable.Instance);

        Assert.Equal(new WorkerPool.Grant(Queue, 3), taker.ExpectMsg<WorkerPool.Grant>());
        Assert.Equal(1, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
    }

    [Fact]
    public void Jobs_taken_for_a_pools_credit_before_grants_resumed_go_to_it_before_any_new_grant()
    {
        var router = GrantingRouter();
        var pool = CreateTestProbe("pool");
        pool.Send(router, new QueueRouter.Demand(1, Park: true, TakesOwn: true));
        pool.ExpectMsg<WorkerPool.Grant>();
        pool.Send(router, new QueueRouter.Took([], Granted: 1, Exhausted: true)); // the router takes for everyone now
        pool.Send(router, new QueueRouter.Demand(300, Park: true, TakesOwn: true));
        Assert.Equal(256, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        Assert.Equal(44, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);

        // The first take is full: a backlog, so grants resume, for the credit no take was asked for yet: none.
        _ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, [.. Enumerable.Range(0, 256).Select(i => $"a{i}")]), Exhausted: false));
        Assert.Equal(256, pool.ExpectMsg<WorkerPool.Dispatch>().Jobs.Count);
        Assert.Equal(new WorkerPool.Grant(Queue, 44), pool.ExpectMsg<WorkerPool.Grant>());
        // The second take, asked for that pool before grants resumed, lands in the router...
        _ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, [.. Enumerable.Range(0, 44).Select(i => $"b{i}")]), Exhausted: false));
        pool.ExpectNoMsg(Quiet);

        // ...and goes to the pool's next demand before anything is granted, instead of waiting to go back to the queue.
        pool.Send(router, new QueueRouter.Demand(50, Park: true, TakesOwn: true));
        Assert.Equal(44, pool.ExpectMsg<WorkerPool.Dispatch>().Jobs.Count);
        Assert.Equal(new WorkerPool.Grant(Queue, 6), pool.ExpectMsg<WorkerPool.Grant>());
        Assert.Equal(0, StatusOf(router).Buffered);
    }

    [Fact]
    public void Jobs_a_pool_reports_to_a_router_that_never_granted_them_still_come_back_when_that_pool_dies()
    {
        // The router moved: a take the pool made under the old router's grant is reported to the new one.
        var router = GrantingRouter();
        var pool = CreateTestProbe("pool");
        pool.Send(router, new QueueRouter.Took(["q:7"], Granted: 4, Exhausted: false));
        Assert.Equal(1, StatusOf(router).InFlight);

        Sys.Stop(pool.Ref);
        Assert.Equal(["q:7"], _ingress.ExpectMsg<QueueIngress.Reclaim>().JobIds);
    }

    [Fact]
    public void Fetches_as_many_jobs_as_pools_demand()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(3, Park: false));

        Assert.Equal(3, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
    }

    [Fact]
    public void Never_dispatches_more_jobs_to_a_pool_than_it_asked_for()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(2, Park: false));
        // The ingress hands over more than asked (it never should, but the router must still keep to the demand).
        AnswerFetch(Jobs.Leases(Queue, "a", "b", "c", "d", "e"), exhausted: false);

        var dispatch = pool.ExpectMsg<WorkerPool.Dispatch>();
        Assert.Equal(Queue, dispatch.Queue);
        Assert.Equal(["q:a", "q:b"], Ids(dispatch));
        pool.ExpectNoMsg(Quiet);

        // More demand is served from the buffer, without asking Redis again.
        pool.Send(_router, new QueueRouter.Demand(1, Park: false));
        Assert.Equal(["q:c"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));
        pool.ExpectNoMsg(Quiet);
        _ingress.ExpectNoMsg(Quiet);
        Assert.Equal(new QueueRouter.RouterStatus(Queue, Buffered: 2, Pools: 1, Credit: 0, InFlight: 3), Status());
    }

    [Fact]
    public void Each_job_goes_to_the_pool_with_the_most_free_slots()
    {
        var a = CreateTestProbe("a");
        var b = CreateTestProbe("b");
        a.Send(_router, new QueueRouter.Demand(3, Park: false));
        b.Send(_router, new QueueRouter.Demand(1, Park: false));

        // Fetch(3) went out on a's demand; b's demand arrives while it is outstanding (no second fetch yet).
        Assert.Equal(3, AnswerFetch(Jobs.Leases(Queue, "1", "2", "3"), exhausted: false).Max);

        // One job at a time to the current most credit: a(3) -> a(2) -> a(1) ties with b(1): the earlier pool wins.
        Assert.Equal(["q:1", "q:2", "q:3"], Ids(a.ExpectMsg<WorkerPool.Dispatch>()));
        a.ExpectNoMsg(Quiet);

        // b's slot is still wanted: the router fetches one more job, and b gets it.
        Assert.Equal(1, AnswerFetch(Jobs.Leases(Queue, "4"), exhausted: false).Max);
        Assert.Equal(["q:4"], Ids(b.ExpectMsg<WorkerPool.Dispatch>()));
    }

    [Fact]
    public void Load_follows_free_capacity_across_pools()
    {
        var a = CreateTestProbe("a");
        var b = CreateTestProbe("b");
        a.Send(_router, new QueueRouter.Demand(2, Park: false));
        var fetch = _ingress.ExpectMsg<QueueIngress.Fetch>();
        b.Send(_router, new QueueRouter.Demand(3, Park: false));
        Assert.Equal(2, fetch.Max);
        _ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "1", "2", "3"), Exhausted: false));

        // b(3) -> tie a(2)/b(2) goes to a -> b(2) beats a(1).
        Assert.Equal(["q:2"], Ids(a.ExpectMsg<WorkerPool.Dispatch>()));
        Assert.Equal(["q:1", "q:3"], Ids(b.ExpectMsg<WorkerPool.Dispatch>()));
        // Still 1 + 1 slots wanted.
        Assert.Equal(2, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
    }

    [Fact]
    public void Non_parked_demand_is_answered_with_Empty_when_the_queue_is_exhausted_and_parked_demand_is_not()
    {
        var parked = CreateTestProbe("parked");
        var asking = CreateTestProbe("asking");
        parked.Send(_router, new QueueRouter.Demand(2, Park: true));
        asking.Send(_router, new QueueRouter.Demand(3, Park: false));
        AnswerFetch([], exhausted: true);

        Assert.Equal(new WorkerPool.Empty(Queue, 3), asking.ExpectMsg<WorkerPool.Empty>());
        parked.ExpectNoMsg(Quiet);
        _ingress.ExpectNoMsg(Quiet); // exhausted: no fetching until the ingress says work may be there
        Assert.Equal(2, Status().Credit); // only the parked slots are still held

        // New work: the pool told Empty hears about it; the parked demand is served.
        _router.Tell(QueueIngress.WorkMayBeAvailable.Instance, _ingress.Ref);
        Assert.Equal(new WorkerPool.WorkAvailable(Queue), asking.ExpectMsg<WorkerPool.WorkAvailable>());
        Assert.Equal(2, AnswerFetch(Jobs.Leases(Queue, "x", "y"), exhausted: false).Max);
        Assert.Equal(["q:x", "q:y"], Ids(parked.ExpectMsg<WorkerPool.Dispatch>()));
        asking.ExpectNoMsg(Quiet); // WorkAvailable is said once per Empty
    }

    [Fact]
    public void Demand_arriving_while_the_queue_is_exhausted_is_answered_with_Empty_at_once()
    {
        var first = CreateTestProbe();
        first.Send(_router, new QueueRouter.Demand(1, Park: false));
        AnswerFetch([], exhausted: true);
        first.ExpectMsg<WorkerPool.Empty>();

        var second = CreateTestProbe();
        second.Send(_router, new QueueRouter.Demand(4, Park: false));
        Assert.Equal(new WorkerPool.Empty(Queue, 4), second.ExpectMsg<WorkerPool.Empty>());
        _ingress.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void Withdraw_returns_the_parked_credit()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(4, Park: true));
        AnswerFetch(Jobs.Leases(Queue, "only"), exhausted: true);
        Assert.Equal(["q:only"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));

        pool.Send(_router, QueueRouter.Withdraw.Instance);
        Assert.Equal(new WorkerPool.Withdrawn(Queue, 3), pool.ExpectMsg<WorkerPool.Withdrawn>());
        var status = Status();
        Assert.Equal(0, status.Credit);
        Assert.Equal(1, status.InFlight);

        // With no credit left, new work does not make the router fetch for this pool.
        _router.Tell(QueueIngress.WorkMayBeAvailable.Instance, _ingress.Ref);
        _ingress.ExpectNoMsg(Quiet);
        pool.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void Jobs_a_wake_took_go_to_the_parked_demand_and_the_pools_told_Empty_hear_work_is_back()
    {
        var parked = CreateTestProbe("parked");
        var asking = CreateTestProbe("asking");
        parked.Send(_router, new QueueRouter.Demand(2, Park: true));
        asking.Send(_router, new QueueRouter.Demand(3, Park: false));
        AnswerFetch([], exhausted: true);
        asking.ExpectMsg<WorkerPool.Empty>();

        _router.Tell(new QueueIngress.Taken(Jobs.Leases(Queue, "x", "y", "z"), Exhausted: false) { Woken = true }, _ingress.Ref);

        Assert.Equal(["q:x", "q:y"], Ids(parked.ExpectMsg<WorkerPool.Dispatch>()));
        Assert.Equal(new WorkerPool.WorkAvailable(Queue), asking.ExpectMsg<WorkerPool.WorkAvailable>());
        asking.Send(_router, new QueueRouter.Demand(3, Park: false));
        Assert.Equal(["q:z"], Ids(asking.ExpectMsg<WorkerPool.Dispatch>()));
    }

    [Fact]
    public void Jobs_a_wake_took_that_no_pool_wants_any_more_go_back_to_the_queue()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(2, Park: true));
        AnswerFetch([], exhausted: true);
        pool.Send(_router, QueueRouter.Withdraw.Instance);
        pool.ExpectMsg<WorkerPool.Withdrawn>();

        _router.Tell(new QueueIngress.Taken(Jobs.Leases(Queue, "late"), Exhausted: true) { Woken = true }, _ingress.Ref);

        Assert.Equal(["q:late"], _ingress.ExpectMsg<QueueIngress.Return>().JobIds);
        pool.ExpectNoMsg(Quiet);
        Assert.Equal(0, Status().Buffered);
    }

    [Fact]
    public void A_second_take_goes_out_while_the_first_is_in_flight_only_for_a_sizeable_demand()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(100, Park: true));
        Assert.Equal(100, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        var first = _ingress.LastSender;

        pool.Send(_router, new QueueRouter.Demand(5, Park: true));
        _ingress.ExpectNoMsg(Quiet); // a small ask waits for the first answer
        pool.Send(_router, new QueueRouter.Demand(60, Park: true));
        Assert.Equal(65, _ingress.ExpectMsg<QueueIngress.Fetch>().Max); // pipelined: Redis leases while the node runs
        pool.Send(_router, new QueueRouter.Demand(100, Park: true));
        _ingress.ExpectNoMsg(Quiet); // never more than two in flight

        first.Tell(new QueueIngress.Taken(Jobs.Leases(Queue, "a"), Exhausted: false), _ingress.Ref);
        Assert.Equal(["q:a"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));
        // 265 credit - 1 dispatched - 65 still asked for = 199 more
        Assert.Equal(199, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
    }

    [Fact]
    public void A_demand_larger_than_a_batch_goes_out_as_two_takes_at_once()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(600, Park: true));

        Assert.Equal(QueueIngressSettings.DefaultMaxBatch, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        Assert.Equal(QueueIngressSettings.DefaultMaxBatch, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        _ingress.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void Withdraw_from_an_unknown_pool_returns_nothing()
    {
        var stranger = CreateTestProbe();
        stranger.Send(_router, QueueRouter.Withdraw.Instance);
        Assert.Equal(new WorkerPool.Withdrawn(Queue, 0), stranger.ExpectMsg<WorkerPool.Withdrawn>());
    }

    [Fact]
    public void Completed_jobs_are_no_longer_counted_as_running_at_their_pool()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(2, Park: true));
        AnswerFetch(Jobs.Leases(Queue, "a", "b"), exhausted: false);
        pool.ExpectMsg<WorkerPool.Dispatch>();
        Assert.Equal(2, Status().InFlight);

        pool.Send(_router, new QueueRouter.JobsCompleted(["q:a", "q:b"]));

        Assert.Equal(0, Status().InFlight);
        Sys.Stop(pool.Ref);
        AwaitAssert(() => Assert.Equal(0, Status().Pools));
        _ingress.ExpectNoMsg(Quiet); // nothing to reclaim: both outcomes are recorded
    }

    [Fact]
    public void On_hand_over_the_buffered_jobs_go_back_to_the_queue_and_the_router_stops()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(1, Park: true));
        AnswerFetch(Jobs.Leases(Queue, "run", "spare1", "spare2"), exhausted: false);
        pool.ExpectMsg<WorkerPool.Dispatch>();
        Watch(_router);

        _router.Tell(QueueRouter.HandOver.Instance);

        Assert.Equal(["q:spare1", "q:spare2"], _ingress.ExpectMsg<QueueIngress.Return>().JobIds);
        ExpectTerminated(_router);
    }

    [Fact]
    public void The_running_jobs_of_a_pool_that_dies_go_back_to_the_ingress_as_Reclaim()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(3, Park: true));
        AnswerFetch(Jobs.Leases(Queue, "a", "b", "c"), exhausted: false);
        pool.ExpectMsg<WorkerPool.Dispatch>();
        pool.Send(_router, new QueueRouter.JobsCompleted(["q:b"]));

        Sys.Stop(pool.Ref);

        var reclaim = _ingress.ExpectMsg<QueueIngress.Reclaim>();
        Assert.Equal(["q:a", "q:c"], reclaim.JobIds.Order().ToArray());
        _ingress.ExpectNoMsg(Quiet);
        Assert.Equal(new QueueRouter.RouterStatus(Queue, 0, Pools: 0, Credit: 0, InFlight: 0), Status());
    }

    [Fact]
    public void A_pool_that_dies_with_nothing_running_reclaims_nothing_and_its_credit_is_forgotten()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(2, Park: true));
        AnswerFetch([], exhausted: true);

        Sys.Stop(pool.Ref);
        AwaitAssert(() => Assert.Equal(0, Status().Pools));
        _ingress.ExpectNoMsg(Quiet);

        // Work that arrives later is not fetched for the dead pool.
        _router.Tell(QueueIngress.WorkMayBeAvailable.Instance, _ingress.Ref);
        _ingress.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void Jobs_buffered_when_a_pool_withdrew_go_to_the_next_demand()
    {
        var pool = CreateTestProbe();
        pool.Send(_router, new QueueRouter.Demand(2, Park: true));
        var fetch = _ingress.ExpectMsg<QueueIngress.Fetch>();
        pool.Send(_router, QueueRouter.Withdraw.Instance);
        Assert.Equal(2, pool.ExpectMsg<WorkerPool.Withdrawn>().Slots);
        _ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "late1", "late2"), Exhausted: false));
        pool.ExpectNoMsg(Quiet);
        Assert.Equal(2, fetch.Max);
        Assert.Equal(2, Status().Buffered);

        var other = CreateTestProbe();
        other.Send(_router, new QueueRouter.Demand(5, Park: false));
        Assert.Equal(["q:late1", "q:late2"], Ids(other.ExpectMsg<WorkerPool.Dispatch>()));
        Assert.Equal(3, _ingress.ExpectMsg<QueueIngress.Fetch>().Max);
    }

    private (IActorRef Router, TestProbe Ingress) RouterWith(QueueRouterSettings routing)
    {
        var ingress = CreateTestProbe();
        return (Sys.ActorOf(Props.Create(() => new QueueRouterActor(Queue, Forwarder.Props(ingress.Ref), null, null, routing))), ingress);
    }

    [Fact]
    public void While_jobs_flow_it_leases_ahead_as_many_as_went_to_pools_lately_so_a_freed_slot_gets_one_without_a_round_trip()
    {
        var (router, ingress) = RouterWith(new QueueRouterSettings { ReadAhead = 3, BusyWindow = TimeSpan.FromSeconds(30) });
        var pool = CreateTestProbe();
        pool.Send(router, new QueueRouter.Demand(2, Park: true));
        Assert.Equal(2, ingress.ExpectMsg<QueueIngress.Fetch>().Max); // nothing went out yet: only the demand
        ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "a", "b"), Exhausted: false));
        Assert.Equal(["q:a", "q:b"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));

        // Two jobs went out just now: two more are leased ahead, with no demand for them.
        Assert.Equal(2, ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "c", "d"), Exhausted: false));
        pool.ExpectNoMsg(Quiet);

        // Freed slots get them at once; then it reads ahead again, at most 3.
        pool.Send(router, new QueueRouter.Demand(2, Park: true));
        Assert.Equal(["q:c", "q:d"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));
        Assert.Equal(3, ingress.ExpectMsg<QueueIngress.Fetch>().Max);
    }

    [Fact]
    public void A_queue_whose_jobs_go_out_slowly_is_read_ahead_only_by_what_went_out_in_the_last_window()
    {
        var (router, ingress) = RouterWith(new QueueRouterSettings { ReadAhead = 100, BusyWindow = TimeSpan.FromMilliseconds(100) });
        var pool = CreateTestProbe();
        pool.Send(router, new QueueRouter.Demand(1, Park: true));
        Assert.Equal(1, ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "a"), Exhausted: false));
        pool.ExpectMsg<WorkerPool.Dispatch>();
        Assert.Equal(1, ingress.ExpectMsg<QueueIngress.Fetch>().Max); // one went out: one ahead, not 100
        ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "b"), Exhausted: false));

        pool.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // the window passes with nothing going out
        pool.Send(router, new QueueRouter.Demand(3, Park: true));
        Assert.Equal(["q:b"], Ids(pool.ExpectMsg<WorkerPool.Dispatch>()));
        // 2 slots still free + 1 ahead (one job went out in this window)
        Assert.Equal(3, ingress.ExpectMsg<QueueIngress.Fetch>().Max);
        ingress.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void Leased_jobs_no_pool_takes_within_the_hold_limit_go_back_to_the_queue_before_their_lease_can_expire()
    {
        var (router, ingress) = RouterWith(new QueueRouterSettings { MaxHold = TimeSpan.FromMilliseconds(300) });
        var pool = CreateTestProbe();
        pool.Send(router, new QueueRouter.Demand(1, Park: true));
        ingress.ExpectMsg<QueueIngress.Fetch>();
        ingress.Reply(new QueueIngress.Taken(Jobs.Leases(Queue, "run", "spare"), Exhausted: false));
        pool.ExpectMsg<WorkerPool.Dispatch>();

        Assert.Equal(["q:spare"], ingress.ExpectMsg<QueueIngress.Return>(TimeSpan.FromSeconds(3)).JobIds);
        var probe = CreateTestProbe();
        probe.Send(router, QueueRouter.GetStatus.Instance);
        Assert.Equal(0, probe.ExpectMsg<QueueRouter.RouterStatus>().Buffered);
    }

    [Fact]
    public void Settings_that_could_not_be_recovered_are_recovered_again_and_until_then_the_queue_starts_nothing()
    {
        // Akka stops a persistent actor whose recovery failed: Redis was down as the router started (after its node
        // died, or at a node's start). Its first incarnation here stops so; the second recovers.
        var incarnations = new Incarnations();
        var ingress = CreateTestProbe();
        var router = Sys.ActorOf(Props.Create(() => new QueueRouterActor(Queue, Forwarder.Props(ingress.Ref),
            Props.Create(() => new FlakySettingsActor(incarnations)), null, null)), "flaky-settings-router");
        var pool = CreateTestProbe();
        pool.Send(router, new QueueRouter.Demand(2, Park: true));
        var control = CreateTestProbe();

        ingress.ExpectNoMsg(Quiet); // stopped: no settings yet, so nothing may start (the queue may be paused)
        control.Send(router, Queues.QueueSettings.Get.Instance);
        Assert.Contains("settings", control.ExpectMsg<Status.Failure>().Cause.Message);

        Assert.Equal(2, ingress.ExpectMsg<QueueIngress.Fetch>(TimeSpan.FromSeconds(5)).Max);
        Assert.Equal(2, incarnations.Count);
        control.Send(router, Queues.QueueSettings.Get.Instance);
        Assert.Equal(Queues.QueueSettingsState.Default, control.ExpectMsg<Queues.QueueSettingsState>());
    }

    private sealed class Incarnations { public int Count; }

    /// <summary>Stands in for <see cref="Queues.QueueSettingsActor"/>: its first incarnation stops as one whose recovery failed.</summary>
    private sealed class FlakySettingsActor : ReceiveActor
    {
        public FlakySettingsActor(Incarnations incarnations)
        {
            if (Interlocked.Increment(ref incarnations.Count) == 1) Context.Stop(Self);
            else Context.Parent.Tell(Queues.QueueSettingsState.Default);
            Receive<Queues.QueueSettings.Get>(_ => Sender.Tell(Queues.QueueSettingsState.Default));
        }
    }
}
