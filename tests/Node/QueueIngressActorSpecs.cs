using Akka.Actor;
using Akka.TestKit;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Ingress;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

[Collection(BrokerCollection.Name)]
public sealed class QueueIngressActorSpecs(BrokerFixture broker, ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(SpecConfig.Hocon, output: output)
{
    private const string Queue = "work";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    /// <summary>No poll or expiry sweep unless a spec asks: what the ingress does, it does because of the spec.</summary>
    private static readonly QueueIngressSettings Quiet = new()
    {
        PollInterval = TimeSpan.FromHours(1),
        ReclaimInterval = TimeSpan.FromHours(1),
    };

    private (IActorRef Ingress, TestProbe Router) StartIngress(RedisSpecEnv env, QueueIngressSettings? settings = null,
        BrokerSettings? brokerSettings = null, string routerName = "router")
    {
        brokerSettings ??= new BrokerSettings();
        var router = CreateTestProbe(routerName);
        var props = QueueIngressActorExtensions.IngressProps(env.Redis, env.Broker(Queue, brokerSettings), brokerSettings, settings ?? Quiet);
        return (Sys.ActorOf(ForwardingParent.Props(props, router.Ref)), router);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Fetch_leases_the_ready_jobs_and_says_exhausted_when_there_were_fewer_than_asked(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = new List<string>();
        // Own id suffixes: jobs enqueued in the same millisecond are ordered by id, and v7 GUIDs are not monotonic within one.
        for (var i = 0; i < 3; i++)
            ids.Add(await env.EnqueueAsync(Queue, args: new { text = $"job {i}" }, options: new EnqueueOptions { JobIdSuffix = $"job-{i}" }));
        var (ingress, router) = StartIngress(env);

        ingress.Tell(new QueueIngress.Fetch(10));

        var taken = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.True(taken.Exhausted);
        Assert.Equal(ids, taken.Jobs.Select(j => j.Envelope.Id));
        Assert.All(taken.Jobs, j =>
        {
            Assert.Equal(1, j.Attempt);
            Assert.Equal(1, j.Envelope.Attempt);
            Assert.Equal("echo", j.Envelope.Task);
            Assert.Equal(Queue, j.Envelope.Queue);
        });
        Assert.Equal("job 1", taken.Jobs[1].Envelope.Args.GetProperty("text").GetString());
        foreach (var id in ids) Assert.Equal("running", await env.StateAsync(id));
        Assert.Equal(3, await env.Db.SortedSetLengthAsync(env.Keys.Queue(Queue).Leased));
        Assert.Equal(0, await env.Db.SortedSetLengthAsync(env.Keys.Queue(Queue).Ready));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Fetch_that_gets_all_it_asked_for_is_not_exhausted(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add(await env.EnqueueAsync(Queue, options: new EnqueueOptions { JobIdSuffix = $"job-{i}" }));
        var (ingress, router) = StartIngress(env);

        ingress.Tell(new QueueIngress.Fetch(2));
        var first = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.False(first.Exhausted);
        Assert.Equal(ids.Take(2), first.Jobs.Select(j => j.Envelope.Id));

        ingress.Tell(new QueueIngress.Fetch(2));
        var second = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.True(second.Exhausted);
        Assert.Equal(ids.Skip(2), second.Jobs.Select(j => j.Envelope.Id));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_take_short_of_jobs_only_because_it_ended_some_is_not_exhausted(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        // First in the queue: an id with no job record (the Take script dead-letters it) and a malformed envelope.
        await env.QueueRawAsync(Queue, Queue + ":no-record", envelope: null);
        await env.QueueRawAsync(Queue, Queue + ":bad", "{not json", score: 1);
        var good = await env.EnqueueAsync(Queue, options: new EnqueueOptions { JobIdSuffix = "good" });
        var next = await env.EnqueueAsync(Queue, options: new EnqueueOptions { JobIdSuffix = "next" });
        var (ingress, router) = StartIngress(env);

        ingress.Tell(new QueueIngress.Fetch(3));

        var first = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.Equal([good], first.Jobs.Select(j => j.Envelope.Id));
        Assert.False(first.Exhausted); // three ids left the queue for three asked: there may be more
        ingress.Tell(new QueueIngress.Fetch(3));
        var second = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.Equal([next], second.Jobs.Select(j => j.Envelope.Id));
        Assert.True(second.Exhausted);
        Assert.Equal("dead_lettered", await env.StateAsync(Queue + ":no-record"));
        await RedisSpecEnv.EventuallyAsync(async () => await env.StateAsync(Queue + ":bad") == "dead_lettered", "the bad job is dead-lettered");
        // Both count in the queue's totals (the operator API's), the one the Take script ended as well.
        await RedisSpecEnv.EventuallyAsync(async () => (long)await env.Db.HashGetAsync(env.Keys.Queue(Queue).Stats, "dead_lettered") == 2,
            "both dead letters are counted");
    }

    [Theory]
    [InlineData(BrokerKind.Redis, "not JSON")]
    [InlineData(BrokerKind.Garnet, "not JSON")]
    [InlineData(BrokerKind.Redis, "not UTF-8")]
    [InlineData(BrokerKind.Garnet, "not UTF-8")]
    public async Task A_malformed_envelope_is_dead_lettered_while_its_neighbour_is_delivered(BrokerKind kind, string flaw)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var q = env.Keys.Queue(Queue);
        const string bad = Queue + ":bad";
        byte[] envelope = flaw == "not JSON" ? "{not json"u8.ToArray() : [(byte)'{', 0xE9, 0xFF, (byte)'}'];
        await env.QueueRawAsync(Queue, bad, envelope);
        var good = await env.EnqueueAsync(Queue);
        var (ingress, router) = StartIngress(env);

        ingress.Tell(new QueueIngress.Fetch(10));

        var taken = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.Equal([good], taken.Jobs.Select(j => j.Envelope.Id));
        Assert.True(taken.Exhausted);
        await RedisSpecEnv.EventuallyAsync(async () => await env.StateAsync(bad) == "dead_lettered", "the bad job is dead-lettered");
        var info = await env.Client.GetAsync(bad);
        Assert.Equal(JobState.DeadLettered, info!.State);
        Assert.Equal("MalformedEnvelope", info.Error!.Type);
        Assert.Contains("not valid job JSON", info.Error.Message);
        Assert.Equal(1, info.Error.Attempt);
        Assert.Contains(bad, (await env.Db.ListRangeAsync(q.Dead)).Select(v => v.ToString()));
        Assert.Null(await env.Db.SortedSetScoreAsync(q.Leased, bad));
        Assert.Equal("running", await env.StateAsync(good));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task An_envelope_that_names_another_queue_is_dead_lettered_saying_so(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        const string id = Queue + ":elsewhere";
        var envelope = ProtocolJson.Serialize(new JobEnvelope { Id = id, Task = "echo", Queue = "other", Args = Jobs.Json("{}") });
        await env.QueueRawAsync(Queue, id, envelope);
        var (ingress, router) = StartIngress(env);

        ingress.Tell(new QueueIngress.Fetch(10));

        Assert.Empty((await router.ExpectMsgAsync<QueueIngress.Taken>(Wait)).Jobs);
        await RedisSpecEnv.EventuallyAsync(async () => await env.StateAsync(id) == "dead_lettered", "the job is dead-lettered");
        var error = (await env.Client.GetAsync(id))!.Error!;
        Assert.Equal("MalformedEnvelope", error.Type);
        Assert.Contains("'other'", error.Message);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task An_envelope_over_the_payload_limit_is_dead_lettered_unread(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var big = await env.EnqueueAsync(Queue, args: new { text = new string('x', 2_000) });
        var small = await env.EnqueueAsync(Queue);
        var (ingress, router) = StartIngress(env, Quiet with { MaxPayloadBytes = 1_000 });

        ingress.Tell(new QueueIngress.Fetch(10));

        Assert.Equal([small], (await router.ExpectMsgAsync<QueueIngress.Taken>(Wait)).Jobs.Select(j => j.Envelope.Id));
        await RedisSpecEnv.EventuallyAsync(async () => await env.StateAsync(big) == "dead_lettered", "the big job is dead-lettered");
        var error = (await env.Client.GetAsync(big))!.Error!;
        Assert.Equal("PayloadTooLarge", error.Type);
        Assert.Contains("1000 bytes", error.Message);
    }

    /// <summary>
    /// Exposes a bug: "args" is not required in an envelope and the ingress delivers a job without it, but a Dispatch
    /// carrying that job cannot be serialized (an undefined JsonElement), so it can never reach a pool on another node.
    /// </summary>
    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Every_job_the_ingress_delivers_can_be_dispatched_to_a_pool_on_another_node(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        const string id = Queue + ":noargs";
        await env.QueueRawAsync(Queue, id, $$"""{"v":1,"id":"{{id}}","task":"echo","queue":"{{Queue}}"}""");
        var (ingress, router) = StartIngress(env);

        ingress.Tell(new QueueIngress.Fetch(10));
        var taken = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);

        if (taken.Jobs.Count == 0) return; // rejected as malformed: fine too
        var dispatch = new WorkerPool.Dispatch(Queue, taken.Jobs);
        var serializer = Sys.Serialization.FindSerializerFor(dispatch);
        var bytes = serializer.ToBinary(dispatch);
        var back = (WorkerPool.Dispatch)Sys.Serialization.Deserialize(bytes, serializer.Identifier,
            Akka.Serialization.Serialization.ManifestFor(serializer, dispatch));
        Assert.Equal(id, back.Jobs.Single().Envelope.Id);
    }

    /// <summary>An ingress whose first take, for 10 jobs, found the queue empty: the router's 10 still stand.</summary>
    private async Task<(IActorRef Ingress, TestProbe Router)> StartOnAnEmptyQueueAsync(RedisSpecEnv env, bool wakeTakes = true,
        string routerName = "router")
    {
        var (ingress, router) = StartIngress(env, routerName: routerName);
        if (!wakeTakes) ingress.Tell(new QueueIngress.WakeTakes(false));
        ingress.Tell(new QueueIngress.Fetch(10));
        var taken = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.Empty(taken.Jobs);
        Assert.True(taken.Exhausted);
        Assert.False(taken.Woken);
        return (ingress, router);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_job_enqueued_after_a_short_take_is_taken_at_once_for_what_the_router_still_wants(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var (_, router) = await StartOnAnEmptyQueueAsync(env);
        await router.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));

        var id = await env.EnqueueAsync(Queue);

        // No round trip through the router: the wake itself leases the job, up to the 10 the router asked for.
        var woken = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.True(woken.Woken);
        Assert.Equal([id], woken.Jobs.Select(j => j.Envelope.Id));
        Assert.Equal("running", await env.StateAsync(id));
    }

    [Fact]
    public async Task An_ingress_that_stops_leaves_the_wake_messages_of_another_on_the_same_connection_alone()
    {
        // Two on one connection: an ActorSystem per node in one process (a host's tests), or a successor started before
        // its predecessor's stop has run. Each unsubscribes its own handler, not the channel's.
        await using var env = await RedisSpecEnv.CreateAsync(broker.RealRedisUrl);
        var (stopping, _) = await StartOnAnEmptyQueueAsync(env, routerName: "router-of-the-one-stopping");
        var (_, router) = await StartOnAnEmptyQueueAsync(env);
        await WatchAsync(stopping, () => Sys.Stop(stopping));

        var id = await env.EnqueueAsync(Queue);

        Assert.Equal([id], (await router.ExpectMsgAsync<QueueIngress.Taken>(Wait)).Jobs.Select(j => j.Envelope.Id)); // woken, its poll an hour away
    }

    [Fact]
    public async Task An_ingress_stops_at_once_while_Redis_hangs()
    {
        // Its stop unsubscribes without waiting for Redis's answer: a plain call held the actor's thread for the whole
        // sync timeout (5 s), each queue's in turn, in a shutdown during an outage.
        await using var redis = await RedisServer.StartBinaryAsync(port: RedisServer.PortNoOneElseIsGiven());
        await using var env = await RedisSpecEnv.CreateAsync(redis.Url);
        var (ingress, _) = await StartOnAnEmptyQueueAsync(env);
        Signal("STOP", redis.ProcessId!.Value);
        try
        {
            var stopped = System.Diagnostics.Stopwatch.StartNew();
            await WatchAsync(ingress, () => Sys.Stop(ingress));
            Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(2.5), $"the stop took {stopped.Elapsed}");
        }
        finally
        {
            Signal("CONT", redis.ProcessId!.Value);
        }

        static void Signal(string signal, int pid)
        {
            using var kill = System.Diagnostics.Process.Start("kill", $"-{signal} {pid}")!;
            kill.WaitForExit();
        }
    }

    private async Task WatchAsync(IActorRef actor, Action stop)
    {
        var watcher = CreateTestProbe();
        watcher.Watch(actor);
        stop();
        await watcher.ExpectTerminatedAsync(actor, Wait);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_queue_under_runtime_limits_only_says_work_may_be_available_and_lets_the_router_decide(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var (_, router) = await StartOnAnEmptyQueueAsync(env, wakeTakes: false); // paused, capped or rate-limited

        var id = await env.EnqueueAsync(Queue);

        await router.ExpectMsgAsync<QueueIngress.WorkMayBeAvailable>(Wait);
        await router.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
        Assert.Equal("queued", await env.StateAsync(id));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_new_fetch_replaces_what_the_router_wanted_before(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var (ingress, router) = await StartOnAnEmptyQueueAsync(env);
        ingress.Tell(new QueueIngress.Fetch(2));
        Assert.True((await router.ExpectMsgAsync<QueueIngress.Taken>(Wait)).Exhausted);

        for (var i = 0; i < 5; i++) await env.EnqueueAsync(Queue, options: new EnqueueOptions { JobIdSuffix = $"job-{i}" });

        var woken = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.True(woken.Woken);
        var taken = woken.Jobs.Count + (await TakenWhileWakesArriveAsync(router)).Sum(t => t.Jobs.Count);
        Assert.InRange(taken, 1, 2); // the 2 of the last Fetch, not the 10 of the first
        Assert.Equal(5 - taken, await env.Db.SortedSetLengthAsync(env.Keys.Queue(Queue).Ready));
    }

    /// <summary>Each enqueue publishes a wake: later wakes may take what an earlier one left, never more than wanted
    /// (a wake during a take makes it report not exhausted, and then the router asks for more itself).</summary>
    private static async Task<List<QueueIngress.Taken>> TakenWhileWakesArriveAsync(TestProbe router)
    {
        var more = new List<QueueIngress.Taken>();
        while (await router.ReceiveOneAsync(TimeSpan.FromMilliseconds(300)) is QueueIngress.Taken t) more.Add(t);
        return more;
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task An_exhausted_queue_looks_again_at_its_poll_and_takes_delayed_jobs_once_due(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var id = await env.EnqueueAsync(Queue, options: new EnqueueOptions { Countdown = TimeSpan.FromMilliseconds(400) });
        var (ingress, router) = StartIngress(env, Quiet with { PollInterval = TimeSpan.FromMilliseconds(100) });

        ingress.Tell(new QueueIngress.Fetch(10));
        Assert.Empty((await router.ExpectMsgAsync<QueueIngress.Taken>(Wait)).Jobs);

        // No wake for delayed jobs: the poll's takes find the job once it is due.
        var found = await router.FishForMessageAsync<QueueIngress.Taken>(t => t.Jobs.Count > 0, Wait);
        Assert.True(found.Woken);
        Assert.Equal([id], found.Jobs.Select(j => j.Envelope.Id));
        Assert.Equal(1, found.Jobs[0].Attempt);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Reclaimed_jobs_go_back_to_the_queue_without_using_an_attempt(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var id = await env.EnqueueAsync(Queue);
        var (ingress, router) = StartIngress(env);
        ingress.Tell(new QueueIngress.Fetch(1)); // all it asked for: nothing standing, so the reclaim's wake takes nothing
        await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);

        ingress.Tell(new QueueIngress.Reclaim([id]));

        await RedisSpecEnv.EventuallyAsync(async () => await env.StateAsync(id) == "queued", "the job is back in the queue");
        var info = (await env.Client.GetAsync(id))!;
        Assert.Equal(0, info.Attempts);
        Assert.Equal("1", (string?)await env.Db.HashGetAsync(env.Keys.Queue(Queue).Job(id), JobHashFields.Lost));
        Assert.Null(await env.Db.SortedSetScoreAsync(env.Keys.Queue(Queue).Leased, id));

        ingress.Tell(new QueueIngress.Fetch(10));
        var again = await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        Assert.Equal([id], again.Jobs.Select(j => j.Envelope.Id));
        Assert.Equal(1, again.Jobs[0].Attempt);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_job_lost_once_too_often_is_dead_lettered_and_counted_in_the_queues_totals(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var id = await env.EnqueueAsync(Queue);
        var (ingress, router) = StartIngress(env);
        ingress.Tell(new QueueIngress.Fetch(1));
        await router.ExpectMsgAsync<QueueIngress.Taken>(Wait);
        // Lost four times before (the default allows five): this loss is the last.
        await env.Db.HashSetAsync(env.Keys.Queue(Queue).Job(id), JobHashFields.Lost, 4);

        ingress.Tell(new QueueIngress.Reclaim([id]));

        await RedisSpecEnv.EventuallyAsync(async () => await env.StateAsync(id) == "dead_lettered", "the job is dead-lettered");
        Assert.Equal(1, (long)await env.Db.HashGetAsync(env.Keys.Queue(Queue).Stats, "dead_lettered"));
        Assert.Equal(id, (string?)await env.Db.ListGetByIndexAsync(env.Keys.Queue(Queue).Dead, -1));
    }
}
