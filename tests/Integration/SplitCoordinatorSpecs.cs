using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// A split parent's coordinator is a persistent actor (Redis journal) on the node of the queue's router. Killed with
/// that node, it starts again on another node and recovers the outcomes it had recorded: the parent completes with
/// every child's result, even those whose own records are gone by then.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class SplitCoordinatorSpecs(BrokerFixture brokers, ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly string _prefix = BrokerFixture.NewPrefix();

    [Fact]
    public async Task The_coordinator_killed_with_its_node_recovers_its_recorded_outcomes_on_another_node()
    {
        var url = brokers.Url(BrokerKind.Redis);
        var port = RedisServer.FreePort();
        var seed = $"akka.tcp://clusterjobs@127.0.0.1:{port}";
        Task<TestNode> Start(int p) => TestNode.StartAsync(url, _prefix,
            o => o.Cluster = new ClusterBootstrap { Host = "127.0.0.1", Port = p, Seeds = [seed] },
            jobs => jobs.AddTask<FanOutTask>("fan_out").AddTask<ValueAfterTask>("value_after"), serializeMessages: false);
        var first = await Start(port); // the oldest: hosts the router, so the coordinators
        await using var second = await Start(0);
        await using var third = await Start(0);
        await using var fourth = await Start(0);
        foreach (var node in new[] { first, second, third, fourth }) await node.WaitForMembersUpAsync(4); // so that the survivors are a majority
        await WaitForRouterAsync(fourth);
        var client = fourth.Client;
        var db = fourth.Redis.GetDatabase();
        var queue = fourth.Keys.Queue("default");

        // Three quick children (values 1, 2, 3) and three that run long (values 10, 20, 30).
        var parent = await client.EnqueueAsync("fan_out", new FanOutArgs([new(1, 50), new(2, 50), new(3, 50), new(10, 6_000), new(20, 6_000), new(30, 6_000)]));
        await WaitUntilAsync(async () => (int)await db.HashGetAsync(queue.Job(parent), JobHashFields.ChildrenPending) == 3,
            "the coordinator to record the three quick children");
        // Their own records expire in time (TTL); here they go at once, so only the coordinator's journal has their results.
        foreach (var i in new[] { 0, 1, 2 }) await db.KeyDeleteAsync(queue.Job($"{parent}.{i}"));

        await first.CrashAsync();
        var job = await client.WaitAsync(parent, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(66, job.ResultAs<long>()); // 1 + 2 + 3 from the journal, 10 + 20 + 30 from the children still running
        output.WriteLine($"parent {parent} completed on {job.Node} after the coordinator's node was killed");
    }

    [Fact]
    public async Task A_child_cancelled_before_it_ran_still_counts_for_its_parent()
    {
        // Such a child ends in the producer's cancel script, which tells no node: the coordinator finds it in Redis.
        var url = brokers.Url(BrokerKind.Redis);
        await using var node = await TestNode.StartAsync(url, _prefix, o => o.Concurrency = 1,
            jobs => jobs.AddTask<FanOutTask>("fan_out", splitting: new SplitOptions { OnChildFailure = ChildFailurePolicy.Collect })
                .AddTask<ValueAfterTask>("value_after"));
        var parent = await node.Client.EnqueueAsync("fan_out", new FanOutArgs([new(1, 1_500), new(2, 0)]));
        await WaitUntilAsync(async () => (await node.Client.GetAsync(parent + ".1"))?.State == JobState.Queued, "the children");
        Assert.True(await node.Client.CancelAsync(parent + ".1"));

        var job = await node.Client.WaitAsync(parent, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(1, job.ResultAs<long>());
    }

    [Fact]
    public async Task A_purge_keeps_the_dead_letters_of_a_parent_still_waiting_and_takes_them_once_it_finished()
    {
        // Under Collect the parent waits for its other children; its coordinator may still read the dead child's record.
        var url = brokers.Url(BrokerKind.Redis);
        await using var node = await TestNode.StartAsync(url, _prefix, o => o.Concurrency = 2,
            jobs => jobs.AddTask<FailThenWaitTask>("fail_then_wait", splitting: new SplitOptions { OnChildFailure = ChildFailurePolicy.Collect })
                .AddTask<ValueAfterTask>("value_after"));
        var parent = await node.Client.EnqueueAsync("fail_then_wait", new ValueAfterArgs(5, 3_000));
        await WaitUntilAsync(async () => (await node.Client.GetAsync(parent + ".0"))?.State == JobState.DeadLettered, "the dead child");

        var whileWaiting = await node.Client.PurgeDeadLettersAsync("default");
        var parentThen = (await node.Client.GetAsync(parent))!.State;
        var job = await node.Client.WaitAsync(parent, Wait);
        var afterwards = await node.Client.PurgeDeadLettersAsync("default");

        Assert.Equal(0, whileWaiting);
        Assert.Equal(JobState.Waiting, parentThen);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(5, job.ResultAs<long>());
        Assert.Equal(1, afterwards);
        Assert.Null(await node.Client.GetAsync(parent + ".0"));
    }

    [Fact]
    public async Task A_journal_left_by_an_earlier_job_with_the_same_id_is_not_replayed_into_a_new_split()
    {
        // An earlier job with this id split, and its coordinator died after ending it but before deleting its journal.
        var url = brokers.Url(BrokerKind.Redis);
        await using var node = await TestNode.StartAsync(url, _prefix, tasks: jobs => jobs.AddTask<FanOutTask>("fan_out").AddTask<ValueAfterTask>("value_after"),
            serializeMessages: false); // the stand-in writer defers a reply through the journal, which verification cannot copy
        var suffix = "nightly-" + Guid.NewGuid().ToString("N");
        var id = "default:" + suffix;
        object[] earlier =
        [
            new Node.Splits.SplitCoordinator.Tracked(2, false, SplitAt: 1),
            new Node.Splits.SplitCoordinator.ChildrenRecorded([new(id + ".0", "succeeded", "100"), new(id + ".1", "succeeded", "200")]),
        ];
        var stale = node.System.ActorOf(Akka.Actor.Props.Create(() => new StaleSplitJournal("split-" + id, earlier)));
        await Akka.Actor.Futures.Ask<string>(stale, "write", TimeSpan.FromSeconds(10));
        node.System.Stop(stale);

        var parent = await node.Client.EnqueueAsync("fan_out", new FanOutArgs([new(1, 0), new(2, 0)]), new EnqueueOptions { JobIdSuffix = suffix });
        var job = await node.Client.WaitAsync(parent, Wait);

        Assert.Equal(id, parent);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(3, job.ResultAs<long>()); // this split's children, not the earlier one's 100 + 200
    }

    [Fact]
    public async Task A_grandchild_that_fails_fails_its_parent_and_the_failure_climbs_to_the_top_of_the_tree()
    {
        var url = brokers.Url(BrokerKind.Redis);
        await using var node = await TestNode.StartAsync(url, _prefix, tasks: jobs => jobs.AddTask<NestTask>("nest"));
        var top = await node.Client.EnqueueAsync("nest", new NestArgs(2)); // top -> nest(1) -> nest(0) -> fail

        var job = await node.Client.WaitAsync(top, Wait);
        var middle = await node.Client.GetAsync(top + ".0");

        Assert.Equal(JobState.Failed, job.State);
        Assert.Equal("ChildJobFailed", job.Error!.Type);
        Assert.Contains(top + ".0", job.Error.Message);
        Assert.Equal(JobState.Failed, middle!.State);
        Assert.Contains(top + ".0.0", middle.Error!.Message);
    }

    private static async Task WaitForRouterAsync(TestNode node)
    {
        var id = await node.Client.EnqueueAsync("add", new[] { 1, 1 });
        await node.Client.WaitAsync(id, Wait);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out waiting for {what}.");
            await Task.Delay(50);
        }
    }
}

public sealed record FanOutArgs(FanOutChild[] Children);

public sealed record FanOutChild(long Value, int Ms);

/// <summary>Splits into one <c>value_after</c> child per entry and sums what they return (failed children count 0).</summary>
public sealed class FanOutTask : IJobHandler<FanOutArgs, long>, IJobReducer<long>
{
    public Task<long> HandleAsync(FanOutArgs args, JobContext job, CancellationToken ct)
    {
        job.Split(args.Children.Select(c => new ChildJob("value_after", new ValueAfterArgs(c.Value, c.Ms))));
        return Task.FromResult(0L);
    }

    public Task<long> ReduceAsync(IReadOnlyList<ChildOutcome<long>> children, JobContext job, CancellationToken ct) =>
        Task.FromResult(children.Where(c => c.Succeeded).Sum(c => c.Result));
}

public sealed record ValueAfterArgs(long Value, int Ms);

/// <summary>Returns its value after waiting.</summary>
public sealed class ValueAfterTask : IJobHandler<ValueAfterArgs, long>
{
    public async Task<long> HandleAsync(ValueAfterArgs args, JobContext job, CancellationToken ct)
    {
        await Task.Delay(args.Ms, ct);
        return args.Value;
    }
}

/// <summary>Writes events under a persistence id, as a coordinator of an earlier job would have left them.</summary>
public sealed class StaleSplitJournal : Akka.Persistence.ReceivePersistentActor
{
    public StaleSplitJournal(string persistenceId, object[] events)
    {
        PersistenceId = persistenceId;
        CommandAny(_ => { var asker = Sender; PersistAll(events, _ => { }); DeferAsync("written", w => asker.Tell(w, Self)); });
    }

    public override string PersistenceId { get; }
}

/// <summary>Splits into a `fail` child (dead-lettered at once) and a `value_after` child; sums what succeeded.</summary>
public sealed class FailThenWaitTask : IJobHandler<ValueAfterArgs, long>, IJobReducer<long>
{
    public Task<long> HandleAsync(ValueAfterArgs args, JobContext job, CancellationToken ct)
    {
        job.Split([new ChildJob("fail", new { message = "dead at once" }), new ChildJob("value_after", args)]);
        return Task.FromResult(0L);
    }

    public Task<long> ReduceAsync(IReadOnlyList<ChildOutcome<long>> children, JobContext job, CancellationToken ct) =>
        Task.FromResult(children.Where(c => c.Succeeded).Sum(c => c.Result));
}

public sealed record NestArgs(int Depth);

/// <summary>Splits into one child a level deeper; the deepest splits into a `fail` job that is dead-lettered at once.</summary>
public sealed class NestTask : IJobHandler<NestArgs, long>
{
    public Task<long> HandleAsync(NestArgs args, JobContext job, CancellationToken ct)
    {
        job.Split([args.Depth == 0
            ? new ChildJob("fail", new { message = "boom at the bottom" })
            : new ChildJob("nest", new NestArgs(args.Depth - 1))]);
        return Task.FromResult(0L);
    }
}
