using Akka.Actor;
using Akka.TestKit;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Results;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

[Collection(BrokerCollection.Name)]
public sealed class ResultWriterActorSpecs(BrokerFixture broker, ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(SpecConfig.Hocon, output: output)
{
    private const string Queue = "work";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    private IActorRef StartWriter(RedisSpecEnv env)
    {
        Func<string, QueueBroker> brokers = q => env.Broker(q);
        return Sys.ActorOf(Props.Create(() => new ResultWriterActor(brokers)));
    }

    /// <summary>Enqueues <paramref name="count"/> jobs and leases them, as a node about to run them would.</summary>
    private static async Task<string[]> RunningJobsAsync(RedisSpecEnv env, int count, string queue = Queue)
    {
        for (var i = 0; i < count; i++) await env.EnqueueAsync(queue);
        var taken = (await env.Broker(queue).TakeAsync(count)).Jobs;
        Assert.Equal(count, taken.Count);
        return taken.Select(t => t.Id).ToArray();
    }

    private static JobError Error(string message, int attempt) => new()
    {
        Type = "System.InvalidOperationException", Message = message, Attempt = attempt, Node = "node-1",
        At = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
    };

    /// <summary>Collects Recorded messages until every id in <paramref name="ids"/> was reported.</summary>
    private static async Task<List<WorkerPool.Recorded>> ExpectRecordedAsync(TestProbe probe, string queue, params string[] ids)
    {
        var seen = new List<string>();
        var messages = new List<WorkerPool.Recorded>();
        while (seen.Count < ids.Length)
        {
            var recorded = await probe.ExpectMsgAsync<WorkerPool.Recorded>(Wait);
            Assert.Equal(queue, recorded.Queue);
            seen.AddRange(recorded.JobIds);
            messages.Add(recorded);
        }
        Assert.Equal(ids.Order(), seen.Order());
        return messages;
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Recorded_outcomes_update_the_job_records_and_the_notified_actor_hears_of_them(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = await RunningJobsAsync(env, 3);
        var (succeeded, retrying, dead) = (ids[0], ids[1], ids[2]);
        var writer = StartWriter(env);
        var pool = CreateTestProbe("pool");
        var dueAt = DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeMilliseconds();

        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(succeeded, """{"sum":3}"""), pool.Ref));
        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Retry(retrying, Error("flaky", 1), dueAt), pool.Ref));
        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.DeadLettered(dead, Error("broken", 3)), pool.Ref));

        await ExpectRecordedAsync(pool, Queue, ids);
        var q = env.Keys.Queue(Queue);

        var ok = (await env.Client.GetAsync(succeeded))!;
        Assert.Equal(JobState.Succeeded, ok.State);
        Assert.Equal("""{"sum":3}""", ok.Result!.Value.GetRawText());
        Assert.NotNull(ok.FinishedAt);
        Assert.True(await env.Db.KeyTimeToLiveAsync(q.Job(succeeded)) is { } ttl && ttl > TimeSpan.Zero, "a finished record expires");

        var retry = (await env.Client.GetAsync(retrying))!;
        Assert.Equal(JobState.Retrying, retry.State);
        Assert.Equal("flaky", retry.Error!.Message);
        Assert.Equal(dueAt, await env.Db.SortedSetScoreAsync(q.Scheduled, retrying));

        var deadInfo = (await env.Client.GetAsync(dead))!;
        Assert.Equal(JobState.DeadLettered, deadInfo.State);
        Assert.Equal("broken", deadInfo.Error!.Message);
        Assert.Equal(3, deadInfo.Error.Attempt);
        Assert.Contains(dead, (await env.Db.ListRangeAsync(q.Dead)).Select(v => v.ToString()));

        Assert.Equal(0, await env.Db.SortedSetLengthAsync(q.Leased));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_finished_job_records_when_its_handler_started_not_when_it_was_leased(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = await RunningJobsAsync(env, 2);
        var leasedAt = (await env.Client.GetAsync(ids[0]))!.StartedAt!.Value;
        var handlerStarted = leasedAt.AddMilliseconds(1_500).ToUnixTimeMilliseconds();
        var writer = StartWriter(env);
        var pool = CreateTestProbe("pool");

        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(ids[0], "null") { StartedAt = handlerStarted }, pool.Ref));
        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.DeadLettered(ids[1], Error("broken", 1)), pool.Ref));
        await ExpectRecordedAsync(pool, Queue, ids);

        Assert.Equal(handlerStarted, (await env.Client.GetAsync(ids[0]))!.StartedAt!.Value.ToUnixTimeMilliseconds());
        // An outcome that does not say (a job dead-lettered unread) keeps the time it was leased.
        Assert.Equal(leasedAt, (await env.Client.GetAsync(ids[1]))!.StartedAt);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Each_notified_actor_hears_only_of_its_own_jobs(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = await RunningJobsAsync(env, 4);
        var writer = StartWriter(env);
        var a = CreateTestProbe("a");
        var b = CreateTestProbe("b");

        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(ids[0], "1"), a.Ref));
        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(ids[1], "2"), b.Ref));
        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(ids[2], "3"), a.Ref));
        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(ids[3], "4"), b.Ref));

        await ExpectRecordedAsync(a, Queue, ids[0], ids[2]);
        await ExpectRecordedAsync(b, Queue, ids[1], ids[3]);
        await a.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
        await b.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
        foreach (var id in ids) Assert.Equal("succeeded", await env.StateAsync(id));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Outcomes_of_different_queues_are_recorded_in_their_own_queues(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var work = (await RunningJobsAsync(env, 1, "work"))[0];
        var other = (await RunningJobsAsync(env, 1, "other"))[0];
        var writer = StartWriter(env);
        var pool = CreateTestProbe("pool");

        writer.Tell(new ResultWriter.Record("work", new JobOutcome.Succeeded(work, "\"w\""), pool.Ref));
        writer.Tell(new ResultWriter.Record("other", new JobOutcome.Succeeded(other, "\"o\""), pool.Ref));

        var recorded = new[] { await pool.ExpectMsgAsync<WorkerPool.Recorded>(Wait), await pool.ExpectMsgAsync<WorkerPool.Recorded>(Wait) };
        Assert.Equal([work], recorded.Single(r => r.Queue == "work").JobIds);
        Assert.Equal([other], recorded.Single(r => r.Queue == "other").JobIds);
        Assert.Equal("\"w\"", (await env.Client.GetAsync(work))!.Result!.Value.GetRawText());
        Assert.Equal("\"o\"", (await env.Client.GetAsync(other))!.Result!.Value.GetRawText());
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task The_outcome_of_a_job_no_longer_running_here_leaves_its_record_alone(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var id = (await RunningJobsAsync(env, 1))[0];
        Assert.Equal(1, await env.Broker(Queue).ReclaimAsync([id])); // its node was declared lost meanwhile
        var writer = StartWriter(env);
        var pool = CreateTestProbe("pool");

        writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(id, "1"), pool.Ref));

        await ExpectRecordedAsync(pool, Queue, id);
        Assert.Equal("queued", await env.StateAsync(id));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task Many_outcomes_recorded_at_once_are_all_written_and_reported(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = await RunningJobsAsync(env, 50);
        var writer = StartWriter(env);
        var pool = CreateTestProbe("pool");

        foreach (var id in ids) writer.Tell(new ResultWriter.Record(Queue, new JobOutcome.Succeeded(id, "true"), pool.Ref));

        var messages = await ExpectRecordedAsync(pool, Queue, ids);
        Assert.True(messages.Count < ids.Length, "outcomes arriving while a write is in flight go in one batch");
        foreach (var id in ids) Assert.Equal("succeeded", await env.StateAsync(id));
    }
}
