using System.Text.Json;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>A whole node in this process on a real broker: one job's path from producer to result, and bad input.</summary>
[Collection(BrokerCollection.Name)]
public sealed class NodeSpecs(BrokerFixture brokers)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_node_that_starts_and_runs_a_job_with_nothing_wrong_logs_no_warning()
    {
        // Operators read warnings as trouble: a healthy start must not cry wolf (a singleton proxy's false "failed to
        // find" at start, akkadotnet/akka.net#8568, did until cluster.hocon turned its check off).
        var logs = new RecordedLogs();
        // The node's own check of its routers (through the real proxy) runs two rounds meanwhile.
        var lookupWarningAfter = TimeSpan.FromSeconds(2);
        await using (var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o => o.RouterLookupWarningAfter = lookupWarningAfter, logs: logs))
        {
            Assert.Equal(JobState.Succeeded, (await node.Client.WaitAsync(await node.Client.EnqueueAsync("add", new[] { 1, 2 }), Wait)).State);
            await Task.Delay(lookupWarningAfter * 2.2);
        }

        Assert.True(logs.Lines.Count == 0, string.Join("\n", logs.Lines));
    }

    [Fact]
    public async Task A_node_that_cannot_reach_its_queues_router_says_so_and_what_to_check()
    {
        // Alone, with two members required: the cluster never comes Up, so no router starts anywhere.
        var logs = new RecordedLogs();
        await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o =>
        {
            o.Cluster = o.Cluster with { MinMembers = 2 };
            o.RouterLookupWarningAfter = TimeSpan.FromMilliseconds(500);
        }, logs: logs);

        await ClusterRun.WaitUntilAsync(() => Task.FromResult(logs.Lines.Any(l =>
                l.Contains("Queue default: its router has not answered this node") && l.Contains("CLUSTER_MIN_MEMBERS"))),
            TimeSpan.FromSeconds(10), "the node warns that the default queue's router has not answered, and what to check");
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_job_runs_once_and_its_result_reaches_the_waiting_producer(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var id = await node.Client.EnqueueAsync("send_email", new { recipient = "ada@example.com" });

        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal("sent to ada@example.com", job.ResultAs<string>());
        Assert.Equal(1, job.Attempts);
        Assert.NotNull(job.StartedAt);
        Assert.True(job.FinishedAt >= job.StartedAt);
        Assert.Contains("127.0.0.1", job.Node);
        var ttl = await node.Redis.GetDatabase().KeyTimeToLiveAsync(node.Keys.ForJob(id).Job(id));
        Assert.InRange(ttl!.Value, TimeSpan.FromHours(23), TimeSpan.FromHours(24));
        Assert.Equal(0, await node.Redis.GetDatabase().SortedSetLengthAsync(node.Keys.Queue("default").Leased));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Many_jobs_all_succeed_with_positional_and_named_arguments(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var ids = new List<string>();
        for (var i = 0; i < 200; i++)
            ids.Add(await node.Client.EnqueueAsync("add", i % 2 == 0 ? new object[] { i, 1 } : new { a = i, b = 1 }));

        var results = await Task.WhenAll(ids.Select(id => node.Client.WaitAsync(id, Wait)));

        Assert.All(results, r => Assert.Equal(JobState.Succeeded, r.State));
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), results.Select(r => r.ResultAs<long>()));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_delayed_job_does_not_start_before_its_time(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var enqueued = DateTimeOffset.UtcNow;
        var id = await node.Client.EnqueueAsync("add", new[] { 1, 1 }, new EnqueueOptions { Countdown = TimeSpan.FromSeconds(1.5) });

        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.True(job.StartedAt >= enqueued.AddSeconds(1.5).AddMilliseconds(-5), $"started {job.StartedAt:O}, enqueued {enqueued:O}");
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_failing_job_is_retried_with_backoff_and_then_succeeds(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var id = await node.Client.EnqueueAsync("fail", new { message = "flaky", succeedOnAttempt = 3 },
            new EnqueueOptions { MaxAttempts = 3, Backoff = TimeSpan.FromMilliseconds(200) });

        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(3, job.Attempts);
        Assert.Equal("succeeded on attempt 3", job.ResultAs<string>());
        Assert.Equal("flaky", job.Error!.Message); // the last failed attempt's error stays visible
        Assert.Equal(2, job.Error.Attempt);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_job_out_of_attempts_is_dead_lettered_with_its_error(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var id = await node.Client.EnqueueAsync("fail", new { message = "always" }, new EnqueueOptions { MaxAttempts = 2, Backoff = TimeSpan.FromMilliseconds(50) });

        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal(JobState.DeadLettered, job.State);
        Assert.Equal(2, job.Attempts);
        Assert.Equal("System.InvalidOperationException", job.Error!.Type);
        Assert.Equal("always", job.Error.Message);
        Assert.Contains(nameof(Node.Demo.FailTask), job.Error.StackTrace);
        Assert.Contains(id, (await node.Redis.GetDatabase().ListRangeAsync(node.Keys.Queue("default").Dead)).Select(v => (string)v!));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Bad_input_gets_a_clear_error_on_its_job_and_neighbour_jobs_are_untouched(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, o => o.MaxPayloadBytes = 4096);
        var client = node.Client;
        var db = node.Redis.GetDatabase();
        var q = node.Keys.Queue("default");
        var before = await client.EnqueueAsync("add", new[] { 1, 2 });

        var unknown = await client.EnqueueAsync("no_such_task", new[] { 1 });
        var wrongTypes = await client.EnqueueAsync("add", new { a = "one", b = 2 });
        var extraArgs = await client.EnqueueAsync("add", new[] { 1, 2, 3 });
        var malformed = await WriteRaw(db, q, "default:malformed-1", "{\"v\":1,\"id\":\"default:malformed-1\", not json");
        var oversized = await WriteRaw(db, q, "default:huge-1", ProtocolJson.Serialize(new JobEnvelope
        {
            Id = "default:huge-1", Task = "add", Queue = "default", Args = JsonSerializer.SerializeToElement(new { blob = new string('x', 8000) }),
        }));
        var badOption = await WriteRaw(db, q, "default:bad-option-1", """{"v":1,"id":"default:bad-option-1","task":"add","queue":"default","args":[1,2],"hard_timeout_ms":-5}""");
        // 60 days: past what a timer holds (49 days), which crashed the worker at every attempt before
        var monthsLong = await WriteRaw(db, q, "default:bad-option-2", """{"v":1,"id":"default:bad-option-2","task":"add","queue":"default","args":[1,2],"soft_timeout_ms":5184000000}""");
        var orphan = "default:orphan-1";
        await db.SortedSetAddAsync(q.Ready, orphan, 0);
        var after = await client.EnqueueAsync("add", new[] { 3, 4 });

        Assert.Equal(3, (await client.WaitAsync(before, Wait)).ResultAs<long>());
        Assert.Equal(7, (await client.WaitAsync(after, Wait)).ResultAs<long>());
        await AssertDeadLettered(client, unknown, "Tasks.UnknownTaskException", "No handler for task 'no_such_task'");
        await AssertDeadLettered(client, wrongTypes, "Tasks.JobArgumentException", "do not bind to AddArgs");
        await AssertDeadLettered(client, extraArgs, "Tasks.JobArgumentException", "takes 2 positional argument(s)");
        await AssertDeadLettered(client, malformed, "MalformedEnvelope", "not valid job JSON");
        await AssertDeadLettered(client, oversized, "PayloadTooLarge", "over this node's limit of 4096 bytes");
        await AssertDeadLettered(client, orphan, "MissingJobRecord", "no job hash");
        await AssertDeadLettered(client, badOption, "MalformedEnvelope", "hard_timeout_ms must be from 1 to 2592000000 (30 days), got null and -5");
        await AssertDeadLettered(client, monthsLong, "MalformedEnvelope", "must be from 1 to 2592000000 (30 days), got 5184000000 and null");
        Assert.Equal(1, (await client.GetAsync(wrongTypes))!.Attempts); // binding errors are never retried
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_node_serving_two_queues_drains_the_first_before_the_second(BrokerKind kind)
    {
        var order = new List<string>();
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, o =>
        {
            o.Queues = ClusterJobs.Node.Hosting.ClusterJobsOptions.ParseQueues("high_priority,low_priority");
            o.Concurrency = 1;
        }, tasks => tasks.AddTask<RecordingTask>("record"));
        var recorder = RecordingTask.For(_prefix);
        // Fill both queues while the only slot is busy, so the order afterwards is the node's choice. The blocker runs
        // until it is cancelled, however long the enqueues take on a loaded machine.
        var blocker = await node.Client.EnqueueAsync("sleep", new { ms = 60_000 }, new EnqueueOptions { Queue = "low_priority" });
        await WaitForState(node.Client, blocker, JobState.Running);
        var low = new List<string>();
        var high = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            low.Add(await node.Client.EnqueueAsync("record", new { label = $"low-{i}", prefix = _prefix }, new EnqueueOptions { Queue = "low_priority" }));
            high.Add(await node.Client.EnqueueAsync("record", new { label = $"high-{i}", prefix = _prefix }, new EnqueueOptions { Queue = "high_priority" }));
        }
        // A router that found its queue empty answers the next free slot "empty" from memory until its queue's wake
        // message, or at the latest its poll (every 100 ms here), tells it of new jobs; the cancel travels on another
        // channel and may overtake the high queue's wakes (seen once in a CI rehearsal: low-0 ran first). Five polls.
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.True(await node.Client.CancelAsync(blocker));

        await Task.WhenAll(low.Concat(high).Select(id => node.Client.WaitAsync(id, Wait)));

        Assert.Equal(["high-0", "high-1", "high-2", "high-3", "high-4", "low-0", "low-1", "low-2", "low-3", "low-4"], recorder.ToArray());
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Within_a_queue_a_higher_priority_job_runs_first(BrokerKind kind)
    {
        // No read-ahead: a router that just dispatched the blocker may lease p0 ahead of demand before p9 is queued,
        // and a job held ahead goes out first (as a prefetched job does in Celery).
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, o => { o.Concurrency = 1; o.ReadAhead = 0; },
            tasks => tasks.AddTask<RecordingTask>("record"));
        var recorder = RecordingTask.For(_prefix);
        var blocker = await node.Client.EnqueueAsync("sleep", new { ms = 60_000 }); // until cancelled, below
        await WaitForState(node.Client, blocker, JobState.Running);
        var ids = new List<string>
        {
            await node.Client.EnqueueAsync("record", new { label = "p0", prefix = _prefix }),
            await node.Client.EnqueueAsync("record", new { label = "p9", prefix = _prefix }, new EnqueueOptions { Priority = 9 }),
            await node.Client.EnqueueAsync("record", new { label = "p5", prefix = _prefix }, new EnqueueOptions { Priority = 5 }),
        };
        Assert.True(await node.Client.CancelAsync(blocker));
        await Task.WhenAll(ids.Select(id => node.Client.WaitAsync(id, Wait)));
        Assert.Equal(["p9", "p5", "p0"], recorder.ToArray());
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_job_whose_node_died_returns_to_the_queue_when_its_lease_expires_and_runs_elsewhere(BrokerKind kind)
    {
        var url = brokers.Url(kind);
        var redis = await RedisConnection.ConnectAsync(url);
        var client = new JobClient(redis, new JobClientOptions { KeyPrefix = _prefix });
        var id = await client.EnqueueAsync("add", new[] { 20, 22 });
        // A node that takes the job and dies: its lease is never renewed.
        var dead = new QueueBroker(redis, client.Keys, "default", "dead-node", new BrokerSettings { LeaseDuration = TimeSpan.FromSeconds(1) });
        Assert.Single((await dead.TakeAsync(10)).Jobs);
        Assert.Equal(JobState.Running, (await client.GetAsync(id))!.State);

        await using var node = await TestNode.StartAsync(url, _prefix);
        var job = await client.WaitAsync(id, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(42, job.ResultAs<long>());
        Assert.Equal(1, job.Attempts); // a lost delivery does not use up an attempt
        Assert.Equal("1", (string?)await redis.GetDatabase().HashGetAsync(client.Keys.ForJob(id).Job(id), JobHashFields.Lost));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_job_longer_than_its_lease_keeps_its_lease_and_is_never_handed_out_twice(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, o => o.LeaseDuration = TimeSpan.FromSeconds(1));
        await using var second = await TestNode.StartAsync(brokers.Url(kind), _prefix, o => o.LeaseDuration = TimeSpan.FromSeconds(1));
        var id = await node.Client.EnqueueAsync("sleep", new { ms = 3500 });

        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(1, job.Attempts);
        Assert.Null((string?)await node.Redis.GetDatabase().HashGetAsync(node.Keys.ForJob(id).Job(id), JobHashFields.Lost));
    }

    private static async Task<string> WriteRaw(IDatabase db, QueueKeys q, string id, string envelope)
    {
        var tx = db.CreateTransaction();
        _ = tx.HashSetAsync(q.Job(id), [new(JobHashFields.Envelope, envelope), new(JobHashFields.State, "queued"), new(JobHashFields.Attempts, 0)]);
        _ = tx.SortedSetAddAsync(q.Ready, id, 0);
        _ = tx.PublishAsync(RedisChannel.Literal(q.WakeChannel), id);
        Assert.True(await tx.ExecuteAsync());
        return id;
    }

    private static async Task AssertDeadLettered(JobClient client, string id, string errorType, string message)
    {
        var job = await client.WaitAsync(id, Wait);
        Assert.Equal(JobState.DeadLettered, job.State);
        Assert.EndsWith(errorType, job.Error!.Type);
        Assert.Contains(message, job.Error.Message);
    }

    internal static async Task WaitForState(JobClient client, string id, JobState state)
    {
        var deadline = DateTime.UtcNow + Wait;
        while ((await client.GetAsync(id))?.State != state)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{id} never reached {state}.");
            await Task.Delay(20);
        }
    }
}

public sealed record RecordArgs(string Label, string Prefix);

/// <summary>Records the order in which jobs ran, per test (keyed by the test's key prefix).</summary>
public sealed class RecordingTask : IJobHandler<RecordArgs>
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Collections.Concurrent.ConcurrentQueue<string>> Runs = new();

    public static System.Collections.Concurrent.ConcurrentQueue<string> For(string prefix) => Runs.GetOrAdd(prefix, _ => new());

    public Task HandleAsync(RecordArgs args, JobContext job, CancellationToken ct)
    {
        For(args.Prefix).Enqueue(args.Label);
        return Task.CompletedTask;
    }
}
