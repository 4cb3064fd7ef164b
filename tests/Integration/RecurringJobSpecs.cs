using System.Collections.Concurrent;
using Akka.Cluster;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Recurring;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// Recurring jobs (Celery beat, Hangfire's RecurringJob): schedules a producer writes to Redis, fired by the nodes that
/// serve the queue, one job per run however many nodes there are, with runs missed while no node served the queue
/// made up once.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class RecurringJobSpecs(BrokerFixture brokers, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private readonly List<TestNode> _nodes = [];
    private IConnectionMultiplexer _redis = null!;
    private JobClient _client = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisConnection.ConnectAsync(brokers.RealRedisUrl);
        _client = new JobClient(_redis, new JobClientOptions { KeyPrefix = _prefix });
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        await _client.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task A_schedule_every_second_runs_once_a_second_on_a_two_node_cluster_never_twice_for_one_run()
    {
        var seedPort = RedisServer.FreePort();
        await StartNodeAsync(new ClusterBootstrap { Host = "127.0.0.1", Port = seedPort, Seeds = [ClusterProcess.SeedAddress(seedPort)] });
        await StartNodeAsync(new ClusterBootstrap { Host = "127.0.0.1", Port = RedisServer.FreePort(), Seeds = [ClusterProcess.SeedAddress(seedPort)] });
        await ClusterRun.WaitUntilAsync(() => Task.FromResult(_nodes.All(n =>
            Cluster.Get(n.System).State.Members.Count(m => m.Status == MemberStatus.Up) == 2)), Wait, "2 members Up");

        var schedule = await _client.AddOrUpdateRecurringAsync("heartbeat", "* * * * * *", "recurring_run", new { key = _prefix });
        var runs = RecurringRunTask.For(_prefix);
        await ClusterRun.WaitUntilAsync(() => Task.FromResult(runs.Count >= 4), Wait, "4 runs");
        await _client.RemoveRecurringAsync("default", "heartbeat");
        // Every job the schedule made, run to its end: one handler run each.
        var made = await JobsOfAsync("heartbeat");
        foreach (var id in made) await _client.WaitAsync(id, Wait);
        await Task.Delay(RecurringSchedulerActor.PollInterval + TimeSpan.FromMilliseconds(200));

        output.WriteLine(string.Join("\n", runs.Select(r => $"{r.JobId} on {r.Node}")));
        Assert.Equal(made.Count, (await JobsOfAsync("heartbeat")).Count); // removed: nothing fired since
        var ids = runs.Select(r => r.JobId).ToList();
        Assert.Equal(made.Order(), ids.Order()); // each job ran, once
        var runTimes = ids.Select(id => long.Parse(id[(id.LastIndexOf(':') + 1)..])).Order().ToList();
        Assert.All(runTimes, ms => Assert.Equal(0, ms % 1_000)); // each job is named by its run: whole seconds
        Assert.Equal(schedule.NextRunAt!.Value.ToUnixTimeMilliseconds(), runTimes[0]);
        Assert.Null(await _client.GetRecurringAsync("default", "heartbeat"));
    }

    [Fact]
    public async Task Of_two_nodes_that_read_the_same_due_run_only_the_first_fires_it_and_a_rewritten_schedule_is_not_fired_or_stopped_from_a_stale_read()
    {
        await _client.AddOrUpdateRecurringAsync("sync", "0 4 * * *", "recurring_run", new { key = _prefix });
        var q = _client.Keys.Queue("default");
        var db = _redis.GetDatabase();
        var run = DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeMilliseconds() / 1000 * 1000;
        await db.SortedSetAddAsync(q.Recurring, "sync", run);
        var fields = await db.HashGetAsync(q.RecurringSchedule("sync"), ["cron", "time_zone", "template", "version"]); // as a node reads it
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        // Two nodes' firers, both having read the same run.
        var first = new RecurringFirer(() => _redis, _client.Keys, "default", "node-a", JobDefaults.MaxPayloadBytes).FireCall("sync", run, now, fields, out _)!.Value;
        var second = new RecurringFirer(() => _redis, _client.Keys, "default", "node-b", JobDefaults.MaxPayloadBytes).FireCall("sync", run, now, fields, out _)!.Value;

        Assert.Equal(1, (long)await db.ScriptEvaluateAsync(RecurringScripts.Fire, first.Keys, first.Values));
        var moved = await db.SortedSetScoreAsync(q.Recurring, "sync");
        Assert.Equal(0, (long)await db.ScriptEvaluateAsync(RecurringScripts.Fire, second.Keys, second.Values));
        Assert.Equal(moved, await db.SortedSetScoreAsync(q.Recurring, "sync"));
        Assert.True(moved > now);
        Assert.Equal(JobState.Queued, (await _client.GetAsync($"default:recurring:sync:{run}"))!.State);

        // Rewritten (new arguments, same cron) after a node read it: neither that node's Fire nor its Stop acts on it.
        await db.SortedSetAddAsync(q.Recurring, "sync", run - 86_400_000);
        var stale = new RecurringFirer(() => _redis, _client.Keys, "default", "node-a", JobDefaults.MaxPayloadBytes)
            .FireCall("sync", run - 86_400_000, now, fields, out _)!.Value;
        await _client.AddOrUpdateRecurringAsync("sync", "0 4 * * *", "recurring_run", new { key = "v2" });
        Assert.Equal(0, (long)await db.ScriptEvaluateAsync(RecurringScripts.Fire, stale.Keys, stale.Values));
        Assert.Equal(0, (long)await db.ScriptEvaluateAsync(RecurringScripts.Stop, [q.Recurring, q.RecurringSchedule("sync")],
            ["sync", run - 86_400_000, "stale", fields[3]]));
        Assert.Equal(run - 86_400_000, await db.SortedSetScoreAsync(q.Recurring, "sync"));
        Assert.Null((await _client.GetRecurringAsync("default", "sync"))!.Error);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Runs_missed_while_no_node_served_the_queue_make_one_job_when_a_node_comes_back_then_it_keeps_to_its_cron(BrokerKind kind)
    {
        await UseBrokerAsync(kind);
        var daily = await _client.AddOrUpdateRecurringAsync("report", "0 2 * * *", "recurring_run", new { key = _prefix },
            new RecurringOptions { Queue = "reports", Priority = 3 });
        // Three days without a node: the schedule's next run is three days ago.
        var missedRun = daily.NextRunAt!.Value.AddDays(-3).ToUnixTimeMilliseconds();
        await _redis.GetDatabase().SortedSetAddAsync(_client.Keys.Queue("reports").Recurring, "report", missedRun);

        await StartNodeAsync(queues: "reports", kind: kind);
        var runs = RecurringRunTask.For(_prefix);
        await ClusterRun.WaitUntilAsync(() => Task.FromResult(runs.Count >= 1), Wait, "the missed run made up");
        await Task.Delay(1_500); // one poll more: nothing else fires

        var run = Assert.Single(runs);
        Assert.Equal($"reports:recurring:report:{missedRun}", run.JobId);
        var job = await _client.GetAsync(run.JobId);
        Assert.Equal(3, job!.Envelope!.Priority);
        var after = await _client.GetRecurringAsync("reports", "report");
        var next = after!.NextRunAt!.Value; // the next 02:00, not one of those missed
        Assert.InRange(next, DateTimeOffset.UtcNow.AddSeconds(-10), DateTimeOffset.UtcNow.AddDays(1));
        Assert.Equal((2, 0, 0, 0), (next.Hour, next.Minute, next.Second, next.Millisecond));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(missedRun), after.LastRunAt);
        Assert.Equal(run.JobId, after.LastJobId);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_schedule_a_node_cannot_read_is_stopped_saying_why_and_the_others_of_its_queue_still_fire(BrokerKind kind)
    {
        await UseBrokerAsync(kind);
        var q = _client.Keys.Queue("default");
        var db = _redis.GetDatabase();
        var good = await _client.AddOrUpdateRecurringAsync("good", "0 0 * * *", "recurring_run", new { key = _prefix });
        // Written by hand by another language's producer: a cron that is not one; a key of the wrong type; a run that is
        // not a whole ms; a job its node would dead-letter (priority 42). Each sorts before the good one.
        await db.HashSetAsync(q.RecurringSchedule("bad"), [new("cron", "every day at noon"), new("time_zone", "UTC"), new("template", "{}")]);
        await db.StringSetAsync(q.RecurringSchedule("wrongtype"), "not a hash");
        var template = (await db.HashGetAsync(q.RecurringSchedule("good"), "template")).ToString();
        await db.HashSetAsync(q.RecurringSchedule("fraction"), [new("cron", "@daily"), new("template", template)]);
        await db.HashSetAsync(q.RecurringSchedule("priority"), [new("cron", "@daily"), new("template", template.Replace("\"priority\":0", "\"priority\":42"))]);
        var past = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds();
        await db.SortedSetAddAsync(q.Recurring, [new("bad", past - 4), new("wrongtype", past - 3), new("fraction", past - 2.5), new("priority", past - 1), new("good", past)]);
        var logs = new RecordedLogs();

        await StartNodeAsync(logs: logs, kind: kind);
        var runs = RecurringRunTask.For(_prefix);
        var stoppedNames = new[] { "bad", "wrongtype", "fraction", "priority" };
        await ClusterRun.WaitUntilAsync(async () => runs.Count >= 1 && (await _client.GetRecurringAsync("default", "priority"))?.Error is not null
                && stoppedNames.All(n => logs.Lines.Any(l => l.Contains($"Recurring job '{n}' of queue default is stopped"))),
            Wait, "the good schedule fired and the bad ones stopped, each logged");

        Assert.Equal($"default:recurring:good:{past}", Assert.Single(runs).JobId);
        var bad = await _client.GetRecurringAsync("default", "bad");
        Assert.Null(bad!.NextRunAt);
        Assert.Contains("Invalid cron expression 'every day at noon'", bad.Error);
        Assert.Contains("found by node", bad.Error);
        Assert.Contains("priority must be 0-9, got 42", (await _client.GetRecurringAsync("default", "priority"))!.Error);
        Assert.Contains("not a whole number of unix milliseconds", (await _client.GetRecurringAsync("default", "fraction"))!.Error);
        Assert.Equal(double.PositiveInfinity, await db.SortedSetScoreAsync(q.Recurring, "wrongtype"));
        Assert.Empty(await JobsOfAsync("priority"));
        // A key of the wrong type is listed with the reason, and a producer's write replaces it.
        Assert.Contains("not a hash", (await _client.ListRecurringAsync("default")).Single(r => r.Name == "wrongtype").Error);
        var replaced = await _client.AddOrUpdateRecurringAsync("wrongtype", "@daily", "recurring_run", new { key = "again" });
        Assert.Equal(("recurring_run", null), (replaced.Task, replaced.Error));
        Assert.NotNull(replaced.NextRunAt);
        Assert.Equal(good.NextRunAt, (await _client.GetRecurringAsync("default", "good"))!.NextRunAt);
        // Writing it again with a producer starts it again.
        var mended = await _client.AddOrUpdateRecurringAsync("bad", "0 12 * * *", "recurring_run", new { key = _prefix });
        Assert.Null(mended.Error);
        Assert.NotNull(mended.NextRunAt);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_run_its_queue_cannot_take_stays_due_and_fires_once_the_queue_is_mended_never_lost_nor_its_schedule_stopped(BrokerKind kind)
    {
        await UseBrokerAsync(kind);
        var q = _client.Keys.Queue("default");
        var db = _redis.GetDatabase();
        await _client.AddOrUpdateRecurringAsync("report", "0 6 * * *", "recurring_run", new { key = _prefix });
        var run = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds() / 1000 * 1000;
        await db.SortedSetAddAsync(q.Recurring, "report", run);
        // The queue's ready set overwritten by hand with another type: the queue takes no job until it is mended.
        await db.StringSetAsync(q.Ready, "not a sorted set");
        var firer = new RecurringFirer(() => _redis, _client.Keys, "default", "node-a", JobDefaults.MaxPayloadBytes);

        // The round fails (the queue's fault, not the schedule's) and the run stays due: nothing half-written.
        var refused = await Assert.ThrowsAsync<RedisServerException>(() => firer.FireDueAsync(CancellationToken.None));
        Assert.Contains("ready set", refused.Message);
        Assert.Equal(run, await db.SortedSetScoreAsync(q.Recurring, "report"));
        var schedule = (await _client.GetRecurringAsync("default", "report"))!;
        Assert.Null(schedule.Error);
        Assert.Null(schedule.LastJobId);
        Assert.Empty(await JobsOfAsync("report"));

        await db.KeyDeleteAsync(q.Ready);
        var round = await firer.FireDueAsync(CancellationToken.None);
        Assert.Empty(round.Stopped);
        var id = $"default:recurring:report:{run}";
        Assert.Equal(JobState.Queued, (await _client.GetAsync(id))!.State);
        Assert.Equal(id, (await _client.GetRecurringAsync("default", "report"))!.LastJobId);
        Assert.True(await db.SortedSetScoreAsync(q.Recurring, "report") > run);
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_schedule_whose_version_a_hand_made_no_number_is_still_written_paused_and_resumed_whole(BrokerKind kind)
    {
        await UseBrokerAsync(kind);
        await _client.AddOrUpdateRecurringAsync("digest", "0 8 * * *", "recurring_run", new { key = "v1" });
        var q = _client.Keys.Queue("default");
        var db = _redis.GetDatabase();
        async Task EditVersionByHand() => await db.HashSetAsync(q.RecurringSchedule("digest"), "version", "edited");
        async Task<string?> Version() => await db.HashGetAsync(q.RecurringSchedule("digest"), "version");

        await EditVersionByHand();
        var written = await _client.AddOrUpdateRecurringAsync("digest", "0 9 * * *", "recurring_run", new { key = "v2" });
        Assert.Equal(9, written.NextRunAt!.Value.UtcDateTime.Hour);
        Assert.Equal("1", (string?)await db.HashGetAsync(q.RecurringSchedule("digest"), "version")); // counts again from 1

        await EditVersionByHand();
        Assert.True(await _client.PauseRecurringAsync("default", "digest"));
        Assert.Equal(double.PositiveInfinity, await db.SortedSetScoreAsync(q.Recurring, "digest"));
        Assert.Equal("1", await Version()); // moved: a node that read the run before cannot fire it

        await EditVersionByHand();
        Assert.True(await _client.ResumeRecurringAsync("default", "digest"));
        Assert.Equal("1", await Version());
        await db.HashSetAsync(q.RecurringSchedule("digest"), "version", "inf"); // a number to Lua that +1 leaves as it is
        await _client.AddOrUpdateRecurringAsync("digest", "0 9 * * *", "recurring_run", new { key = "v3" });
        Assert.Equal("1", await Version());
        var resumed = (await _client.GetRecurringAsync("default", "digest"))!;
        Assert.Equal((9, null), (resumed.NextRunAt!.Value.UtcDateTime.Hour, resumed.PausedAt));
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Writing_a_schedule_again_with_its_cron_and_time_zone_keeps_its_next_run_and_a_changed_one_moves_it(BrokerKind kind)
    {
        await UseBrokerAsync(kind);
        var first = await _client.AddOrUpdateRecurringAsync("cleanup", "30 3 * * *", "recurring_run", new { key = "v1" });
        await _redis.GetDatabase().SortedSetAddAsync(_client.Keys.Queue("default").Recurring, "cleanup", 1_000); // as if due

        // An app declaring its schedules at every start: same cron, new arguments. The run that is due stays due.
        var again = await _client.AddOrUpdateRecurringAsync("cleanup", "30 3 * * *", "recurring_run", new { key = "v2" });
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_000), again.NextRunAt);
        Assert.Equal("v2", again.Args!.Value.GetProperty("key").GetString());
        Assert.Equal(first.CreatedAt, again.CreatedAt);

        var moved = await _client.AddOrUpdateRecurringAsync("cleanup", "45 3 * * *", "recurring_run", new { key = "v3" });
        Assert.Equal((3, 45), (moved.NextRunAt!.Value.UtcDateTime.Hour, moved.NextRunAt.Value.UtcDateTime.Minute));
        var zoned = await _client.AddOrUpdateRecurringAsync("cleanup", "45 3 * * *", "recurring_run", new { key = "v3" },
            new RecurringOptions { TimeZone = "Asia/Tokyo" });
        Assert.Equal("Asia/Tokyo", zoned.TimeZone);
        Assert.Equal((3, 45), (TimeZoneInfo.ConvertTime(zoned.NextRunAt!.Value, TimeZoneInfo.FindSystemTimeZoneById("Asia/Tokyo")).Hour,
            zoned.NextRunAt.Value.Minute));
        Assert.Equal((18, 45), (zoned.NextRunAt.Value.UtcDateTime.Hour, zoned.NextRunAt.Value.UtcDateTime.Minute)); // Tokyo is UTC+9

        var listed = Assert.Single(await _client.ListRecurringAsync("default"));
        Assert.Equal(("cleanup", "45 3 * * *", "recurring_run"), (listed.Name, listed.Cron, listed.Task));
    }

    [Fact]
    public async Task A_schedule_that_cannot_be_read_or_run_is_refused_at_the_call_and_nothing_is_written()
    {
        var big = new string('x', JobDefaults.MaxPayloadBytes);
        var refused = new (Func<Task> Call, string Says)[]
        {
            (() => _client.AddOrUpdateRecurringAsync("a", "every day", "recurring_run"), "Invalid cron expression 'every day'"),
            (() => _client.AddOrUpdateRecurringAsync("a", "61 * * * *", "recurring_run"), "Invalid cron expression '61 * * * *'"),
            (() => _client.AddOrUpdateRecurringAsync("a", "0 0 30 2 *", "recurring_run"), "has no occurrence after now"),
            (() => _client.AddOrUpdateRecurringAsync("a", "@daily", "recurring_run", null, new RecurringOptions { TimeZone = "Mars/Olympus" }), "Unknown time zone 'Mars/Olympus'"),
            (() => _client.AddOrUpdateRecurringAsync("a", "@daily", "recurring_run", null, new RecurringOptions { TimeZone = "Europe" }), "Unknown time zone 'Europe'"),
            (() => _client.AddOrUpdateRecurringAsync("a", "@daily", "recurring_run", null, new RecurringOptions { TimeZone = "../etc/passwd" }), "Unknown time zone '../etc/passwd'"),
            (() => _client.AddOrUpdateRecurringAsync("a b", "@daily", "recurring_run"), "Invalid recurring job name 'a b'"),
            (() => _client.AddOrUpdateRecurringAsync("..", "@daily", "recurring_run"), "Invalid recurring job name '..'"),
            (() => _client.AddOrUpdateRecurringAsync("a", "@daily", ""), "task name is empty"),
            (() => _client.AddOrUpdateRecurringAsync("a", "@daily", "recurring_run", null, new RecurringOptions { Priority = 12 }), "Priority must be between 0 and 9"),
            (() => _client.AddOrUpdateRecurringAsync("a", "@daily", "recurring_run", new { big }), "over the limit"),
        };
        foreach (var (call, says) in refused)
            Assert.Contains(says, (await Assert.ThrowsAnyAsync<ArgumentException>(call)).Message);

        Assert.Empty(await _client.ListRecurringAsync("default"));
        Assert.Empty(await _redis.GetServer(_redis.GetEndPoints()[0]).KeysAsync(pattern: _prefix + ":*").ToListAsync());
    }

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_paused_schedule_does_not_fire_stays_paused_when_written_again_and_resumes_from_its_next_run_after_now(BrokerKind kind)
    {
        await UseBrokerAsync(kind);
        await StartNodeAsync(kind: kind);
        var key = _prefix + kind;
        await _client.AddOrUpdateRecurringAsync("tick", "* * * * * *", "recurring_run", new { key });
        await ClusterRun.WaitUntilAsync(() => Task.FromResult(RecurringRunTask.For(key).Count >= 1), Wait, "a first run");

        Assert.True(await _client.PauseRecurringAsync("default", "tick"));
        var pausedAt = DateTimeOffset.UtcNow;
        Assert.False(await _client.PauseRecurringAsync("default", "tick"));
        // An app declaring its schedules at start must not undo an operator's pause.
        await _client.AddOrUpdateRecurringAsync("tick", "* * * * * *", "recurring_run", new { key });
        var paused = (await _client.GetRecurringAsync("default", "tick"))!;
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // two runs and more of a schedule every second
        var resumedAt = DateTimeOffset.UtcNow;
        Assert.True(await _client.ResumeRecurringAsync("default", "tick"));
        var resumed = (await _client.GetRecurringAsync("default", "tick"))!;
        Assert.False(await _client.ResumeRecurringAsync("default", "tick"));
        await ClusterRun.WaitUntilAsync(async () => (await RunsOfAsync("tick")).Any(ms => ms >= resumedAt.ToUnixTimeMilliseconds()),
            Wait, "a run after the resume");

        Assert.NotNull(paused.PausedAt);
        Assert.Null(paused.NextRunAt);
        // Not one run from a second after the pause to the resume: nothing fired while paused, nothing made up after.
        Assert.DoesNotContain(await RunsOfAsync("tick"), ms => ms > pausedAt.AddSeconds(1).ToUnixTimeMilliseconds() && ms < resumedAt.ToUnixTimeMilliseconds());
        Assert.Null(resumed.PausedAt);
        Assert.InRange(resumed.NextRunAt!.Value, resumedAt, resumedAt.AddSeconds(2)); // its next run after now
        await Assert.ThrowsAsync<KeyNotFoundException>(() => _client.PauseRecurringAsync("default", "nothing"));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => _client.ResumeRecurringAsync("default", "nothing"));
    }

    [Fact]
    public async Task A_schedule_a_node_stopped_is_not_resumed_until_it_is_written_again()
    {
        await _client.AddOrUpdateRecurringAsync("report", "0 3 * * *", "recurring_run", new { key = "x" });
        Assert.True(await _client.PauseRecurringAsync("default", "report"));
        // What a node's Stop script leaves: the reason, and no next run.
        await _redis.GetDatabase().HashSetAsync(_client.Keys.Queue("default").RecurringSchedule("report"), "error", "Unknown time zone 'Mars/Olympus' (node x)");

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => _client.ResumeRecurringAsync("default", "report"));
        Assert.Contains("stopped by a node (Unknown time zone 'Mars/Olympus' (node x))", refused.Message);
        Assert.NotNull((await _client.GetRecurringAsync("default", "report"))!.PausedAt);
        await _client.AddOrUpdateRecurringAsync("report", "0 3 * * *", "recurring_run", new { key = "x" }); // clears the error, still paused
        // A resume worked out from a cron read before a rewrite changes nothing (the client reads again).
        var q = _client.Keys.Queue("default");
        Assert.Equal(4, (long)await _redis.GetDatabase().ScriptEvaluateAsync(ProducerScripts.ResumeRecurring, [q.RecurringSchedule("report"), q.Recurring],
            ["report", 123, "0 4 * * *", "UTC"]));
        Assert.NotNull((await _client.GetRecurringAsync("default", "report"))!.PausedAt);
        Assert.True(await _client.ResumeRecurringAsync("default", "report"));
        var running = (await _client.GetRecurringAsync("default", "report"))!;
        Assert.Equal((null, null, 3), (running.Error, running.PausedAt, running.NextRunAt!.Value.Hour));
    }

    [Fact]
    public async Task Triggering_a_schedule_enqueues_its_job_now_and_keeps_its_next_run()
    {
        var schedule = await _client.AddOrUpdateRecurringAsync("digest", "0 8 * * MON", "recurring_run", new { key = "weekly" },
            new RecurringOptions { Queue = "mail", MaxAttempts = 5 });

        var id = await _client.TriggerRecurringAsync("mail", "digest");

        var job = await _client.GetAsync(id);
        Assert.Equal((JobState.Queued, "recurring_run", 5), (job!.State, job.Task, job.Envelope!.MaxAttempts));
        Assert.Equal("weekly", job.Envelope.Args.GetProperty("key").GetString());
        Assert.Equal(schedule.NextRunAt, (await _client.GetRecurringAsync("mail", "digest"))!.NextRunAt);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => _client.TriggerRecurringAsync("mail", "nothing"));

        // A template written by another language's producer, with an idempotency key and a not_before: each trigger is
        // a job of its own, due now, as a node's run of it is (the key made the second trigger answer the first's job)
        var key = _client.Keys.Queue("mail").RecurringSchedule("digest");
        var template = ProtocolJson.DeserializeEnvelope((string)(await _redis.GetDatabase().HashGetAsync(key, "template"))!)!;
        await _redis.GetDatabase().HashSetAsync(key, "template", ProtocolJson.Serialize(template with
        {
            IdempotencyKey = "digest", NotBefore = DateTimeOffset.UtcNow.AddDays(1).ToUnixTimeMilliseconds(),
        }));
        var first = await _client.TriggerRecurringAsync("mail", "digest");
        var second = await _client.TriggerRecurringAsync("mail", "digest");
        Assert.NotEqual(first, second);
        foreach (var triggered in new[] { first, second })
            Assert.Equal((JobState.Queued, null, null), ((await _client.GetAsync(triggered))!.State, (await _client.GetAsync(triggered))!.Envelope!.IdempotencyKey,
                (await _client.GetAsync(triggered))!.Envelope!.NotBefore));
        Assert.True(await _client.RemoveRecurringAsync("mail", "digest"));
        Assert.False(await _client.RemoveRecurringAsync("mail", "digest"));
    }

    /// <summary>The runs (unix ms, from their job ids) a schedule of queue default made jobs for.</summary>
    private async Task<List<long>> RunsOfAsync(string name) =>
        (await JobsOfAsync(name)).Select(id => long.Parse(id[(id.LastIndexOf(':') + 1)..])).ToList();

    /// <summary>The ids of the jobs a schedule of queue default made (found by their key names).</summary>
    private async Task<List<string>> JobsOfAsync(string name)
    {
        var q = _client.Keys.Queue("default");
        var ids = new List<string>();
        await foreach (var key in _redis.GetServer(_redis.GetEndPoints()[0]).KeysAsync(pattern: q.Job($"default:recurring:{name}:*")))
            ids.Add(((string)key!)[q.JobPrefix.Length..]);
        return ids;
    }

    private async Task UseBrokerAsync(BrokerKind kind)
    {
        if (kind == BrokerKind.Redis) return;
        await _client.DisposeAsync();
        await _redis.DisposeAsync();
        _redis = await RedisConnection.ConnectAsync(brokers.Url(kind));
        _client = new JobClient(_redis, new JobClientOptions { KeyPrefix = _prefix });
    }

    private async Task StartNodeAsync(ClusterBootstrap? cluster = null, string queues = "default", RecordedLogs? logs = null,
        BrokerKind kind = BrokerKind.Redis) =>
        _nodes.Add(await TestNode.StartAsync(brokers.Url(kind), _prefix, o =>
        {
            o.Queues = ClusterJobsOptions.ParseQueues(queues);
            if (cluster is not null) o.Cluster = cluster;
        }, tasks => tasks.AddTask<RecurringRunTask>("recurring_run"), serializeMessages: cluster is null, logs: logs));
}

public sealed record RecurringRunArgs(string Key);

/// <summary>Records each run's job id and node, by the spec's key.</summary>
public sealed class RecurringRunTask : IJobHandler<RecurringRunArgs>
{
    private static readonly ConcurrentDictionary<string, ConcurrentQueue<(string JobId, string Node)>> Runs = new();

    public static ConcurrentQueue<(string JobId, string Node)> For(string key) => Runs.GetOrAdd(key, _ => new());

    public Task HandleAsync(RecurringRunArgs args, JobContext job, CancellationToken ct)
    {
        For(args.Key).Enqueue((job.JobId, job.Node));
        return Task.CompletedTask;
    }
}
