using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;

namespace ClusterJobs.Integration.Tests;

/// <summary>Retries, dead letters and replay, timeouts, cancellation, progress and splitting, on a real broker.</summary>
[Collection(BrokerCollection.Name)]
public sealed class SupervisionSpecs(BrokerFixture brokers)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_retry_waits_in_redis_and_survives_the_restart_of_the_node(BrokerKind kind)
    {
        var first = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var id = await first.Client.EnqueueAsync("fail", new { message = "transient", succeedOnAttempt = 2 },
            new EnqueueOptions { Backoff = TimeSpan.FromSeconds(2), MaxAttempts = 3 });
        await NodeSpecs.WaitForState(first.Client, id, JobState.Retrying);
        await first.DisposeAsync(); // the only node goes away while the retry is pending

        await using var second = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var job = await second.Client.WaitAsync(id, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(2, job.Attempts);
        var failed = Assert.Single(job.History);
        Assert.Equal("transient", failed.Message);
        Assert.Equal(1, failed.Attempt);
        Assert.NotNull(failed.Node);
        Assert.NotNull(failed.StackTrace);
        Assert.True(job.StartedAt - DateTimeOffset.FromUnixTimeMilliseconds(failed.At) >= TimeSpan.FromSeconds(0.9), "the retry waited its backoff (2 s, jitter down to 1 s)");
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Dead_letters_are_listed_with_their_errors_and_replayed_with_their_lineage(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var client = node.Client;
        var options = new EnqueueOptions { MaxAttempts = 2, Backoff = TimeSpan.FromMilliseconds(50) };
        var failing = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => client.EnqueueAsync("fail", new { message = $"boom {i}" }, options)));
        var unknown = await client.EnqueueAsync("not_deployed_yet", new[] { 1 });
        foreach (var id in failing.Append(unknown)) await client.WaitAsync(id, Wait);

        var all = await client.ListDeadLettersAsync("default");
        Assert.Equal(4, all.Count);
        Assert.Equal(all.Skip(1).Take(2).Select(j => j.Id), (await client.ListDeadLettersAsync("default", offset: 1, count: 2)).Select(j => j.Id));
        var onlyFail = await client.ListDeadLettersAsync("default", task: "fail");
        Assert.Equal(failing.Order(), onlyFail.Select(j => j.Id).Order());
        Assert.All(onlyFail, j => Assert.Equal(2, j.History.Count));
        Assert.Equal(onlyFail.Skip(1).Select(j => j.Id), (await client.ListDeadLettersAsync("default", task: "fail", offset: 1)).Select(j => j.Id));

        var replayed = await client.ReplayAsync(failing[0]);
        var replay = await client.WaitAsync(replayed, Wait);
        Assert.Equal(failing[0], replay.ReplayOf);
        Assert.Equal(JobState.DeadLettered, replay.State); // it fails again: a replay is a real new run
        Assert.Equal(replayed, (await client.GetAsync(failing[0]))!.ReplayedAs);
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.ReplayAsync(failing[0]));

        var rest = await client.ReplayAllAsync("default", task: "fail");
        Assert.Equal(3, rest.Count); // failing[1], failing[2] and the replay that failed again
        Assert.Single(await client.ListDeadLettersAsync("default", task: "not_deployed_yet"));
    }

    [Fact]
    public async Task Replay_all_goes_through_the_dead_letters_as_they_were_when_called_and_does_not_chase_replays_that_fail_again()
    {
        await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix);
        var client = node.Client;
        var once = new EnqueueOptions { MaxAttempts = 1 };
        var failing = new List<string>();
        var unknown = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            failing.Add(await client.EnqueueAsync("fail", new { message = $"boom {i}" }, once));
            if (i % 10 == 0) unknown.Add(await client.EnqueueAsync("not_deployed_yet", new[] { i }, once));
        }
        foreach (var id in failing.Concat(unknown)) await client.WaitAsync(id, Wait);

        // Each replay dies again at once (one attempt) while the call is still going: a new dead letter at the end.
        var replayed = await client.ReplayAllAsync("default", task: "fail").WaitAsync(Wait);
        foreach (var id in replayed) await client.WaitAsync(id, Wait);

        Assert.Equal(failing.Order(), (await client.GetManyAsync(replayed)).Select(j => j.ReplayOf!).Order());
        var dead = await client.ListDeadLettersAsync("default", count: 1000);
        Assert.Equal(unknown.Concat(replayed).Order(), dead.Select(j => j.Id).Order()); // the other task's letters stayed
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_hard_timeout_frees_the_slot_of_a_handler_that_never_returns_while_other_jobs_keep_flowing(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, o => o.Concurrency = 1,
            tasks => tasks.AddTask<NeverReturns>("never_returns"));
        var stuck = await node.Client.EnqueueAsync("never_returns", new { }, new EnqueueOptions { HardTimeout = TimeSpan.FromMilliseconds(300), MaxAttempts = 2, Backoff = TimeSpan.FromMilliseconds(10) });
        var others = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => node.Client.EnqueueAsync("add", new[] { i, 1 })));

        var done = await Task.WhenAll(others.Select(id => node.Client.WaitAsync(id, Wait)));
        var timedOut = await node.Client.WaitAsync(stuck, Wait);

        Assert.All(done, j => Assert.Equal(JobState.Succeeded, j.State));
        Assert.Equal(JobState.DeadLettered, timedOut.State);
        Assert.Equal(2, timedOut.Attempts);
        Assert.Contains("hard time limit", timedOut.Error!.Message);
        var status = await node.Services.GetRequiredService<ActorRegistry>().Get<WorkerPoolActor>()
            .Ask<WorkerPool.PoolStatus>(WorkerPool.GetStatus.Instance, TimeSpan.FromSeconds(3));
        Assert.Equal(2, status.RunawaysTotal); // both abandoned handlers are counted and visible
    }

    [Fact]
    public async Task A_node_with_more_runaway_handlers_than_it_tolerates_recycles_itself()
    {
        await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o => { o.Concurrency = 3; o.MaxRunaways = 1; },
            tasks => tasks.AddTask<NeverReturns>("never_returns"));
        var options = new EnqueueOptions { HardTimeout = TimeSpan.FromMilliseconds(200), MaxAttempts = 1 };
        var ids = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => node.Client.EnqueueAsync("never_returns", new { }, options)));

        await node.System.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.IsType<WorkerPoolActor.RecycleReason>(CoordinatedShutdown.Get(node.System).ShutdownReason);
        foreach (var id in ids) Assert.Equal(JobState.DeadLettered, (await node.Client.WaitAsync(id, Wait)).State);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_soft_timeout_cancels_the_handlers_token(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var id = await node.Client.EnqueueAsync("sleep", new { ms = 30_000 }, new EnqueueOptions { SoftTimeout = TimeSpan.FromMilliseconds(200), MaxAttempts = 1 });
        var job = await node.Client.WaitAsync(id, Wait);
        Assert.Equal(JobState.DeadLettered, job.State);
        Assert.Contains("soft time limit", job.Error!.Message);
        Assert.True(job.FinishedAt - job.StartedAt < TimeSpan.FromSeconds(5));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_running_job_cancelled_from_anywhere_has_its_token_cancelled_and_ends_cancelled(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var id = await node.Client.EnqueueAsync("sleep", new { ms = 60_000 });
        await NodeSpecs.WaitForState(node.Client, id, JobState.Running);

        await using var elsewhere = await JobClient.ConnectAsync(brokers.Url(kind), new JobClientOptions { KeyPrefix = _prefix });
        Assert.True(await elsewhere.CancelAsync(id));
        var job = await elsewhere.WaitAsync(id, Wait);

        Assert.Equal(JobState.Cancelled, job.State);
        Assert.True(job.FinishedAt - job.StartedAt < TimeSpan.FromSeconds(10));
        var next = await node.Client.EnqueueAsync("add", new[] { 1, 1 });
        Assert.Equal(JobState.Succeeded, (await node.Client.WaitAsync(next, Wait)).State);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Progress_reported_by_a_handler_is_visible_and_published(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, tasks: t => t.AddTask<ReportsProgress>("progress"));
        var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var sub = node.Redis.GetSubscriber();
        await sub.SubscribeAsync(StackExchange.Redis.RedisChannel.Literal(node.Keys.Queue("default").EventsChannel), (_, m) => events.Enqueue((string)m!));
        var id = await node.Client.EnqueueAsync("progress", new { });

        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal(100, job.ProgressPercent);
        Assert.Equal("done", job.ProgressMessage);
        await Task.Delay(200);
        Assert.Contains($"{id} progress 50 halfway there", events);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_three_level_split_of_ten_thousand_items_is_aggregated_exactly(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, o => o.Concurrency = 16,
            tasks => tasks.AddTask<Node.Demo.SumTask>("sum_by_100", splitting: new SplitOptions { ChunkSize = 100 }));
        var items = Enumerable.Range(1, 10_000).Select(i => (long)i * 7 - 3).ToArray();
        var id = await node.Client.EnqueueAsync("sum_by_100", new { items });

        var job = await node.Client.WaitAsync(id, TimeSpan.FromSeconds(60));

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(items.Sum(), job.ResultAs<long>());
        Assert.Equal(10, job.ChildrenTotal);
        var mid = await node.Client.GetAsync(job.ChildIds[3]);
        Assert.Equal(id, mid!.ParentId);
        Assert.Equal(10, mid.ChildrenTotal); // 1,000 items split again into 10 leaves of 100
        var leaf = await node.Client.GetAsync(mid.ChildIds[9]);
        Assert.Equal(mid.Id, leaf!.ParentId);
        Assert.Null(leaf.ChildrenTotal);
        Assert.Equal(id, leaf.Envelope!.RootId);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_child_that_is_dead_lettered_fails_its_parent_or_is_collected_by_policy(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, tasks: t => t
            .AddTask<FanOut>("fan_out")
            .AddTask<FanOut>("fan_out_collect", splitting: new SplitOptions { OnChildFailure = ChildFailurePolicy.Collect }));
        var strict = await node.Client.EnqueueAsync("fan_out", new { fail = 1 });
        var lenient = await node.Client.EnqueueAsync("fan_out_collect", new { fail = 1 });

        var failed = await node.Client.WaitAsync(strict, Wait);
        var collected = await node.Client.WaitAsync(lenient, Wait);

        Assert.Equal(JobState.Failed, failed.State);
        Assert.Equal("ChildJobFailed", failed.Error!.Type);
        Assert.Contains($"{strict}.1", failed.Error.Message);
        Assert.Equal(JobState.Succeeded, collected.State);
        Assert.Equal("2 ok, 1 failed", collected.ResultAs<string>());
        // The queue's totals (the operator API's) count the failed parent and both dead-lettered children.
        var stats = node.Keys.Queue("default").Stats;
        Assert.Equal(1, (long)await node.Redis.GetDatabase().HashGetAsync(stats, "failed"));
        Assert.Equal(2, (long)await node.Redis.GetDatabase().HashGetAsync(stats, "dead_lettered"));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_splittable_task_that_hits_its_hard_timeout_is_retried_as_split_children(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        // 8 items at 300 ms each take 2.4 s whole: past the 1 s hard limit. Halves (1.2 s) time out again and split
        // again; quarters (0.6 s) fit. The sum must come out exact through two levels of timeout splits.
        var items = new long[] { 1, 2, 3, 4, 5, 6, 7, 8 };
        var id = await node.Client.EnqueueAsync("sum", new { items, msPerItem = 300 }, new EnqueueOptions { HardTimeout = TimeSpan.FromSeconds(1) });

        var job = await node.Client.WaitAsync(id, TimeSpan.FromSeconds(60));

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(36, job.ResultAs<long>());
        Assert.Equal(2, job.ChildrenTotal);
        var half = await node.Client.GetAsync(job.ChildIds[0]);
        Assert.Equal(2, half!.ChildrenTotal);
    }

    [Fact]
    public async Task A_splittable_task_its_policy_would_not_retry_is_dead_lettered_at_its_hard_timeout_not_split()
    {
        // Split children are the timed-out attempt's retry: with no attempt left, none.
        await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix);
        var id = await node.Client.EnqueueAsync("sum", new { items = new long[] { 1, 2, 3, 4 }, msPerItem = 1_000 },
            new EnqueueOptions { HardTimeout = TimeSpan.FromSeconds(1), MaxAttempts = 1 });

        var job = await node.Client.WaitAsync(id, TimeSpan.FromSeconds(30));

        Assert.Equal(JobState.DeadLettered, job.State);
        Assert.EndsWith("JobTimeoutException", job.Error!.Type);
        Assert.Contains("hard time limit", job.Error.Message);
        Assert.Null(job.ChildrenTotal);
    }

    [Fact]
    public async Task Handlers_that_block_their_threads_do_not_stall_the_other_jobs_of_the_node()
    {
        // More blocking handlers than the thread pool has threads: each one holds the thread it runs on until released,
        // and the Redis continuations that take and record the other jobs queue behind them until the worker pool sees
        // the starvation and raises the thread pool's minimum (the pool alone would add about two threads a second).
        const int blockers = 64;
        var gate = BlocksItsThread.Gate = new ManualResetEventSlim(false);
        try
        {
            await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o => o.Concurrency = blockers + 8,
                tasks => tasks.AddTask<BlocksItsThread>("blocks_its_thread"));
            var options = new EnqueueOptions { MaxAttempts = 1 };
            var blocked = await Task.WhenAll(Enumerable.Range(0, blockers).Select(_ => node.Client.EnqueueAsync("blocks_its_thread", new { }, options)));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var others = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => node.Client.EnqueueAsync("add", new[] { i, 1 })));

            var done = await Task.WhenAll(others.Select(id => node.Client.WaitAsync(id, Wait)));

            Assert.All(done, j => Assert.Equal(JobState.Succeeded, j.State));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(12), $"the other jobs took {clock.Elapsed} behind {blockers} blocked handlers");
            ThreadPool.GetMinThreads(out var minimum, out _);
            Assert.True(minimum >= blockers, $"the thread pool's minimum is {minimum}");
            gate.Set();
            Assert.All(await Task.WhenAll(blocked.Select(id => node.Client.WaitAsync(id, Wait))), j => Assert.Equal(JobState.Succeeded, j.State));
        }
        finally { gate.Set(); }
    }

    /// <summary>A handler that blocks its thread (as sync I/O would) until the test opens the gate.</summary>
    public sealed class BlocksItsThread : IJobHandler<object>
    {
        public static ManualResetEventSlim Gate { get; set; } = new(true);

        public Task HandleAsync(object args, JobContext job, CancellationToken ct)
        {
            Gate.Wait(TimeSpan.FromSeconds(60));
            return Task.CompletedTask;
        }
    }

    public sealed class NeverReturns : IJobHandler<object>
    {
        public Task HandleAsync(object args, JobContext job, CancellationToken ct) => new TaskCompletionSource().Task; // ignores its token
    }

    public sealed class ReportsProgress : IJobHandler<object>
    {
        public async Task HandleAsync(object args, JobContext job, CancellationToken ct)
        {
            await job.ReportProgressAsync(50, "halfway there");
            await job.ReportProgressAsync(100, "done");
        }
    }

    public sealed record FanOutArgs(int Fail = -1, bool Child = false);

    /// <summary>Splits into three children by hand; the child at index <c>Fail</c> is dead-lettered.</summary>
    public sealed class FanOut : IJobHandler<FanOutArgs, string>, IJobReducer<string>
    {
        public Task<string> HandleAsync(FanOutArgs args, JobContext job, CancellationToken ct)
        {
            if (args.Child) return args.Fail == 1 ? throw new PermanentJobFailureException("this child fails") : Task.FromResult("ok");
            job.Split(Enumerable.Range(0, 3).Select(i => new ChildJob(job.Task, new FanOutArgs(i == args.Fail ? 1 : 0, Child: true))));
            return Task.FromResult("");
        }

        public Task<string> ReduceAsync(IReadOnlyList<ChildOutcome<string>> children, JobContext job, CancellationToken ct) =>
            Task.FromResult($"{children.Count(c => c.Succeeded)} ok, {children.Count(c => !c.Succeeded)} failed");
    }
}
