using Akka.Actor;
using Akka.TestKit;
using ClusterJobs.Node.Ingress;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

/// <summary>A node's taker leases a queue's jobs for its own pool under a router's grant.</summary>
[Collection(BrokerCollection.Name)]
public sealed class QueueTakerActorSpecs(BrokerFixture broker, ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(SpecConfig.Hocon, output: output)
{
    private const string Queue = "work";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    private (IActorRef Taker, TestProbe Pool) StartTaker(RedisSpecEnv env, int maxBatch = QueueIngressSettings.DefaultMaxBatch)
    {
        var pool = CreateTestProbe("pool");
        var taker = Sys.ActorOf(QueueTakerActorExtensions.TakerProps(env.Broker(Queue), new QueueIngressSettings { MaxBatch = maxBatch }));
        return (taker, pool);
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_grant_leases_the_ready_jobs_for_this_node_and_says_exhausted_when_there_were_fewer(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add(await env.EnqueueAsync(Queue, options: new EnqueueOptions { JobIdSuffix = $"job-{i}" }));
        var (taker, pool) = StartTaker(env);

        pool.Send(taker, new QueueTaker.Take(5));

        var taken = await pool.ExpectMsgAsync<QueueTaker.Taken>(Wait);
        Assert.Equal(Queue, taken.Queue);
        Assert.Equal(ids, taken.Jobs.Select(j => j.Envelope.Id));
        Assert.Equal(5, taken.Granted);
        Assert.True(taken.Exhausted);
        Assert.All(taken.Jobs, j => Assert.Equal(1, j.Attempt));
        foreach (var id in ids)
        {
            Assert.Equal("running", await env.StateAsync(id));
            Assert.Equal("node-1", (string?)await env.Db.HashGetAsync(env.Keys.Queue(Queue).Job(id), "node"));
            Assert.NotNull(await env.Db.SortedSetScoreAsync(env.Keys.Queue(Queue).Leased, id));
        }
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_grant_larger_than_a_batch_is_taken_in_batches_each_answered_on_its_own(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var ids = new List<string>();
        for (var i = 0; i < 5; i++) ids.Add(await env.EnqueueAsync(Queue, options: new EnqueueOptions { JobIdSuffix = $"job-{i}" }));
        var (taker, pool) = StartTaker(env, maxBatch: 2);

        pool.Send(taker, new QueueTaker.Take(5));

        var answers = new[]
        {
            await pool.ExpectMsgAsync<QueueTaker.Taken>(Wait), await pool.ExpectMsgAsync<QueueTaker.Taken>(Wait),
            await pool.ExpectMsgAsync<QueueTaker.Taken>(Wait),
        };
        Assert.Equal([1, 2, 2], answers.Select(a => a.Granted).Order());
        Assert.All(answers, a => Assert.False(a.Exhausted));
        Assert.Equal(ids, answers.SelectMany(a => a.Jobs).Select(j => j.Envelope.Id).Order());
        await pool.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_malformed_envelope_is_dead_lettered_while_its_neighbour_runs_here(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        const string bad = Queue + ":bad";
        await env.QueueRawAsync(Queue, bad, "{not json");
        var good = await env.EnqueueAsync(Queue);
        var (taker, pool) = StartTaker(env);

        pool.Send(taker, new QueueTaker.Take(2));

        var taken = await pool.ExpectMsgAsync<QueueTaker.Taken>(Wait);
        Assert.Equal([good], taken.Jobs.Select(j => j.Envelope.Id));
        Assert.False(taken.Exhausted); // Redis had two jobs for the two slots; one was bad
        await RedisSpecEnv.EventuallyAsync(async () => await env.StateAsync(bad) == "dead_lettered", "the bad job is dead-lettered");
        var info = await env.Client.GetAsync(bad);
        Assert.Equal("MalformedEnvelope", info!.Error!.Type);
        Assert.Contains("not valid job JSON", info.Error.Message);
        Assert.Equal("running", await env.StateAsync(good));
    }

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task A_take_short_only_because_the_script_ended_a_job_without_a_record_is_not_exhausted(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        await env.QueueRawAsync(Queue, Queue + ":no-record", envelope: null);
        var good = await env.EnqueueAsync(Queue);
        var (taker, pool) = StartTaker(env);

        pool.Send(taker, new QueueTaker.Take(2));

        var taken = await pool.ExpectMsgAsync<QueueTaker.Taken>(Wait);
        Assert.Equal([good], taken.Jobs.Select(j => j.Envelope.Id));
        Assert.False(taken.Exhausted); // two ids left the queue for two slots: grants go on
        Assert.Equal("dead_lettered", await env.StateAsync(Queue + ":no-record"));
    }

    [Fact]
    public async Task When_Redis_cannot_be_reached_the_grant_is_answered_exhausted_so_the_router_takes_over()
    {
        // A server that is gone: the take fails at once, and the pool hears it with the grant's credit.
        var gone = await RedisServer.StartBinaryAsync();
        await using var env = await RedisSpecEnv.CreateAsync(gone.Url);
        await gone.DisposeAsync();
        var (taker, pool) = StartTaker(env);

        pool.Send(taker, new QueueTaker.Take(4));

        var taken = await pool.ExpectMsgAsync<QueueTaker.Taken>(TimeSpan.FromSeconds(20));
        Assert.Empty(taken.Jobs);
        Assert.Equal(4, taken.Granted);
        Assert.True(taken.Exhausted);
    }
}
