using System.Text.Json.Nodes;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Xunit.Abstractions;

namespace ClusterJobs.Cli.Tests;

/// <summary>The <c>clusterjobs</c> command line against a real node's operator API, on real Redis.</summary>
[Collection(BrokerCollection.Name)]
public sealed class CliSpecs(BrokerFixture brokers, ITestOutputHelper output)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Status_shows_the_members_and_each_queues_jobs_by_place()
    {
        await using var node = await StartAsync();
        foreach (var i in new[] { 1, 2 }) await node.Client.WaitAsync(await node.Client.EnqueueAsync("add", new[] { i, i }), Wait);
        await node.Client.EnqueueAsync("add", new[] { 1, 1 }, new EnqueueOptions { Queue = "reports", Countdown = TimeSpan.FromHours(1) });
        await node.Client.EnqueueAsync("add", new[] { 1, 1 }, new EnqueueOptions { Queue = "reports" });

        var (code, stdout, stderr) = await Run(node, "status");

        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Contains(node.System.Settings.System.Name, stdout);
        Assert.Matches(@"(?m)^\s*\S*127\.0\.0\.1:\d+ \(leader\) \*\s+up\s+yes\s+default\s+0/8", stdout);
        Assert.Matches(@"(?m)^\s*reports\s+1\s+1\s+0\s+0\s+0\s+0\s+NO NODE", stdout);
        Assert.Matches(@"(?m)^\s*default\s+0\s+0\s+0\s+0\s+0\s+2\s+1 node\(s\)\s+running", stdout);
    }

    [Fact]
    public async Task Enqueue_prints_the_id_that_job_then_shows_its_state_and_result()
    {
        await using var node = await StartAsync();

        var (code, stdout, _) = await Run(node, "enqueue", "add", "--args", "[20, 22]", "--queue", "default", "--priority", "5");
        var id = stdout.Trim();
        await node.Client.WaitAsync(id, Wait);
        var (jobCode, job, _) = await Run(node, "job", id);
        var (jsonCode, json, _) = await Run(node, "job", id, "--json");

        Assert.Equal(0, code);
        Assert.True(JobIds.IsValid(id), stdout);
        Assert.Equal(0, jobCode);
        Assert.Matches(@"(?m)^state\s+succeeded\s*$", job);
        Assert.Matches(@"(?m)^result\s+42\s*$", job);
        Assert.Matches(@"(?m)^task\s+add\s*$", job);
        Assert.Equal(0, jsonCode);
        Assert.Equal(5, JsonNode.Parse(json)!["priority"]!.GetValue<int>());
    }

    [Fact]
    public async Task Jobs_lists_what_runs_now_with_its_node()
    {
        await using var node = await StartAsync();
        var id = await node.Client.EnqueueAsync("sleep", new { ms = 60_000 }); // cancelled at the end
        var deadline = DateTime.UtcNow + Wait;
        while ((await node.Client.GetAsync(id))!.State != JobState.Running && DateTime.UtcNow < deadline) await Task.Delay(50);

        var (code, stdout, _) = await Run(node, "jobs", "default", "--place", "running");
        var none = await Run(node, "jobs", "default", "--place", "scheduled");
        var bad = await Run(node, "jobs", "default", "--place", "everywhere");

        Assert.Equal(0, code);
        Assert.Matches($@"(?m)^\s*{id}\s+sleep\s+running\s+1\s", stdout);
        Assert.Contains(node.System.Name, stdout); // the node that runs it
        var (_, status, _) = await Run(node, "status");
        Assert.Matches(@"(?m)\sdefault\s+1/8\s", status); // its pool runs one of its eight
        Assert.True(await node.Client.CancelAsync(id));
        Assert.Equal((0, "No jobs there.\n"), (none.Code, none.Stdout));
        Assert.Equal(2, bad.Code);
    }

    [Fact]
    public async Task Pause_limit_and_resume_change_the_queue_cancel_ends_a_waiting_job_and_forget_takes_an_emptied_queue_off_the_list()
    {
        await using var node = await StartAsync();

        var pause = await Run(node, "pause", "default");
        var id = await node.Client.EnqueueAsync("add", new[] { 1, 2 });
        var limit = await Run(node, "limit", "default", "--max-running", "3", "--rate", "2.5");
        var cancel = await Run(node, "cancel", id);
        var lifted = await Run(node, "limit", "default", "--max-running", "none");
        var resume = await Run(node, "resume", "default");

        Assert.Equal((0, "default: paused\n"), (pause.Code, pause.Stdout));
        Assert.Equal((0, "default: paused, max running 3, 2.5/s\n"), (limit.Code, limit.Stdout));
        Assert.Equal((0, $"{id}: cancelled\n"), (cancel.Code, cancel.Stdout));
        Assert.Equal(JobState.Cancelled, (await node.Client.GetAsync(id))!.State);
        Assert.Equal("default: paused, 2.5/s\n", lifted.Stdout);
        Assert.Equal((0, "default: running, 2.5/s\n"), (resume.Code, resume.Stdout));

        // A queue no node serves stays listed by its totals after its last job; forget takes it off once it holds nothing.
        var stray = await node.Client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { Queue = "stray" });
        Assert.Contains("stray", (await Run(node, "queues")).Stdout);
        var holding = await Run(node, "forget", "stray");
        await node.Client.CancelAsync(stray);
        var forgotten = await Run(node, "forget", "stray");
        var served = await Run(node, "forget", "default");
        Assert.Equal(1, holding.Code);
        Assert.Contains("Queue 'stray' still holds ready jobs", holding.Stderr);
        Assert.Equal((0, "stray: forgotten\n"), (forgotten.Code, forgotten.Stdout));
        Assert.DoesNotContain("stray", (await Run(node, "queues")).Stdout);
        Assert.Equal(1, served.Code);
        Assert.Contains("Queue 'default' is served by akka.tcp://", served.Stderr);
    }

    [Fact]
    public async Task Dead_lists_why_jobs_died_and_replay_all_runs_them_again()
    {
        await using var node = await StartAsync();
        var options = new EnqueueOptions { MaxAttempts = 1 };
        var ids = new[]
        {
            await node.Client.EnqueueAsync("fail", new { message = "disk full" }, options),
            await node.Client.EnqueueAsync("fail", new { message = "no route" }, options),
        };
        foreach (var id in ids) await node.Client.WaitAsync(id, Wait);

        var dead = await Run(node, "dead", "default");
        var replay = await Run(node, "replay", "--all", "default", "--task", "fail");
        var none = await Run(node, "replay", "--all", "default", "--task", "send_email");

        Assert.Equal(0, dead.Code);
        Assert.Contains("InvalidOperationException: disk full", dead.Stdout);
        Assert.Contains("InvalidOperationException: no route", dead.Stdout);
        foreach (var id in ids) Assert.Contains(id, dead.Stdout);
        var newIds = replay.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, newIds.Length);
        foreach (var newId in newIds) Assert.Contains((await node.Client.GetAsync(newId))!.ReplayOf, ids);
        Assert.Equal("nothing to replay\n", none.Stdout);
        foreach (var newId in newIds) await node.Client.WaitAsync(newId, Wait); // they fail again: dead letters anew
        var unsure = await Run(node, "purge-dead", "default");
        var purged = await Run(node, "purge-dead", "default", "--yes");
        Assert.Equal(2, unsure.Code);
        Assert.Contains("--yes", unsure.Stderr);
        Assert.Equal((0, "default: 2 dead letter(s) deleted\n"), (purged.Code, purged.Stdout));
        Assert.Equal(0, await node.Redis.GetDatabase().ListLengthAsync(node.Keys.Queue("default").Dead));
    }

    [Fact]
    public async Task Refusals_and_mistakes_say_why_with_exit_1_for_the_api_and_2_for_the_command_line()
    {
        await using var node = await StartAsync(o => o.HttpToken = "s3cret");

        var noToken = await Run(node, "pause", "default");
        var withToken = await Run(node, "--token", "s3cret", "pause", "default");
        var missingJob = await Run(node, "--token", "s3cret", "job", "default:nope");
        var badArgs = await Run(node, "--token", "s3cret", "enqueue", "add", "--args", "{not json");
        var badApi = await RunAt("notaurl", "queues");
        var badTimeout = await Run(node, "--timeout", "0", "queues");
        var badLimit = await Run(node, "limit", "default", "--max-running", "many");
        var replayBoth = await Run(node, "replay", "default:x", "--all", "default");
        var unknown = await Run(node, "frobnicate");
        var unreachable = await RunAt($"http://127.0.0.1:{RedisServer.FreePort()}", "queues");

        Assert.Equal((1, ""), (noToken.Code, noToken.Stdout));
        Assert.StartsWith("clusterjobs: This API needs its token (CLUSTERJOBS_HTTP_TOKEN)", noToken.Stderr);
        foreach (var refused in new[] { noToken, missingJob, badArgs, unreachable })
            Assert.DoesNotContain("   at ", refused.Stderr); // a reason, not a stack trace
        Assert.Equal(0, withToken.Code);
        Assert.Equal(1, missingJob.Code);
        Assert.Contains("No job 'default:nope'", missingJob.Stderr);
        Assert.Equal(2, badArgs.Code); // the command line's own mistake, as README's exit codes say
        Assert.Contains("--args is not JSON", badArgs.Stderr);
        Assert.Equal(2, badApi.Code);
        Assert.Contains("--api 'notaurl' is not an http(s) URL", badApi.Stderr);
        Assert.Equal(2, badTimeout.Code);
        Assert.Contains("--timeout must be from 1 to 86400 seconds", badTimeout.Stderr);
        Assert.Equal(2, badLimit.Code);
        Assert.Contains("--max-running must be a whole number", badLimit.Stderr);
        Assert.Equal(2, replayBoth.Code);
        Assert.Contains("not both", replayBoth.Stderr);
        Assert.Equal(2, unknown.Code);
        Assert.Equal(1, unreachable.Code);
        Assert.Contains("Could not reach the operator API", unreachable.Stderr);
    }

    [Fact]
    public async Task Recurring_set_list_trigger_pause_resume_and_remove_manage_a_queues_cron_schedules()
    {
        await using var node = await StartAsync();

        var set = await Run(node, "recurring", "set", "nightly", "0 3 * * *", "add", "--args", "[1, 2]", "--tz", "Europe/Berlin", "-q", "reports");
        var list = await Run(node, "recurring", "list", "-q", "reports", "--json");
        var trigger = await Run(node, "recurring", "trigger", "nightly", "-q", "reports");
        var pause = await Run(node, "recurring", "pause", "nightly", "-q", "reports");
        var resume = await Run(node, "recurring", "resume", "nightly", "-q", "reports");
        var bad = await Run(node, "recurring", "set", "hourly", "61 * * * *", "add");
        var remove = await Run(node, "recurring", "remove", "nightly", "-q", "reports");
        var again = await Run(node, "recurring", "remove", "nightly", "-q", "reports");
        var empty = await Run(node, "recurring", "list", "-q", "reports");
        await Run(node, "recurring", "set", "nightly", "0 3 * * *", "add", "-q", "reports");
        await node.Redis.GetDatabase().StringSetAsync(node.Keys.Queue("reports").Dead, "overwritten by hand");
        var queue = await Run(node, "queue", "reports"); // holds a schedule only, and a key Redis refuses to read

        Assert.Equal(0, set.Code);
        Assert.Matches(@"(?m)^\s*nightly\s+0 3 \* \* \*\s", set.Stdout);
        var listed = Assert.Single(JsonNode.Parse(list.Stdout)!.AsArray())!;
        Assert.Equal(("nightly", "Europe/Berlin", "add"), (listed["name"]!.GetValue<string>(), listed["time_zone"]!.GetValue<string>(), listed["task"]!.GetValue<string>()));
        var next = DateTimeOffset.Parse(listed["next_run_at"]!.GetValue<string>());
        Assert.Equal(3, TimeZoneInfo.ConvertTime(next, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin")).Hour);
        Assert.Equal(0, trigger.Code);
        var job = await node.Client.GetAsync(trigger.Stdout.Trim());
        Assert.Equal(("add", "[1,2]"), (job!.Task, job.Envelope!.Args.GetRawText()));
        Assert.Equal(0, pause.Code);
        Assert.Matches(@"(?m)^\s*nightly\s.*PAUSED since", pause.Stdout);
        Assert.Equal(0, resume.Code);
        Assert.DoesNotContain("PAUSED", resume.Stdout);
        Assert.Matches(@"(?m)^\s*nightly\s.*Europe/Berlin\s+add\s+\d{4}-\d\d-\d\dT", resume.Stdout); // a next run again
        Assert.Equal(1, bad.Code);
        Assert.Contains("Invalid cron expression '61 * * * *'", bad.Stderr);
        Assert.Equal((0, "nightly: removed\n"), (remove.Code, remove.Stdout));
        Assert.Equal(1, again.Code);
        Assert.Contains("No recurring job 'nightly' in queue 'reports'", again.Stderr);
        Assert.Equal("No recurring jobs in this queue.\n", empty.Stdout);
        Assert.Equal(0, queue.Code);
        Assert.Matches(@"(?m)^recurring\s+holds recurring schedules", queue.Stdout);
        Assert.Matches(@"(?m)^PROBLEM\s+Redis refused to read \S+:dead: WRONGTYPE", queue.Stdout);
    }

    [Fact]
    public async Task An_address_that_answers_but_not_as_the_api_does_is_said_plainly_with_exit_1()
    {
        await using var page = await PlainHttpServer.StartAsync(async context =>
        {
            var (status, type, body) = context.Request.Url!.AbsolutePath switch
            {
                "/api/queues" => (200, "text/html", "<html>a web app's page</html>"),
                "/api/cluster" => (200, "application/json", ""),
                _ => (502, "application/json", """["bad gateway", 42]"""), // an error that is JSON, but no problem details
            };
            context.Response.StatusCode = status;
            context.Response.ContentType = type;
            await context.Response.OutputStream.WriteAsync(System.Text.Encoding.UTF8.GetBytes(body));
            context.Response.Close();
        });

        var html = await RunAt(page.Url, "queues");
        var empty = await RunAt(page.Url, "status");
        var notProblem = await RunAt(page.Url, "job", "default:x");

        Assert.Equal(1, html.Code);
        Assert.Contains("answered HTTP 200 with no JSON (text/html), not as the operator API does", html.Stderr);
        Assert.Equal(1, empty.Code);
        Assert.Contains("answered HTTP 200 with no body", empty.Stderr);
        Assert.Equal(1, notProblem.Code);
        Assert.Contains("""["bad gateway", 42]""", notProblem.Stderr);
        foreach (var run in new[] { html, empty, notProblem }) Assert.DoesNotContain("   at ", run.Stderr);
    }

    [Fact]
    public async Task An_api_that_does_not_answer_is_given_up_on_after_the_timeout_and_ctrl_c_stops_with_exit_130()
    {
        var never = new TaskCompletionSource();
        await using var silent = await PlainHttpServer.StartAsync(_ => never.Task);

        var timedOut = await RunAt(silent.Url, "--timeout", "1", "queues");
        using var ctrlC = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var stopped = await CliApp.RunAsync(["--api", silent.Url, "queues"], stdout, stderr, env: _ => null, ct: ctrlC.Token);
        never.SetResult();

        Assert.Equal(1, timedOut.Code);
        Assert.Contains("did not answer within 1 s", timedOut.Stderr);
        Assert.Equal(130, stopped);
        Assert.Contains("clusterjobs: stopped", stderr.ToString());
        Assert.DoesNotContain("   at ", stderr.ToString());
    }

    /// <summary>A real HTTP server on a free loopback port that answers as <paramref name="answer"/> says: not a node.</summary>
    private sealed class PlainHttpServer : IAsyncDisposable
    {
        private readonly System.Net.HttpListener _listener = new();
        private readonly Task _serving;

        private PlainHttpServer(Func<System.Net.HttpListenerContext, Task> answer)
        {
            Url = $"http://127.0.0.1:{RedisServer.FreePort()}/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _serving = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    System.Net.HttpListenerContext context;
                    try { context = await _listener.GetContextAsync(); }
                    catch (Exception) when (!_listener.IsListening) { return; }
                    _ = Task.Run(() => answer(context));
                }
            });
        }

        public string Url { get; }

        public static Task<PlainHttpServer> StartAsync(Func<System.Net.HttpListenerContext, Task> answer) => Task.FromResult(new PlainHttpServer(answer));

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            await _serving;
            _listener.Close();
        }
    }

    private Task<TestNode> StartAsync(Action<ClusterJobs.Node.Hosting.ClusterJobsOptions>? configure = null) =>
        TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o =>
        {
            o.HttpPort = 0;
            configure?.Invoke(o);
        });

    private Task<(int Code, string Stdout, string Stderr)> Run(TestNode node, params string[] args) =>
        RunAt(node.OperatorAddress.ToString(), args);

    private async Task<(int Code, string Stdout, string Stderr)> RunAt(string api, params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        var code = await CliApp.RunAsync(["--api", api, .. args], stdout, stderr, env: _ => null);
        output.WriteLine($"$ clusterjobs {string.Join(' ', args)}  -> {code}\n{stdout}{stderr}");
        return (code, stdout.ToString(), stderr.ToString());
    }
}
