using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>The producer client against a real broker (Redis and embedded Garnet), with no node running.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ProducerClientSpecs(BrokerFixture brokers)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();

    private async Task<(JobClient Client, IConnectionMultiplexer Redis)> Connect(BrokerKind kind)
    {
        var redis = await RedisConnection.ConnectAsync(brokers.Url(kind));
        return (new JobClient(redis, new JobClientOptions { KeyPrefix = _prefix }), redis);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Enqueue_writes_the_job_record_and_its_queue_entry_together(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var id = await client.EnqueueAsync("send_email", new { recipient = "ada@example.com" }, new EnqueueOptions { Queue = "emails", Priority = 5 });

        Assert.StartsWith("emails:", id);
        var job = await client.GetAsync(id);
        Assert.NotNull(job);
        Assert.Equal(JobState.Queued, job.State);
        Assert.Equal("send_email", job.Task);
        Assert.Equal("ada@example.com", job.Envelope!.Args.GetProperty("recipient").GetString());
        Assert.Equal(0, job.Attempts);
        var score = await redis.GetDatabase().SortedSetScoreAsync(client.Keys.Queue("emails").Ready, id);
        Assert.Equal(JobIds.ReadyScore(5, job.Envelope.EnqueuedAt), score);
    }

    [Fact]
    public async Task Ttls_of_a_second_or_less_that_would_write_a_job_without_its_key_or_record_are_refused_when_the_client_is_made()
    {
        var (_, redis) = await Connect(BrokerKind.Redis);
        // Sent as PX 0 / PEXPIRE -1: the enqueue failed after its ZADD (a queued id with no record), a cancel deleted the record
        var idempotency = Assert.Throws<ArgumentException>(() => new JobClient(redis, new JobClientOptions { IdempotencyTtl = Timeout.InfiniteTimeSpan }));
        var record = Assert.Throws<ArgumentException>(() => new JobClient(redis, new JobClientOptions { RecordTtl = TimeSpan.Zero }));

        Assert.Equal((nameof(JobClientOptions.IdempotencyTtl), nameof(JobClientOptions.RecordTtl)), (idempotency.ParamName, record.ParamName));
        Assert.Contains("at least 1 s", idempotency.Message);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_ready_made_envelope_a_node_would_dead_letter_is_refused_at_the_call_and_nothing_is_queued(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        JobEnvelope Envelope() => new() { Id = JobIds.New("default"), Task = "add", Queue = "default", EnqueuedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };

        var priority = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync(Envelope() with { Priority = 12 }));
        var noTask = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync(Envelope() with { Task = "" }));
        var timeout = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync(Envelope() with { HardTimeoutMs = 0 }));

        Assert.Contains("priority must be 0-9, got 12", priority.Message);
        Assert.Contains("no task name", noTask.Message);
        Assert.Contains("hard_timeout_ms must be from 1", timeout.Message);
        Assert.Equal(0, await redis.GetDatabase().SortedSetLengthAsync(client.Keys.Queue("default").Ready));
    }

    [Fact]
    public async Task A_wait_with_a_timeout_no_timer_can_hold_is_refused_naming_it()
    {
        var (client, _) = await Connect(BrokerKind.Redis);
        foreach (var timeout in new[] { TimeSpan.FromSeconds(-5), TimeSpan.FromDays(60), TimeSpan.MaxValue })
            Assert.Equal("timeout", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.WaitAsync("default:x", timeout))).ParamName);
    }

    [Fact]
    public async Task A_client_disposed_leaves_the_waits_of_another_client_on_the_same_connection_woken_by_their_jobs()
    {
        // A node's own clients share one connection (its DI client and the operator API's); an app's may too.
        var (client, redis) = await Connect(BrokerKind.Redis);
        var other = new JobClient(redis, new JobClientOptions { KeyPrefix = _prefix });
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        var waiting = client.WaitAsync(id, TimeSpan.FromSeconds(30));
        await other.WaitAsync(await other.EnqueueAsync("add", new[] { 3, 4 }), TimeSpan.FromMilliseconds(200))
            .ContinueWith(_ => { }); // subscribed to the queue's events, then gave up
        await other.DisposeAsync();

        Assert.True(await client.CancelAsync(id)); // the cancel's event must still reach the first client's wait
        var done = await waiting.WaitAsync(TimeSpan.FromSeconds(5)); // before: only at its own 30 s timeout

        Assert.Equal(JobState.Cancelled, done.State);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_countdown_or_a_run_at_time_schedules_the_job_instead_of_queueing_it(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var before = DateTimeOffset.UtcNow;
        var delayed = await client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { Countdown = TimeSpan.FromMinutes(5) });
        var at = DateTimeOffset.UtcNow.AddHours(1);
        var timed = await client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { RunAt = at });

        var q = client.Keys.Queue("default");
        var db = redis.GetDatabase();
        Assert.Equal(JobState.Scheduled, (await client.GetAsync(delayed))!.State);
        Assert.InRange((double)(await db.SortedSetScoreAsync(q.Scheduled, delayed))!, before.AddMinutes(5).ToUnixTimeMilliseconds(), before.AddMinutes(5).ToUnixTimeMilliseconds() + 5_000);
        Assert.Equal(at.ToUnixTimeMilliseconds(), await db.SortedSetScoreAsync(q.Scheduled, timed));
        Assert.Null(await db.SortedSetScoreAsync(q.Ready, delayed));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task The_same_idempotency_key_gives_back_the_same_job_and_never_a_second_one(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var options = new EnqueueOptions { IdempotencyKey = "order-42-receipt" };
        var ids = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.EnqueueAsync("send_email", new { recipient = "a@b.c" }, options)));

        Assert.Single(ids.Distinct());
        Assert.Equal(1, await redis.GetDatabase().SortedSetLengthAsync(client.Keys.Queue("default").Ready));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_job_not_yet_started_can_be_cancelled_and_leaves_its_queue(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        var waiting = client.WaitAsync(id, TimeSpan.FromSeconds(10));

        Assert.True(await client.CancelAsync(id));
        var done = await waiting;
        Assert.Equal(JobState.Cancelled, done.State);
        Assert.False(await client.CancelAsync(id));
        Assert.Equal(JobState.Cancelled, (await client.WaitAsync(id, TimeSpan.Zero)).State); // finished: no time needed
        Assert.Equal(0, await redis.GetDatabase().SortedSetLengthAsync(client.Keys.Queue("default").Ready));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => client.CancelAsync("default:no-such-job"));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Waiting_for_a_job_that_never_finishes_times_out_saying_where_it_is(BrokerKind kind)
    {
        var (client, _) = await Connect(kind);
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => client.WaitAsync(id, TimeSpan.FromMilliseconds(200)));
        Assert.Contains("queued", ex.Message);
        Assert.Null(await client.GetAsync("default:unknown"));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Invalid_options_and_oversized_payloads_are_refused_at_the_call_and_nothing_is_written(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var negative = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync("add", null, new EnqueueOptions { HardTimeout = TimeSpan.FromSeconds(-1) }));
        Assert.Equal("HardTimeout", negative.ParamName);
        var zero = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync("add", null, new EnqueueOptions { MaxAttempts = 0 }));
        Assert.Equal("MaxAttempts", zero.ParamName);
        await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync("add", null, new EnqueueOptions { Queue = "bad queue!" }));
        var big = await Assert.ThrowsAsync<PayloadTooLargeException>(() => client.EnqueueAsync("add", new { blob = new string('x', 600 * 1024) }));
        Assert.Equal(JobDefaults.MaxPayloadBytes, big.Limit);

        var small = new JobClient(redis, new JobClientOptions { KeyPrefix = _prefix, MaxPayloadBytes = 2048 });
        await Assert.ThrowsAsync<PayloadTooLargeException>(() => small.EnqueueAsync("add", new { blob = new string('x', 4096) }));
        Assert.Empty(redis.GetServers()[0].Keys(pattern: _prefix + ":*"));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Enqueue_many_writes_one_job_for_each_arguments_and_returns_their_ids_in_order(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var ids = await client.EnqueueManyAsync("render_report", Enumerable.Range(0, 300).Select(n => new { page = n }),
            new EnqueueOptions { Queue = "reports", Priority = 3 });

        Assert.Equal(300, ids.Distinct().Count());
        for (var n = 0; n < ids.Count; n++)
        {
            var job = await client.GetAsync(ids[n]);
            Assert.Equal(JobState.Queued, job!.State);
            Assert.Equal("render_report", job.Task);
            Assert.Equal(n, job.Envelope!.Args.GetProperty("page").GetInt32());
            Assert.Equal(JobIds.ReadyScore(3, job.Envelope.EnqueuedAt), await redis.GetDatabase().SortedSetScoreAsync(client.Keys.Queue("reports").Ready, ids[n]));
        }
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Enqueue_many_takes_jobs_of_different_tasks_and_queues_each_with_its_own_options(BrokerKind kind)
    {
        var (client, _) = await Connect(kind);
        var first = await client.EnqueueAsync("send_email", new { recipient = "ada@example.com" }, new EnqueueOptions { Queue = "emails", IdempotencyKey = "welcome-ada" });

        var ids = await client.EnqueueManyAsync(
        [
            new JobRequest("send_email", new { recipient = "ada@example.com" }, new EnqueueOptions { Queue = "emails", IdempotencyKey = "welcome-ada" }),
            new JobRequest("render_report", new { page = 1 }, new EnqueueOptions { Queue = "reports", Priority = 7 }),
            new JobRequest("add", new[] { 2, 40 }),
            new JobRequest("render_report", new { page = 2 }, new EnqueueOptions { Queue = "reports", Countdown = TimeSpan.FromHours(1) }),
        ]);

        Assert.Equal(first, ids[0]); // its idempotency key already had a job
        var jobs = await Task.WhenAll(ids.Skip(1).Select(id => client.GetAsync(id)));
        Assert.Equal(["render_report", "add", "render_report"], jobs.Select(j => j!.Task));
        Assert.Equal(["reports", "default", "reports"], jobs.Select(j => j!.Envelope!.Queue));
        Assert.Equal([JobState.Queued, JobState.Queued, JobState.Scheduled], jobs.Select(j => j!.State));
        Assert.Equal(7, jobs[0]!.Envelope!.Priority);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task One_bad_job_in_an_enqueue_many_refuses_the_whole_list_and_nothing_is_written(BrokerKind kind)
    {
        var (_, redis) = await Connect(kind);
        var client = new JobClient(redis, new JobClientOptions { KeyPrefix = _prefix, MaxPayloadBytes = 2048 });
        object?[] args = [new { blob = "fine" }, new { blob = "fine too" }, new { blob = new string('x', 4096) }, new { blob = "never sent" }];

        await Assert.ThrowsAsync<PayloadTooLargeException>(() => client.EnqueueManyAsync("store", args));
        await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueManyAsync(
            [new JobRequest("store", args[0]), new JobRequest("store", args[1], new EnqueueOptions { MaxAttempts = 0 })]));
        // options that name one job cannot name a list of them
        await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueManyAsync("store", args[..2], new EnqueueOptions { IdempotencyKey = "once" }));
        await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueManyAsync("store", args[..2], new EnqueueOptions { JobIdSuffix = "mine" }));
        Assert.Empty(redis.GetServers()[0].Keys(pattern: _prefix + ":*"));
    }

    [Fact]
    public async Task Connect_loads_the_enqueue_script_so_the_first_enqueue_sends_only_its_hash()
    {
        await using var fresh = await RedisServer.StartBinaryAsync();
        Assert.False(await EnqueueScriptLoaded(fresh.Url));

        await using var client = await JobClient.ConnectAsync(fresh.Url);

        Assert.True(await EnqueueScriptLoaded(fresh.Url));
        Assert.StartsWith("default:", await client.EnqueueAsync("add", new[] { 1, 2 }));
    }

    [Fact]
    public async Task Connect_opens_the_connection_ConnectionOptions_describes_named_as_a_producer_in_CLIENT_LIST()
    {
        // ConnectionOptions (its name and its I/O threads, specified in RedisConnectionParseSpecs) is what ConnectAsync
        // connects with; the name is what an operator sees of it in Redis.
        await using var fresh = await RedisServer.StartBinaryAsync();
        Assert.Equal("clusterjobs-client", JobClient.ConnectionOptions(fresh.Url, new JobClientOptions()).ClientName);

        await using var client = await JobClient.ConnectAsync(fresh.Url);

        await using var admin = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{fresh.Port},allowAdmin=true");
        var clients = await admin.GetServer("127.0.0.1", fresh.Port).ClientListAsync();
        Assert.Contains(clients, c => c.Name == "clusterjobs-client");
    }

    [Fact]
    public async Task A_nodes_own_job_client_is_prepared_when_the_node_starts()
    {
        await using var fresh = await RedisServer.StartBinaryAsync();

        await using var node = await TestNode.StartAsync(fresh.Url, _prefix); // no warm-up: nothing of its own enqueues

        Assert.True(await EnqueueScriptLoaded(fresh.Url));
        Assert.Equal(JobState.Succeeded, (await node.Client.WaitAsync(await node.Client.EnqueueAsync("add", new[] { 1, 2 }), TimeSpan.FromSeconds(20))).State);
    }

    [Fact]
    public async Task A_redis_user_that_may_not_load_scripts_still_connects_and_its_jobs_run()
    {
        await using var secured = await RedisServer.StartBinaryAsync(password: "admin-password");
        await using (var admin = await RedisConnection.ConnectAsync(secured.Url))
            await admin.GetDatabase().ExecuteAsync("ACL", "SETUSER", "app", "on", ">app-password", "~*", "&*", "+@all", "-script");
        var app = $"redis://app:app-password@127.0.0.1:{secured.Port}";

        await using var client = await JobClient.ConnectAsync(app);
        Assert.False(await EnqueueScriptLoaded(secured.Url)); // SCRIPT LOAD was refused, and connecting went on
        await using var node = await TestNode.StartAsync(app, _prefix);

        Assert.StartsWith("default:", await client.EnqueueAsync("add", new[] { 1, 2 }));
        Assert.Equal(JobState.Succeeded, (await node.Client.WaitAsync(await node.Client.EnqueueAsync("add", new[] { 1, 2 }), TimeSpan.FromSeconds(20))).State);
    }

    /// <summary>Whether the producer's Enqueue script is in the script cache of the Redis at <paramref name="url"/>.</summary>
    private static async Task<bool> EnqueueScriptLoaded(string url)
    {
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(ProducerScripts.Enqueue)));
        await using var probe = await RedisConnection.ConnectAsync(url);
        return (long)((RedisResult[])(await probe.GetDatabase().ExecuteAsync("SCRIPT", "EXISTS", sha))!)[0] == 1;
    }

    [Fact]
    public async Task A_wrong_redis_password_is_a_clear_error_at_connect()
    {
        await using var secured = await RedisServer.StartBinaryAsync(password: "right-password");
        var wrong = secured.Url.Replace("right-password", "wrong-password");
        var ex = await Assert.ThrowsAsync<RedisUnavailableException>(() => JobClient.ConnectAsync(wrong));
        Assert.Contains("refused the credentials", ex.Message);
        Assert.DoesNotContain("wrong-password", ex.Message);

        var none = await Assert.ThrowsAsync<RedisUnavailableException>(() => JobClient.ConnectAsync($"redis://127.0.0.1:{secured.Port}"));
        Assert.Contains("password", none.Message);

        await using var client = await JobClient.ConnectAsync(secured.Url);
        Assert.StartsWith("default:", await client.EnqueueAsync("add", new[] { 1, 2 }));
    }

    [Fact]
    public async Task A_wrong_garnet_password_is_the_same_clear_error()
    {
        using var garnet = new ClusterJobs.Node.Embedded.EmbeddedGarnet(password: "right-password", memory: "64m");
        var ex = await Assert.ThrowsAsync<RedisUnavailableException>(() => JobClient.ConnectAsync($"redis://:wrong@127.0.0.1:{garnet.Port}"));
        Assert.Contains("refused the credentials", ex.Message);
        await using var client = await JobClient.ConnectAsync($"redis://:right-password@127.0.0.1:{garnet.Port}");
        Assert.NotNull(await client.EnqueueAsync("add", new[] { 1, 2 }));
    }

    [Fact]
    public async Task A_producer_connecting_while_Redis_loads_its_data_after_a_restart_waits_for_it_and_then_enqueues()
    {
        await using var loading = await RedisServer.StartLoadingAsync();
        Assert.True(await loading.IsLoadingAsync());

        await using var client = await JobClient.ConnectAsync(loading.Url);

        Assert.False(await loading.IsLoadingAsync());
        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        Assert.Equal(JobState.Queued, (await client.GetAsync(id))!.State);
    }

    [Fact]
    public async Task Many_producers_connecting_at_once_while_Redis_loads_its_data_all_wait_for_it()
    {
        // Redis answers LOADING as an error to a command, or, to one sent while StackExchange.Redis still sets the
        // connection up, in a way it reports as a connection failure of type Loading: both are waits. Many connects
        // at once meet Redis in both moments.
        await using var loading = await RedisServer.StartLoadingAsync();
        Assert.True(await loading.IsLoadingAsync());

        var clients = await Task.WhenAll(Enumerable.Range(0, 48).Select(async i =>
        {
            await Task.Delay(i * 10);
            return await JobClient.ConnectAsync(loading.Url);
        }));

        try
        {
            Assert.False(await loading.IsLoadingAsync());
            foreach (var client in clients) Assert.NotNull(await client.EnqueueAsync("add", new[] { 1, 2 }));
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_wait_for_a_loading_Redis_that_is_cancelled_says_that_Redis_was_still_loading()
    {
        await using var loading = await RedisServer.StartLoadingAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var ex = await Assert.ThrowsAsync<RedisUnavailableException>(() => JobClient.ConnectAsync(loading.Url, cancellationToken: cancel.Token));

        Assert.Contains("was still loading its dataset", ex.Message);
    }

    [Fact]
    public async Task Nothing_listening_is_a_clear_error_at_connect_after_one_attempt()
    {
        // A connect timeout of 2 s: one attempt ends within it (a refusal can still wait it out, when it comes before
        // StackExchange.Redis waits for it); StackExchange.Redis's own three attempts each waited it out after the first
        // (at least 4 s here, 10 s with its default 5 s).
        var url = $"127.0.0.1:{RedisServer.PortNoOneElseIsGiven()},connectTimeout=2000";
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var ex = await Assert.ThrowsAsync<RedisUnavailableException>(() => JobClient.ConnectAsync(url));
            Assert.Contains("Could not connect to Redis", ex.Message);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the error came after {clock.Elapsed}");
        }
    }

    [Fact]
    public async Task Replay_all_and_purge_go_through_every_dead_letter_across_pages_and_step_over_those_they_must_leave()
    {
        var (client, redis) = await Connect(BrokerKind.Redis);
        var db = redis.GetDatabase();
        var q = client.Keys.Queue("q");
        async Task<string> DeadLetter(string task, bool withEnvelope = true, bool replayed = false)
        {
            var id = await client.EnqueueAsync(task, new[] { 1 }, new EnqueueOptions { Queue = "q" });
            await db.SortedSetRemoveAsync(q.Ready, id); // dead-lettered as a node leaves it
            await db.HashSetAsync(q.Job(id), "state", "dead_lettered");
            if (!withEnvelope) await db.HashDeleteAsync(q.Job(id), "envelope");
            if (replayed) await db.HashSetAsync(q.Job(id), "replayed_as", "q:elsewhere");
            await db.ListRightPushAsync(q.Dead, id);
            return id;
        }
        // A first page and more of letters replay-all cannot replay, then the ones it can among others it must leave.
        var unreadable = new List<string>();
        for (var i = 0; i < 210; i++) unreadable.Add(await DeadLetter("add", withEnvelope: false));
        var replayable = new List<string>();
        var others = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            replayable.Add(await DeadLetter("add"));
            if (i % 3 == 0) others.Add(await DeadLetter("other"));
            if (i % 10 == 0) others.Add(await DeadLetter("add", replayed: true));
            if (i % 10 == 5)
            {
                var gone = JobIds.New("q");
                await db.ListRightPushAsync(q.Dead, gone); // its record expired
                others.Add(gone);
            }
        }

        var replayed = await client.ReplayAllAsync("q", task: "add");

        Assert.Equal(replayable.Order(), (await client.GetManyAsync(replayed)).Select(j => j.ReplayOf!).Order());
        var left = (await db.ListRangeAsync(q.Dead)).Select(id => (string)id!).ToList();
        Assert.Equal(unreadable.Concat(others.Where(left.Contains)), left); // the others stayed, in their order
        Assert.Equal(others.Count, left.Count - unreadable.Count);

        Assert.Equal(10, await client.PurgeDeadLettersAsync("q", task: "other"));
        Assert.Equal(left.Count - 10, await db.ListLengthAsync(q.Dead));
        Assert.Equal(left.Count - 10, await client.PurgeDeadLettersAsync("q")); // the gone ids' too
        Assert.Equal(0, await db.ListLengthAsync(q.Dead));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task The_dead_list_walk_reads_the_letters_there_when_it_began_and_no_letter_added_after(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var db = redis.GetDatabase();
        var dead = client.Keys.Queue("q").Dead;
        string[] old = ["q:old0", "q:old1", "q:old2", "q:old3", "q:old4"];
        await db.ListRightPushAsync(dead, old.Select(id => (RedisValue)id).ToArray());
        var walk = await DeadListWalk.StartAsync(client, dead, "walk", default);
        var seen = new List<string>();

        while (await walk.NextAsync(3, default) is { Count: > 0 } ids)
            foreach (var id in ids)
            {
                seen.Add(id);
                walk.Stays(id);
                await db.ListRightPushAsync(dead, id + "-again"); // a node dead-letters a job meanwhile
                if (id == old[0]) await db.ListRemoveAsync(dead, old[3]); // and another caller takes out one ahead of the walk
            }

        Assert.Equal(old.Except([old[3]]), seen); // it ends at the letter last when it began: no "-again" read
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task The_dead_list_walk_misses_no_old_letter_when_others_take_letters_out_and_reads_at_most_one_new_letter_for_each(BrokerKind kind)
    {
        var (client, redis) = await Connect(kind);
        var db = redis.GetDatabase();
        var dead = client.Keys.Queue("q").Dead;
        var old = Enumerable.Range(0, 10).Select(i => $"q:old{i}").ToArray();
        await db.ListRightPushAsync(dead, old.Select(id => (RedisValue)id).ToArray());
        var walk = await DeadListWalk.StartAsync(client, dead, "walk", default);

        Assert.Equal(old[..3], await walk.NextAsync(3, default));
        walk.Stays(old[0]);
        walk.Stays(old[1]);
        await db.ListRemoveAsync(dead, old[2]); // the walk's own call took this one out
        walk.TookOut();
        // Meanwhile nodes add five letters, and another caller takes out one behind the walk and the walk's last one.
        for (var i = 0; i < 5; i++) await db.ListRightPushAsync(dead, $"q:new{i}");
        await db.ListRemoveAsync(dead, old[0]);
        await db.ListRemoveAsync(dead, old[9]);
        var seen = new List<string>();
        while (await walk.NextAsync(3, default) is { Count: > 0 } ids)
            foreach (var id in ids)
            {
                seen.Add(id);
                walk.Stays(id);
            }

        // From the head again (old1 stayed and is read again), every old letter left, and two new ones: one for each
        // letter the other caller took out, not all five.
        Assert.Equal([old[1], .. old[3..9], "q:new0", "q:new1"], seen);
    }
}
