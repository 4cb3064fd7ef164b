using System.Collections.Concurrent;
using System.Diagnostics;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// The producer client while Redis restarts: an enqueue whose Redis could not be reached is sent again for up to
/// <see cref="JobClientOptions.EnqueueRetryFor"/>, makes exactly one job, and after that says clearly what happened;
/// a wait for a job rides the outage out within its timeout.
/// Each spec has a Redis of its own (killed, restarted on the same port and files).
/// </summary>
public sealed class ProducerOutageSpecs
{
    private const string Durable = "--appendfsync always"; // what Redis acknowledged survives its crash

    [Fact]
    public async Task Enqueues_in_flight_or_sent_while_Redis_restarts_are_sent_again_and_each_makes_exactly_one_job()
    {
        await using var redis = await RestartableRedis.StartAsync();
        await using var client = await JobClient.ConnectAsync(redis.Current.Url);
        var ids = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        // Four producers back to back, so that some enqueues are in flight when Redis dies.
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++) ids.Add(await client.EnqueueAsync("add", new[] { p, i }));
        })).ToArray();

        await Task.Delay(300);
        // And a burst of pipelined enqueues that Redis is still working through when it dies.
        var burst = client.EnqueueManyAsync("add", Enumerable.Range(0, 5_000).Select(i => (object?)new[] { -1, i }));
        redis.Current.Kill();
        var killedAt = ids.Count;
        await Task.Delay(1_000);
        var restarted = await redis.RestartAsync();
        await Task.Delay(500);
        stop.Cancel();
        await Task.WhenAll(producers); // none threw
        foreach (var id in await burst) ids.Add(id);

        Assert.True(ids.Count > killedAt, "no enqueue succeeded after the restart");
        Assert.Equal(ids.Count, ids.Distinct().Count());
        await using var admin = await restarted.ConnectAsync();
        var db = admin.GetDatabase();
        Assert.Equal(ids.Count, await db.SortedSetLengthAsync(client.Keys.Queue("default").Ready)); // no job twice, none lost
        foreach (var id in ids) Assert.Equal(JobState.Queued, (await client.GetAsync(id))?.State);
    }

    [Fact]
    public async Task An_enqueue_that_cannot_reach_Redis_for_longer_than_its_retry_time_says_so_naming_the_job()
    {
        await using var redis = await RedisServer.StartBinaryAsync(port: RedisServer.PortNoOneElseIsGiven());
        await using var client = await JobClient.ConnectAsync(redis.Url, new JobClientOptions { EnqueueRetryFor = TimeSpan.FromSeconds(1) });
        redis.Kill();

        var ex = await Assert.ThrowsAsync<RedisUnavailableException>(() =>
            client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { JobIdSuffix = "order-42" }));

        Assert.Contains("Could not enqueue job 'default:order-42'", ex.Message);
        Assert.Contains("tried for 1 s", ex.Message);
        Assert.Contains("same JobIdSuffix or IdempotencyKey makes no second job", ex.Message);
    }

    [Fact]
    public async Task A_read_or_a_cancel_that_cannot_reach_Redis_for_longer_than_its_retry_time_says_so_naming_the_job()
    {
        await using var redis = await RedisServer.StartBinaryAsync(port: RedisServer.PortNoOneElseIsGiven());
        await using var client = await JobClient.ConnectAsync(redis.Url, new JobClientOptions { CallRetryFor = TimeSpan.FromSeconds(1) });
        await using var patient = await JobClient.ConnectAsync(redis.Url); // tries for 10 s
        redis.Kill();

        var read = await Assert.ThrowsAsync<RedisUnavailableException>(() => client.GetAsync("default:order-42"));
        Assert.StartsWith("Could not read job 'default:order-42': Redis could not be reached (", read.Message);
        Assert.EndsWith("tried for 1 s.", read.Message);
        var cancel = await Assert.ThrowsAsync<RedisUnavailableException>(() => client.CancelAsync("default:order-42"));
        Assert.StartsWith("Could not cancel job 'default:order-42': Redis could not be reached (", cancel.Message);
        Assert.EndsWith("tried for 1 s.", cancel.Message);

        // A caller's token stops the tries sooner (a web request that went away).
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => patient.GetAsync("default:order-42", stop.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => patient.CancelAsync("default:order-42", stop.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_read_and_a_cancel_sent_while_Redis_restarts_are_sent_again_and_answer_once_it_is_back()
    {
        await using var redis = await RestartableRedis.StartAsync();
        using var connection = await FailFastConnectionAsync(redis.Current.Url);
        await using var client = new JobClient(connection);
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        redis.Current.Kill();

        var read = client.GetAsync(id);
        var cancel = client.CancelAsync(id);
        await Task.Delay(1_000);
        Assert.False(read.IsCompleted, read.Exception?.ToString());
        Assert.False(cancel.IsCompleted, cancel.Exception?.ToString());
        await redis.RestartAsync();

        Assert.Equal(id, (await read)!.Id);
        Assert.True(await cancel);
        Assert.Equal(JobState.Cancelled, (await client.GetAsync(id))!.State);
    }

    [Fact]
    public async Task Lists_and_schedules_read_or_written_while_Redis_restarts_are_sent_again_and_answer_once_it_is_back()
    {
        await using var redis = await RestartableRedis.StartAsync();
        // A budget well past a restart's on a loaded machine: the spec is about being sent again, not about 10 s.
        using var connection = await FailFastConnectionAsync(redis.Current.Url);
        await using var client = new JobClient(connection, new JobClientOptions { CallRetryFor = TimeSpan.FromSeconds(30) });
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        await client.AddOrUpdateRecurringAsync("nightly", "0 3 * * *", "report");
        await client.AddOrUpdateRecurringAsync("weekly", "0 4 * * 0", "report");
        await client.AddOrUpdateRecurringAsync("monthly", "0 5 1 * *", "report");
        await client.PauseRecurringAsync("default", "monthly");
        using (var admin = await RedisConnection.ConnectAsync(redis.Current.Url))
        {
            var q = client.Keys.Queue("default");
            var db = admin.GetDatabase();
            await db.SortedSetRemoveAsync(q.Ready, id); // dead-lettered as a node leaves it
            await db.HashSetAsync(q.Job(id), "state", "dead_lettered");
            await db.ListRightPushAsync(q.Dead, id);
        }
        redis.Current.Kill();
        while (connection.IsConnected) await Task.Delay(10); // each call's first try then fails unsent

        var jobs = client.GetManyAsync([id]);
        var dead = client.ListDeadLettersAsync("default");
        var deadOfTask = client.ListDeadLettersAsync("default", task: "add");
        var schedules = client.ListRecurringAsync("default");
        var schedule = client.GetRecurringAsync("default", "nightly");
        var written = client.AddOrUpdateRecurringAsync("hourly", "0 * * * *", "report");
        var paused = client.PauseRecurringAsync("default", "nightly");
        var resumed = client.ResumeRecurringAsync("default", "monthly");
        var removed = client.RemoveRecurringAsync("default", "weekly");
        var removedNone = client.RemoveRecurringAsync("default", "never-written");
        var triggered = client.TriggerRecurringAsync("default", "nightly");
        Task[] calls = [jobs, dead, deadOfTask, schedules, schedule, written, paused, resumed, removed, removedNone, triggered];
        await Task.Delay(1_000);
        Assert.All(calls, call => Assert.False(call.IsCompleted, call.Exception?.ToString()));
        await redis.RestartAsync();

        Assert.Equal(id, Assert.Single(await jobs).Id);
        Assert.Equal(id, Assert.Single(await dead).Id);
        Assert.Equal(id, Assert.Single(await deadOfTask).Id);
        Assert.Contains("nightly", (await schedules).Select(s => s.Name));
        Assert.Equal("0 3 * * *", (await schedule)!.Cron);
        Assert.Equal("0 * * * *", (await written).Cron);
        Assert.True(await paused);
        Assert.True(await resumed);
        Assert.True(await removed);
        Assert.False(await removedNone); // no try before the one that answered was sent: none could have removed it
        Assert.Equal("report", (await client.GetAsync(await triggered))!.Task);
        var left = await client.ListRecurringAsync("default");
        Assert.Equal(["hourly", "monthly", "nightly"], left.Select(s => s.Name).Order());
        Assert.NotNull(left.Single(s => s.Name == "nightly").PausedAt);
        Assert.Null(left.Single(s => s.Name == "monthly").PausedAt);
    }

    [Fact]
    public async Task Schedule_changes_whose_first_try_landed_but_timed_out_answer_as_made_when_sent_again()
    {
        await using var redis = await RedisServer.StartBinaryAsync();
        // Built on its own connection, not ConnectAsync, as the replay's spec below.
        using var impatient = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",asyncTimeout=500,syncTimeout=500");
        await using var client = new JobClient(impatient);
        await client.AddOrUpdateRecurringAsync("to-pause", "0 3 * * *", "report");
        await client.AddOrUpdateRecurringAsync("to-resume", "0 4 * * *", "report");
        await client.AddOrUpdateRecurringAsync("to-remove", "0 5 * * *", "report");
        await client.PauseRecurringAsync("default", "to-resume");
        using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",allowAdmin=true");
        // Writes (scripts) held for 3 s, reads not: each change's first try waits in Redis past the client's 500 ms and is
        // sent again (and again); the first runs when the pause ends, and the tries after it find the change made.
        await admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("CLIENT", "PAUSE", 3000, "WRITE");

        var clock = Stopwatch.StartNew();
        bool[] answers = await Task.WhenAll(client.PauseRecurringAsync("default", "to-pause"),
            client.ResumeRecurringAsync("default", "to-resume"), client.RemoveRecurringAsync("default", "to-remove"));
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1), $"the changes answered in {clock.Elapsed}, before the pause ended: their first tries did not time out");

        Assert.Equal([true, true, true], answers);
        var left = await client.ListRecurringAsync("default");
        Assert.Equal(["to-pause", "to-resume"], left.Select(s => s.Name).Order());
        Assert.NotNull(left.Single(s => s.Name == "to-pause").PausedAt);
        Assert.Null(left.Single(s => s.Name == "to-resume").PausedAt);
    }

    /// <summary>
    /// A connection whose calls fail at once while Redis is down: without it StackExchange.Redis holds them in its backlog
    /// and sends them when it reconnects, which carries them over a restart shorter than its 5 s timeout by itself, and
    /// these specs are about the client's own tries.
    /// </summary>
    private static async Task<ConnectionMultiplexer> FailFastConnectionAsync(string url)
    {
        var options = RedisConnection.Parse(url);
        options.BacklogPolicy = BacklogPolicy.FailFast;
        return await ConnectionMultiplexer.ConnectAsync(options);
    }

    [Fact]
    public async Task A_cancel_whose_first_try_landed_but_timed_out_answers_true_when_sent_again()
    {
        await using var redis = await RedisServer.StartBinaryAsync(extraArgs: "--enable-debug-command local");
        // A client that gives up on a reply after 500 ms, and Redis busy for 3 s: the first try times out while it waits
        // in Redis, then runs (cancelling the job); the second finds the job cancelled.
        // Built on its own connection, not ConnectAsync: loading the Enqueue script at connect, in one try, could time out
        // at 500 ms on a busy machine (it did once); the enqueue below tries again.
        using var impatient = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",asyncTimeout=500,syncTimeout=500");
        await using var client = new JobClient(impatient);
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",allowAdmin=true,asyncTimeout=10000,syncTimeout=10000");
        var busy = admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("DEBUG", "SLEEP", 3);
        await Task.Delay(100);

        var clock = Stopwatch.StartNew();
        Assert.True(await client.CancelAsync(id));
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1), $"the cancel answered in {clock.Elapsed}, before Redis slept: its first try did not time out");

        await busy;
        Assert.Equal(JobState.Cancelled, (await client.GetAsync(id))!.State);
        Assert.Equal("1", (string?)await admin.GetDatabase().HashGetAsync(client.Keys.Queue("default").Stats, "cancelled")); // cancelled once
    }

    [Fact]
    public async Task A_wait_whose_time_is_up_while_Redis_hangs_ends_within_a_second_of_its_timeout()
    {
        // Its last look at the job is bounded: it waited out StackExchange.Redis's own timeout (5 s) past the caller's.
        await using var redis = await RedisServer.StartBinaryAsync(extraArgs: "--enable-debug-command local");
        await using var client = await JobClient.ConnectAsync(redis.Url);
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",allowAdmin=true,asyncTimeout=20000,syncTimeout=20000");
        var hung = admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("DEBUG", "SLEEP", 8);
        await Task.Delay(100);

        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<TimeoutException>(() => client.WaitAsync(id, TimeSpan.FromSeconds(1)));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3.5), $"the wait of 1 s ended after {clock.Elapsed}");
        Assert.Contains("its state could not be read within 1 s", error.Message);
        await hung;
    }

    [Fact]
    public async Task A_replay_whose_first_try_landed_but_timed_out_answers_the_new_job_when_sent_again()
    {
        await using var redis = await RedisServer.StartBinaryAsync();
        // Built on its own connection, not ConnectAsync: loading the Enqueue script at connect, in one try, could time out
        // at 500 ms on a busy machine (it did once); the enqueue below tries again.
        using var impatient = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",asyncTimeout=500,syncTimeout=500");
        await using var client = new JobClient(impatient);
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",allowAdmin=true");
        var db = admin.GetDatabase();
        var q = client.Keys.Queue("default");
        // Dead-lettered as a node leaves it (no node here: the spec is about the client's tries).
        await db.SortedSetRemoveAsync(q.Ready, id);
        await db.HashSetAsync(q.Job(id), "state", "dead_lettered");
        await db.ListRightPushAsync(q.Dead, id);
        // Writes (scripts) held for 3 s, reads not: the replay reads the job, its script waits in Redis past the client's
        // 500 ms, is sent again (and again), and runs when the pause ends; the tries after it find the job replayed.
        await admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("CLIENT", "PAUSE", 3000, "WRITE");

        var clock = Stopwatch.StartNew();
        var newId = await client.ReplayAsync(id);
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1), $"the replay answered in {clock.Elapsed}, before the pause ended: its first try did not time out");

        Assert.Equal(newId, (await client.GetAsync(id))!.ReplayedAs);
        Assert.Equal(id, (await client.GetAsync(newId))!.ReplayOf);
        Assert.Equal(0, await db.ListLengthAsync(q.Dead));
        Assert.Equal(1, await db.SortedSetLengthAsync(q.Ready)); // replayed once
    }

    [Fact]
    public async Task A_replay_all_whose_page_landed_but_timed_out_answers_every_new_job_once_and_a_purge_then_deletes_them_all()
    {
        await using var redis = await RedisServer.StartBinaryAsync();
        using var impatient = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",asyncTimeout=500,syncTimeout=500");
        await using var client = new JobClient(impatient);
        using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",allowAdmin=true");
        var db = admin.GetDatabase();
        var q = client.Keys.Queue("default");
        async Task<List<string>> DeadLetters(int count)
        {
            var ids = new List<string>();
            for (var i = 0; i < count; i++)
            {
                var id = await client.EnqueueAsync("add", new[] { i, 1 });
                await db.SortedSetRemoveAsync(q.Ready, id);
                await db.HashSetAsync(q.Job(id), "state", "dead_lettered");
                await db.ListRightPushAsync(q.Dead, id);
                ids.Add(id);
            }
            return ids;
        }
        var letters = await DeadLetters(5);
        // Writes held for 3 s, reads not: the page's replays wait in Redis past the client's 500 ms, are sent again, and
        // run when the pause ends; the tries after find them made (by this call: the new ids are its own).
        await admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("CLIENT", "PAUSE", 3000, "WRITE");

        var replayed = await client.ReplayAllAsync("default");

        Assert.Equal(5, replayed.Count);
        Assert.Equal(letters, await Task.WhenAll(replayed.Select(async id => (await client.GetAsync(id))!.ReplayOf!)));
        Assert.Equal(5, await db.SortedSetLengthAsync(q.Ready)); // each replayed once
        Assert.Equal(0, await db.ListLengthAsync(q.Dead));

        // The same for a purge: the page's deletions land during the pause, the resends find them gone.
        var doomed = await DeadLetters(4);
        await admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("CLIENT", "PAUSE", 3000, "WRITE");
        var purged = await client.PurgeDeadLettersAsync("default");
        Assert.InRange(purged, 0, 4); // leaves out the letters whose first send landed (documented)
        Assert.Equal(0, await db.ListLengthAsync(q.Dead));
        foreach (var id in doomed) Assert.False(await db.KeyExistsAsync(q.Job(id)));
    }

    [Fact]
    public async Task An_error_Redis_answers_with_is_not_sent_again()
    {
        await using var redis = await RedisServer.StartBinaryAsync();
        using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",allowAdmin=true");
        await using var client = await JobClient.ConnectAsync(redis.Url);
        await admin.GetDatabase().StringSetAsync(client.Keys.Queue("default").Ready, "not a sorted set");
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        await server.ConfigResetStatisticsAsync();
        var clock = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<RedisServerException>(() => client.EnqueueAsync("add", new[] { 1, 2 }));

        Assert.Contains("WRONGTYPE", ex.Message);
        var stats = (await server.InfoAsync("commandstats")).SelectMany(g => g).ToDictionary(kv => kv.Key, kv => kv.Value);
        long Calls(string command) => stats.TryGetValue($"cmdstat_{command}", out var v) ? long.Parse(v.Split(',')[0].Split('=')[1]) : 0;
        Assert.Equal(1, Calls("evalsha") + Calls("eval"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_wait_begun_while_Redis_is_down_waits_out_the_outage_and_later_waits_on_that_queue_still_work()
    {
        await using var redis = await RestartableRedis.StartAsync();
        await using var client = await JobClient.ConnectAsync(redis.Current.Url);
        var first = await client.EnqueueAsync("add", new[] { 1, 2 });
        var second = await client.EnqueueAsync("add", new[] { 3, 4 });
        redis.Current.Kill();

        // The client's first wait on this queue: it subscribes to the queue's events while nothing answers.
        var waiting = client.WaitAsync(first, TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(7)); // past StackExchange.Redis's own 5 s timeout
        Assert.False(waiting.IsCompleted, waiting.Exception?.ToString());

        var restarted = await redis.RestartAsync();
        await using var other = await JobClient.ConnectAsync(restarted.Url);
        Assert.True(await other.CancelAsync(first));
        Assert.Equal(JobState.Cancelled, (await waiting).State);

        // The failed subscription was not kept: a later wait on the same queue is woken too, and by one handler
        // (a failed SUBSCRIBE left its handler registered, so each message was handled once more per failed try).
        var later = client.WaitAsync(second, TimeSpan.FromSeconds(30));
        await Task.Delay(500); // its first read done
        await using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(restarted.Url) + ",allowAdmin=true");
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        await server.ConfigResetStatisticsAsync();
        Assert.True(await other.CancelAsync(second));
        Assert.Equal(JobState.Cancelled, (await later).State);
        await Task.Delay(500);
        var reads = (await server.InfoAsync("commandstats")).SelectMany(g => g).FirstOrDefault(kv => kv.Key == "cmdstat_hgetall").Value;
        Assert.StartsWith("calls=1,", reads);
    }

    [Fact]
    public async Task A_wait_rides_out_a_Redis_restart_that_answers_LOADING_while_it_reads_its_data()
    {
        await using var redis = await RestartableRedis.StartAsync(appendOnly: false, extraArgs: "--enable-debug-command local");
        await using var client = await JobClient.ConnectAsync(redis.Current.Url);
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Current.Url) + ",allowAdmin=true"))
        {
            var server = admin.GetServer(admin.GetEndPoints()[0]);
            await server.ExecuteAsync("DEBUG", "POPULATE", 60_000, "filler"); // seconds to load, slowed per key below
            await server.ExecuteAsync("SAVE");
        }
        var waiting = client.WaitAsync(id, TimeSpan.FromSeconds(60));
        await Task.Delay(300); // subscribed and first read done

        redis.Current.Kill();
        var restarted = await redis.RestartAsync("--key-load-delay 50 --loading-process-events-interval-bytes 1024");
        Assert.True(await restarted.IsLoadingAsync());
        // The client reconnects while Redis still loads and re-reads the job (a completion may have been missed): LOADING.
        while (await restarted.IsLoadingAsync()) await Task.Delay(100);
        Assert.False(waiting.IsCompleted, waiting.Exception?.ToString());

        await using var other = await JobClient.ConnectAsync(restarted.Url);
        Assert.True(await other.CancelAsync(id));
        Assert.Equal(JobState.Cancelled, (await waiting).State);
    }

    /// <summary>
    /// A Redis of the spec's own, on a port no other spec is given, that the spec kills and starts again on the same port
    /// and files; disposing stops whichever is running.
    /// </summary>
    private sealed class RestartableRedis : IAsyncDisposable
    {
        private readonly List<RedisServer> _started = [];
        private readonly bool _appendOnly;

        private RestartableRedis(bool appendOnly) => _appendOnly = appendOnly;

        public RedisServer Current => _started[^1];

        public static async Task<RestartableRedis> StartAsync(bool appendOnly = true, string extraArgs = Durable)
        {
            var redis = new RestartableRedis(appendOnly);
            redis._started.Add(await RedisServer.StartBinaryAsync(appendOnly: appendOnly, port: RedisServer.PortNoOneElseIsGiven(), extraArgs: extraArgs));
            return redis;
        }

        /// <summary>Starts Redis again on the files of the one before (killed by the spec first).</summary>
        public async Task<RedisServer> RestartAsync(string extraArgs = Durable)
        {
            _started.Add(await RedisServer.StartBinaryAsync(appendOnly: _appendOnly, port: Current.Port, dir: Current.Dir, extraArgs: extraArgs));
            return Current;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var server in _started) await server.DisposeAsync();
        }
    }
}
