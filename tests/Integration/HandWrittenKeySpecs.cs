using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// Keys a hand or another language's producer wrote wrong (another type, a field that is no number). Redis keeps a
/// script's writes when a later command of it fails, so each script must fail before its first write or end only the
/// job at fault: a wrong key costs at most its own job, never a neighbour's, and a queue key mended lets work go on.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class HandWrittenKeySpecs(BrokerFixture brokers) : IAsyncLifetime
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private IConnectionMultiplexer _redis = null!;
    private JobClient _client = null!;
    private QueueKeys _q = null!;
    private IDatabase Db => _redis.GetDatabase();

    public Task InitializeAsync() => Task.CompletedTask;

    private async Task UseAsync(BrokerKind kind)
    {
        _redis = await RedisConnection.ConnectAsync(brokers.Url(kind));
        _client = new JobClient(_redis, new JobClientOptions { KeyPrefix = _prefix });
        _q = _client.Keys.Queue("default");
    }

    public async Task DisposeAsync()
    {
        if (_client is not null) await _client.DisposeAsync();
        if (_redis is not null) await _redis.DisposeAsync();
    }

    private QueueBroker Broker(TimeSpan? lease = null, int maxLost = 5) =>
        new(_redis, _client.Keys, "default", "node-a",
            new BrokerSettings { LeaseDuration = lease ?? TimeSpan.FromSeconds(30), MaxLostDeliveries = maxLost });

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task An_id_in_the_queue_whose_key_is_not_a_hash_leaves_the_queue_and_the_jobs_taken_with_it_are_leased(BrokerKind kind)
    {
        await UseAsync(kind);
        var first = await _client.EnqueueAsync("add", new[] { 1, 2 });
        await Db.SortedSetAddAsync(_q.Ready, "default:garbage-1", 0); // taken in the same batch as its neighbours
        await Db.StringSetAsync(_q.Job("default:garbage-1"), "not a job record");
        var second = await _client.EnqueueAsync("add", new[] { 3, 4 });

        var taken = await Broker().TakeAsync(10);

        Assert.Equal([first, second], taken.Jobs.Select(j => j.Id).Order().ToArray());
        Assert.Equal(3, taken.Popped);
        Assert.Equal(["default:garbage-1"], taken.NotJobs!); // for the node to say so
        Assert.Equal(0, await Db.SortedSetLengthAsync(_q.Ready));
        Assert.Equal(2, await Db.SortedSetLengthAsync(_q.Leased));
        Assert.Equal(0, await Db.ListLengthAsync(_q.Dead));
        Assert.Equal(JobState.Running, (await _client.GetAsync(first))!.State);
        Assert.Equal("not a job record", await Db.StringGetAsync(_q.Job("default:garbage-1"))); // not ours to change
    }

    [Fact]
    public async Task A_node_that_meets_an_id_whose_key_is_not_a_hash_runs_its_neighbours_and_says_which_id_left_the_queue()
    {
        var logs = new RecordedLogs();
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix, logs: logs);
        var db = node.Redis.GetDatabase();
        var q = node.Keys.Queue("default");
        await db.StringSetAsync(q.Job("default:garbage-3"), "not a job record");
        await db.SortedSetAddAsync(q.Ready, "default:garbage-3", 0);
        var after = await node.Client.EnqueueAsync("add", new[] { 20, 22 });

        Assert.Equal(42, (await node.Client.WaitAsync(after, TimeSpan.FromSeconds(20))).ResultAs<long>());
        await ClusterRun.WaitUntilAsync(() => Task.FromResult(logs.Lines.Any(l => l.Contains("had a key that is not a job hash") && l.Contains("default:garbage-3"))),
            TimeSpan.FromSeconds(10), "a warning naming the id"); // Akka's logging is asynchronous
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_due_delayed_job_whose_record_has_no_usable_ready_score_joins_the_queue_at_its_front_beside_its_neighbours(BrokerKind kind)
    {
        await UseAsync(kind);
        var good = await DueDelayedAsync(null);
        var notANumber = await DueDelayedAsync("soon");
        var missing = await DueDelayedAsync("");
        await Db.SortedSetAddAsync(_q.Scheduled, "default:garbage-2", 1);
        await Db.StringSetAsync(_q.Job("default:garbage-2"), "not a job record");

        var taken = await Broker().TakeAsync(1);

        // The two without a usable score went to the front (0): one of them is taken first, the other waits there.
        var first = Assert.Single(taken.Jobs).Id;
        Assert.Contains(first, new[] { notANumber, missing });
        Assert.Equal(0, await Db.SortedSetScoreAsync(_q.Ready, first == missing ? notANumber : missing));
        Assert.True(await Db.SortedSetScoreAsync(_q.Ready, good) > 0);
        Assert.Equal(0, await Db.SortedSetLengthAsync(_q.Scheduled)); // the key that is no record left the schedule, untouched
        Assert.Equal(["default:garbage-2"], taken.NotJobs!);
        Assert.Equal("not a job record", await Db.StringGetAsync(_q.Job("default:garbage-2")));
        Assert.Equal(2, (await Broker().TakeAsync(10)).Jobs.Count);
        Assert.Equal(0, await Db.ListLengthAsync(_q.Dead));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_queue_key_of_another_type_fails_the_take_before_it_takes_anything_and_once_mended_the_job_is_taken(BrokerKind kind)
    {
        await UseAsync(kind);
        var id = await _client.EnqueueAsync("add", new[] { 1, 2 });
        await Db.StringSetAsync(_q.Leased, "overwritten by hand");

        await Assert.ThrowsAsync<RedisServerException>(() => Broker().TakeAsync(10));
        Assert.Equal(1, await Db.SortedSetLengthAsync(_q.Ready));
        Assert.Equal(JobState.Queued, (await _client.GetAsync(id))!.State);

        await Db.KeyDeleteAsync(_q.Leased);
        Assert.Equal(id, Assert.Single((await Broker().TakeAsync(10)).Jobs).Id);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_job_handed_back_or_reclaimed_with_a_ready_score_that_is_no_number_goes_back_to_the_queue_not_nowhere(BrokerKind kind)
    {
        await UseAsync(kind);
        var returned = await _client.EnqueueAsync("add", new[] { 1, 2 });
        var reclaimed = await _client.EnqueueAsync("add", new[] { 3, 4 });
        var broker = Broker();
        Assert.Equal(2, (await broker.TakeAsync(10)).Jobs.Count);
        foreach (var id in new[] { returned, reclaimed }) await Db.HashSetAsync(_q.Job(id), "ready_score", "first please");

        Assert.Equal(1, (await broker.CompleteAsync([new JobOutcome.Returned(returned)])).Recorded);
        Assert.Equal(1, await broker.ReclaimAsync([reclaimed]));

        foreach (var id in new[] { returned, reclaimed })
        {
            Assert.Equal(0, await Db.SortedSetScoreAsync(_q.Ready, id)); // at the front, its own score being unusable
            var job = (await _client.GetAsync(id))!;
            Assert.Equal((JobState.Queued, 0), (job.State, job.Attempts));
        }
        Assert.Equal("1", (string?)await Db.HashGetAsync(_q.Job(reclaimed), "lost")); // a lost delivery, counted as one
        Assert.Equal(0, await Db.SortedSetLengthAsync(_q.Leased));
        Assert.Equal(2, (await broker.TakeAsync(10)).Jobs.Count);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task An_enqueue_refused_by_a_queue_key_of_another_type_writes_nothing_so_its_retry_with_the_same_idempotency_key_makes_the_job(BrokerKind kind)
    {
        await UseAsync(kind);
        await Db.StringSetAsync(_q.Ready, "overwritten by hand");
        var options = new EnqueueOptions { IdempotencyKey = "order-42" };

        await Assert.ThrowsAsync<RedisServerException>(() => _client.EnqueueAsync("add", new[] { 1, 2 }, options));
        Assert.False(await Db.KeyExistsAsync(_q.Idempotency("order-42"))); // nothing written: no key naming a job that is not

        await Db.KeyDeleteAsync(_q.Ready);
        var id = await _client.EnqueueAsync("add", new[] { 1, 2 }, options);
        Assert.Equal(JobState.Queued, (await _client.GetAsync(id))!.State);
        Assert.Equal(1, await Db.SortedSetLengthAsync(_q.Ready));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_cancel_or_replay_refused_by_a_queue_key_of_another_type_leaves_the_job_where_it_was(BrokerKind kind)
    {
        await UseAsync(kind);
        var queued = await _client.EnqueueAsync("add", new[] { 1, 2 });
        var deadId = await _client.EnqueueAsync("add", new[] { 3, 4 });
        var broker = Broker();
        await Db.SortedSetRemoveAsync(_q.Ready, deadId);
        await Db.SortedSetAddAsync(_q.Ready, deadId, -1); // taken first, alone
        Assert.Equal(deadId, Assert.Single((await broker.TakeAsync(1)).Jobs).Id);
        await broker.CompleteAsync([new JobOutcome.DeadLettered(deadId, new JobError { Type = "Boom", Message = "failed" })]);

        await Db.StringSetAsync(_q.Scheduled, "overwritten by hand");
        await Assert.ThrowsAsync<RedisServerException>(() => _client.CancelAsync(queued));
        Assert.Equal(1, await Db.SortedSetLengthAsync(_q.Ready)); // still queued, still in its queue
        Assert.Equal(JobState.Queued, (await _client.GetAsync(queued))!.State);
        await Db.KeyDeleteAsync(_q.Scheduled);

        await Db.StringSetAsync(_q.Ready, "overwritten by hand");
        await Assert.ThrowsAsync<RedisServerException>(() => _client.ReplayAsync(deadId));
        Assert.Equal([deadId], (await Db.ListRangeAsync(_q.Dead)).Select(v => (string)v!).ToArray()); // still a dead letter
        Assert.Null((await _client.GetAsync(deadId))!.ReplayedAs);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_split_refused_by_a_queue_key_of_another_type_writes_nothing_its_retry_once_mended_queues_every_child_and_its_reduce_is_queued(BrokerKind kind)
    {
        await UseAsync(kind);
        var parent = await _client.EnqueueAsync("add", new[] { 1, 2 });
        var broker = Broker();
        Assert.Single((await broker.TakeAsync(1)).Jobs);
        var children = Enumerable.Range(0, 2).Select(i => $"{parent}.{i}")
            .Select(id => new ChildEnvelope(id, ProtocolJson.Serialize(new JobEnvelope { Id = id, Task = "add", Queue = "default" }), 5)).ToList();
        await Db.StringSetAsync(_q.Waiting, "overwritten by hand");

        await Assert.ThrowsAsync<RedisServerException>(() => broker.SplitAsync(parent, children, collectFailures: false));
        Assert.NotNull(await Db.SortedSetScoreAsync(_q.Leased, parent)); // still leased, still running
        Assert.Equal(JobState.Running, (await _client.GetAsync(parent))!.State);
        Assert.False(await Db.KeyExistsAsync(_q.Job(children[0].Id)));

        await Db.KeyDeleteAsync(_q.Waiting);
        Assert.Equal(2, await broker.SplitAsync(parent, children, collectFailures: false)); // the node's retry
        Assert.Equal(2, await Db.SortedSetLengthAsync(_q.Ready));
        Assert.Equal(JobState.Waiting, (await _client.GetAsync(parent))!.State);

        // Its children done, the parent is queued again for its reduce: at the front, its ready_score edited to no number.
        await Db.HashSetAsync(_q.Job(parent), "ready_score", "first please");
        Assert.Equal(SplitFinish.Reduced, await broker.FinishSplitAsync(parent, children.Select(c => new ChildResult(c.Id, true, "3")).ToList(), null));
        Assert.Equal(0, await Db.SortedSetScoreAsync(_q.Ready, parent));
        Assert.Equal(JobState.Queued, (await _client.GetAsync(parent))!.State);
        Assert.False(await Db.SetContainsAsync(_q.Waiting, parent));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Outcomes_and_reclaims_of_a_batch_are_recorded_when_one_of_its_jobs_keys_was_overwritten_by_hand_meanwhile(BrokerKind kind)
    {
        await UseAsync(kind);
        var ids = new List<string>();
        for (var i = 0; i < 4; i++) ids.Add(await _client.EnqueueAsync("add", new[] { i, i }));
        var broker = Broker();
        Assert.Equal(4, (await broker.TakeAsync(10)).Jobs.Count);
        await Db.StringSetAsync(_q.Job(ids[0]), "overwritten by hand");
        await Db.StringSetAsync(_q.Job(ids[2]), "overwritten by hand");

        // The overwritten one first in each batch: its neighbour is still recorded, and the call does not fail (a
        // result writer would send a failed batch again and again, holding up every later outcome of the queue).
        var recorded = await broker.CompleteAsync([new JobOutcome.Succeeded(ids[0], "1"), new JobOutcome.Succeeded(ids[1], "2")]);
        Assert.Equal(1, recorded.Recorded);
        Assert.Equal(JobState.Succeeded, (await _client.GetAsync(ids[1]))!.State);
        Assert.Equal(1, await broker.ReclaimAsync([ids[2], ids[3]]));
        Assert.Equal(JobState.Queued, (await _client.GetAsync(ids[3]))!.State);
        Assert.Equal([ids[3]], (await Db.SortedSetRangeByRankAsync(_q.Ready)).Select(v => (string)v!).ToArray());
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task An_outcome_refused_by_a_queue_key_of_another_type_writes_nothing_so_its_retry_once_mended_records_it(BrokerKind kind)
    {
        await UseAsync(kind);
        var id = await _client.EnqueueAsync("add", new[] { 1, 2 });
        var broker = Broker();
        Assert.Single((await broker.TakeAsync(1)).Jobs);
        await Db.StringSetAsync(_q.Scheduled, "overwritten by hand");
        JobOutcome[] retry = [new JobOutcome.Retry(id, new JobError { Type = "Boom", Message = "again" }, 1)];

        await Assert.ThrowsAsync<RedisServerException>(() => broker.CompleteAsync(retry));
        Assert.Equal(JobState.Running, (await _client.GetAsync(id))!.State); // still running, still leased: nothing written
        Assert.NotNull(await Db.SortedSetScoreAsync(_q.Leased, id));

        await Db.KeyDeleteAsync(_q.Scheduled);
        Assert.Equal(1, (await broker.CompleteAsync(retry)).Recorded); // the result writer's resend
        Assert.Equal(JobState.Retrying, (await _client.GetAsync(id))!.State);
        Assert.Equal(1, await Db.SortedSetScoreAsync(_q.Scheduled, id));
        Assert.Equal(0, await Db.SortedSetLengthAsync(_q.Leased));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_reclaim_refused_by_a_queue_key_of_another_type_leaves_the_lease_so_its_retry_once_mended_queues_the_job(BrokerKind kind)
    {
        await UseAsync(kind);
        var id = await _client.EnqueueAsync("add", new[] { 1, 2 });
        var broker = Broker();
        Assert.Single((await broker.TakeAsync(1)).Jobs);
        await Db.StringSetAsync(_q.Ready, "overwritten by hand");

        await Assert.ThrowsAsync<RedisServerException>(() => broker.ReclaimAsync([id]));
        Assert.NotNull(await Db.SortedSetScoreAsync(_q.Leased, id)); // still leased: a later reclaim still finds it
        Assert.Equal(JobState.Running, (await _client.GetAsync(id))!.State);

        await Db.KeyDeleteAsync(_q.Ready);
        Assert.Equal(1, await broker.ReclaimAsync([id]));
        Assert.Equal(JobState.Queued, (await _client.GetAsync(id))!.State);
        Assert.Equal(id, Assert.Single((await broker.TakeAsync(10)).Jobs).Id);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_reduce_refused_by_a_queue_key_of_another_type_leaves_the_parent_waiting_and_out_of_the_queue_until_mended(BrokerKind kind)
    {
        await UseAsync(kind);
        var (broker, parent, children) = await WaitingParentAsync();
        await Db.StringSetAsync(_q.Waiting, "overwritten by hand");
        var results = children.Select(c => new ChildResult(c, true, "3")).ToList();

        await Assert.ThrowsAsync<RedisServerException>(() => broker.FinishSplitAsync(parent, results, null));
        Assert.Null(await Db.SortedSetScoreAsync(_q.Ready, parent)); // not queued half-finished (it would run its split again)
        Assert.Equal(JobState.Waiting, (await _client.GetAsync(parent))!.State);

        await Db.KeyDeleteAsync(_q.Waiting);
        Assert.Equal(SplitFinish.Reduced, await broker.FinishSplitAsync(parent, results, null));
        Assert.Equal("reduce", Assert.Single((await broker.TakeAsync(10)).Jobs, j => j.Id == parent).Phase); // its children beside it
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_child_whose_parent_key_was_overwritten_by_hand_is_recorded_with_its_neighbours(BrokerKind kind)
    {
        await UseAsync(kind);
        var (broker, parent, children) = await WaitingParentAsync();
        var neighbour = await _client.EnqueueAsync("add", new[] { 5, 6 });
        Assert.Equal(3, (await broker.TakeAsync(10)).Jobs.Count); // both children and the neighbour
        await Db.StringSetAsync(_q.Job(parent), "overwritten by hand");

        var recorded = await broker.CompleteAsync([new JobOutcome.Succeeded(children[0], "3"), new JobOutcome.Succeeded(neighbour, "11")]);

        Assert.Equal((2, 0), (recorded.Recorded, recorded.FinishedChildren.Count)); // no parent left waiting to tell
        foreach (var id in new[] { children[0], neighbour }) Assert.Equal(JobState.Succeeded, (await _client.GetAsync(id))!.State);
        Assert.Equal([children[1]], (await Db.SortedSetRangeByRankAsync(_q.Leased)).Select(v => (string)v!).ToArray());
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_stats_counter_a_hand_made_no_integer_is_left_as_it_is_and_takes_outcomes_splits_and_reclaims_go_through(BrokerKind kind)
    {
        await UseAsync(kind);
        foreach (var field in new[] { "succeeded", "dead_lettered", "failed" }) await Db.HashSetAsync(_q.Stats, field, "many");
        var (broker, parent, _) = await WaitingParentAsync();
        await Db.SortedSetAddAsync(_q.Ready, "default:no-record", -1); // dead-lettered by the take: counted under dead_lettered
        var id = await _client.EnqueueAsync("add", new[] { 1, 2 });

        var taken = await broker.TakeAsync(10);
        Assert.Equal(id, Assert.Single(taken.Jobs, j => !j.Id.StartsWith(parent, StringComparison.Ordinal)).Id);
        Assert.Equal(["default:no-record"], (await Db.ListRangeAsync(_q.Dead)).Select(v => (string)v!).ToArray());
        Assert.Equal(1, (await broker.CompleteAsync([new JobOutcome.Succeeded(id, "3")])).Recorded);
        Assert.Equal(JobState.Succeeded, (await _client.GetAsync(id))!.State);
        Assert.Null(await Db.SortedSetScoreAsync(_q.Leased, id));
        Assert.True((await broker.FinishSplitAsync(parent, [], new JobError { Type = "ChildFailed", Message = "a child failed" })).Failed);
        Assert.Equal(JobState.Failed, (await _client.GetAsync(parent))!.State);
        var lostOnce = taken.Jobs.First(j => j.Id != id).Id; // a child, lost the one time its broker allows
        Assert.Equal(1, await Broker(maxLost: 1).ReclaimAsync([lostOnce]));
        Assert.Equal(JobState.DeadLettered, (await _client.GetAsync(lostOnce))!.State);
        foreach (var field in new[] { "succeeded", "dead_lettered", "failed" }) Assert.Equal("many", (string?)await Db.HashGetAsync(_q.Stats, field));
    }

    /// <summary>A job taken and split into two children (queued, not taken): the parent waits for them.</summary>
    private async Task<(QueueBroker Broker, string Parent, string[] Children)> WaitingParentAsync()
    {
        var parent = await _client.EnqueueAsync("add", new[] { 1, 2 });
        var broker = Broker();
        Assert.Equal(parent, Assert.Single((await broker.TakeAsync(1)).Jobs).Id);
        var children = Enumerable.Range(0, 2).Select(i => $"{parent}.{i}")
            .Select(id => new ChildEnvelope(id, ProtocolJson.Serialize(new JobEnvelope { Id = id, Task = "add", Queue = "default" }), 5)).ToList();
        Assert.Equal(2, await broker.SplitAsync(parent, children, collectFailures: false));
        return (broker, parent, children.Select(c => c.Id).ToArray());
    }

    /// <summary>A job enqueued, then moved by hand to the scheduled set as due, its ready_score set to <paramref name="score"/> ('' removes it; null keeps it).</summary>
    private async Task<string> DueDelayedAsync(string? score)
    {
        var id = await _client.EnqueueAsync("add", new[] { 1, 2 });
        await Db.SortedSetRemoveAsync(_q.Ready, id);
        await Db.SortedSetAddAsync(_q.Scheduled, id, 1);
        if (score == "") await Db.HashDeleteAsync(_q.Job(id), "ready_score");
        else if (score is not null) await Db.HashSetAsync(_q.Job(id), "ready_score", score);
        return id;
    }
}
