using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// The operator HTTP API a node serves on CLUSTERJOBS_HTTP_PORT (README.md, "Operating a cluster"): what an operator
/// sees (members, queues, jobs) and changes (pause, limits, cancel, replay, enqueue), on real Redis.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class OperatorApiSpecs(BrokerFixture brokers, ITestOutputHelper output)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task The_queues_view_counts_each_queues_jobs_by_place_and_shows_a_queue_no_node_serves(BrokerKind kind)
    {
        await using var node = await StartAsync(kind: kind);
        using var http = Http(node);
        var ran = new List<string>
        {
            await node.Client.EnqueueAsync("add", new[] { 1, 2 }), await node.Client.EnqueueAsync("add", new[] { 3, 4 }),
            await node.Client.EnqueueAsync("fail", new { message = "boom" }, new EnqueueOptions { MaxAttempts = 2, Backoff = TimeSpan.FromMilliseconds(50) }),
        };
        foreach (var id in ran) await node.Client.WaitAsync(id, Wait);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("api/queues/default/pause", EmptyJson())).StatusCode);
        var later = new EnqueueOptions { Countdown = TimeSpan.FromHours(1) };
        for (var i = 0; i < 3; i++) await node.Client.EnqueueAsync("add", new[] { i, i });
        for (var i = 0; i < 2; i++) await node.Client.EnqueueAsync("add", new[] { i, i }, later);
        Assert.True(await node.Client.CancelAsync(await node.Client.EnqueueAsync("add", new[] { 5, 5 }, later))); // before any node took it
        await node.Client.EnqueueAsync("add", new[] { 1, 1 }, new EnqueueOptions { Queue = "orphans" });

        var queues = (await GetJson(http, "api/queues")).AsArray();
        output.WriteLine(queues.ToJsonString());

        var served = queues.Single(q => q!["name"]!.GetValue<string>() == "default")!;
        Assert.Equal(3, served["jobs"]!["ready"]!.GetValue<long>());
        Assert.Equal(2, served["jobs"]!["scheduled"]!.GetValue<long>());
        Assert.Equal(1, served["jobs"]!["dead"]!.GetValue<long>());
        Assert.Equal("""{"succeeded":2,"retrying":1,"dead_lettered":1,"failed":0,"cancelled":1}""", served["totals"]!.ToJsonString());
        Assert.True(served["settings"]!["paused"]!.GetValue<bool>());
        Assert.Single(served["served_by"]!.AsArray());
        Assert.NotNull(served["router"]);
        var orphan = queues.Single(q => q!["name"]!.GetValue<string>() == "orphans")!;
        Assert.Equal(1, orphan["jobs"]!["ready"]!.GetValue<long>());
        Assert.Empty(orphan["served_by"]!.AsArray());
        Assert.Null(orphan["settings"]);
        Assert.Equal(0, orphan["totals"]!["succeeded"]!.GetValue<long>());
        var one = await GetJson(http, "api/queues/orphans");
        Assert.Equal(1, one["jobs"]!["ready"]!.GetValue<long>());
        await AssertProblem(await http.GetAsync("api/queues/no_such_queue"), HttpStatusCode.NotFound, "No queue 'no_such_queue'");
        var ready = (await GetJson(http, "api/queues/default/jobs?place=ready")).AsArray();
        var scheduled = (await GetJson(http, "api/queues/default/jobs?place=scheduled&count=1")).AsArray();
        Assert.Equal(3, ready.Count);
        Assert.All(ready, j => Assert.Equal("queued", j!["state"]!.GetValue<string>()));
        Assert.Equal([0, 1, 2], ready.Select(j => j!["args"]![0]!.GetValue<int>())); // next to run first: oldest first
        Assert.Equal("scheduled", Assert.Single(scheduled)!["state"]!.GetValue<string>());
        await AssertProblem(await http.GetAsync("api/queues/default/jobs?place=everywhere"), HttpStatusCode.BadRequest, "place must be");
    }

    [Fact]
    public async Task A_queue_paused_and_limited_through_the_api_starts_nothing_until_resumed_and_bad_changes_say_why()
    {
        await using var node = await StartAsync();
        using var http = Http(node);
        var paused = await Send(http, HttpMethod.Post, "api/queues/default/pause");
        var id = await node.Client.EnqueueAsync("add", new[] { 2, 3 });
        await Task.Delay(1_000);
        var whilePaused = (await node.Client.GetAsync(id))!.State;
        var limited = await Send(http, HttpMethod.Put, "api/queues/default/limits", new { max_running = 2, rate_limit_per_second = 5.5 });
        var lifted = await Send(http, HttpMethod.Put, "api/queues/default/limits", new JsonObject { ["max_running"] = null });
        var resumed = await Send(http, HttpMethod.Post, "api/queues/default/resume");
        var job = await node.Client.WaitAsync(id, Wait);
        var badLimit = await http.PutAsJsonAsync("api/queues/default/limits", new { max_running = -1 });
        var unknownField = await http.PutAsJsonAsync("api/queues/default/limits", new { max_runing = 3 });
        var unserved = await http.PostAsync("api/queues/nobody_serves_this/pause", EmptyJson());
        var badName = await http.PostAsync("api/queues/bad%20name/pause", EmptyJson());

        Assert.True(paused["paused"]!.GetValue<bool>());
        Assert.Equal(JobState.Queued, whilePaused);
        Assert.Equal(2, limited["max_running"]!.GetValue<int>());
        Assert.Equal(5.5, limited["rate_limit_per_second"]!.GetValue<double>());
        Assert.Null(lifted["max_running"]);
        Assert.Equal(5.5, lifted["rate_limit_per_second"]!.GetValue<double>());
        Assert.False(resumed["paused"]!.GetValue<bool>());
        Assert.Equal(JobState.Succeeded, job.State);
        await AssertProblem(badLimit, HttpStatusCode.BadRequest, "max_running must be a whole number");
        await AssertProblem(unknownField, HttpStatusCode.BadRequest, "Unknown field 'max_runing'");
        await AssertProblem(unserved, HttpStatusCode.ServiceUnavailable, "No node serves queue 'nobody_serves_this'");
        await AssertProblem(badName, HttpStatusCode.BadRequest, "Invalid queue name");
    }

    [Fact]
    public async Task A_job_is_enqueued_read_cancelled_and_its_dead_letters_replayed_through_the_api()
    {
        await using var node = await StartAsync();
        using var http = Http(node);
        var created = await http.PostAsJsonAsync("api/jobs", new { task = "add", args = new[] { 20, 22 } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
        await node.Client.WaitAsync(id, Wait);
        var done = await GetJson(http, $"api/jobs/{id}");
        var traced = await GetJson(http, "api/jobs/" + await node.Client.EnqueueAsync(new JobEnvelope
        {
            Id = JobIds.New("default"), Task = "add", Queue = "default", Args = JsonSerializer.SerializeToElement(new[] { 1, 1 }),
            TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }));

        var later = await Send(http, HttpMethod.Post, "api/jobs", new { task = "add", args = new[] { 1, 1 }, countdown_seconds = 3600 });
        var laterId = later["id"]!.GetValue<string>();
        var cancelled = await Send(http, HttpMethod.Post, $"api/jobs/{laterId}/cancel");
        var cancelAgain = await Send(http, HttpMethod.Post, $"api/jobs/{laterId}/cancel");
        var cancelFinished = await http.PostAsync($"api/jobs/{id}/cancel", EmptyJson());

        var failing = await Send(http, HttpMethod.Post, "api/jobs", new { task = "fail", args = new { message = "boom" }, max_attempts = 1 });
        var failingId = failing["id"]!.GetValue<string>();
        await node.Client.WaitAsync(failingId, Wait);
        var dead = (await GetJson(http, "api/queues/default/dead")).AsArray();
        var replayed = await Send(http, HttpMethod.Post, $"api/jobs/{failingId}/replay");
        var replayAgain = await http.PostAsync($"api/jobs/{failingId}/replay", EmptyJson());
        var missing = await http.GetAsync("api/jobs/default:no-such-job");
        var invalid = await http.GetAsync("api/jobs/not-a-job-id");
        var noTask = await http.PostAsJsonAsync("api/jobs", new { args = new[] { 1 } });
        var misspelt = await http.PostAsJsonAsync("api/jobs", new { task = "add", args = new[] { 1, 1 }, countdown = 60 });

        Assert.Equal("succeeded", done["state"]!.GetValue<string>());
        Assert.Equal(42, done["result"]!.GetValue<long>());
        Assert.Equal("add", done["task"]!.GetValue<string>());
        Assert.Equal("[20,22]", done["args"]!.ToJsonString());
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", traced["trace_id"]!.GetValue<string>()); // what Jaeger or Tempo finds it by
        Assert.Equal("cancelled", cancelled["outcome"]!.GetValue<string>());
        Assert.Equal(JobState.Cancelled, (await node.Client.GetAsync(laterId))!.State);
        Assert.Equal("cancelled", cancelAgain["outcome"]!.GetValue<string>());
        await AssertProblem(cancelFinished, HttpStatusCode.Conflict, "is succeeded");
        var letter = Assert.Single(dead)!;
        Assert.Equal(failingId, letter["id"]!.GetValue<string>());
        Assert.Equal("boom", letter["error"]!["message"]!.GetValue<string>());
        var newId = Assert.Single(replayed["ids"]!.AsArray())!.GetValue<string>();
        Assert.Equal(failingId, (await node.Client.GetAsync(newId))!.ReplayOf);
        await AssertProblem(replayAgain, HttpStatusCode.Conflict, "replayed already");
        await AssertProblem(missing, HttpStatusCode.NotFound, "No job 'default:no-such-job'");
        await AssertProblem(invalid, HttpStatusCode.BadRequest, "Invalid job id");
        await AssertProblem(noTask, HttpStatusCode.BadRequest, "'task' is required");
        await AssertProblem(misspelt, HttpStatusCode.BadRequest, "'countdown'");
    }

    [Fact]
    public async Task A_recurring_job_written_through_the_api_fires_on_the_node_and_shows_its_last_run()
    {
        await using var node = await StartAsync();
        using var http = Http(node);

        var written = await Send(http, HttpMethod.Put, "api/queues/default/recurring/tick", new { cron = "* * * * * *", task = "add", args = new[] { 2, 3 } });
        JsonNode? fired = null;
        await ClusterRun.WaitUntilAsync(async () =>
        {
            fired = Assert.Single((await GetJson(http, "api/queues/default/recurring")).AsArray());
            return fired!["last_job_id"] is not null;
        }, Wait, "the schedule's first run");
        var lastJob = fired!["last_job_id"]!.GetValue<string>();
        await node.Client.WaitAsync(lastJob, Wait);
        var misspelt = await http.PutAsJsonAsync("api/queues/default/recurring/other", new { cron = "@daily", task = "add", timezone = "UTC" });
        var noCron = await http.PutAsJsonAsync("api/queues/default/recurring/other", new { task = "add" });
        var badZone = await http.PutAsJsonAsync("api/queues/default/recurring/other", new { cron = "@daily", task = "add", time_zone = "Nowhere/Town" });
        var paused = await Send(http, HttpMethod.Post, "api/queues/default/recurring/tick/pause");
        var pausedAgain = await Send(http, HttpMethod.Post, "api/queues/default/recurring/tick/pause");
        var resumed = await Send(http, HttpMethod.Post, "api/queues/default/recurring/tick/resume");
        var removed = await Send(http, HttpMethod.Delete, "api/queues/default/recurring/tick");
        var removedAgain = await http.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "api/queues/default/recurring/tick") { Content = EmptyJson() });
        var triggerMissing = await http.PostAsync("api/queues/default/recurring/tick/trigger", EmptyJson());

        Assert.Equal(("tick", "* * * * * *", "UTC", "add"), (written["name"]!.GetValue<string>(), written["cron"]!.GetValue<string>(),
            written["time_zone"]!.GetValue<string>(), written["task"]!.GetValue<string>()));
        Assert.StartsWith("default:recurring:tick:", lastJob);
        Assert.Equal(5, (await node.Client.GetAsync(lastJob))!.ResultAs<long>());
        await AssertProblem(misspelt, HttpStatusCode.BadRequest, "'timezone'");
        await AssertProblem(noCron, HttpStatusCode.BadRequest, "'cron' is required");
        await AssertProblem(badZone, HttpStatusCode.BadRequest, "Unknown time zone 'Nowhere/Town'");
        Assert.Equal("tick", removed["removed"]!.GetValue<string>());
        Assert.Equal((true, null), (paused["paused_at"] is not null, paused["next_run_at"]?.GetValue<string>()));
        Assert.Equal(paused["paused_at"]!.GetValue<string>(), pausedAgain["paused_at"]!.GetValue<string>()); // the same answer
        Assert.Equal((null, true), (resumed["paused_at"]?.GetValue<string>(), resumed["next_run_at"] is not null));
        await AssertProblem(removedAgain, HttpStatusCode.NotFound, "No recurring job 'tick'");
        await AssertProblem(await http.PostAsync("api/queues/default/recurring/tick/pause", EmptyJson()), HttpStatusCode.NotFound, "No recurring job 'tick'");
        await AssertProblem(triggerMissing, HttpStatusCode.NotFound, "No recurring job 'tick'");
    }

    [Fact]
    public async Task Dead_letters_are_deleted_with_their_records_all_or_those_of_one_task()
    {
        await using var node = await StartAsync();
        using var http = Http(node);
        var once = new EnqueueOptions { MaxAttempts = 1 };
        var failed = new[]
        {
            await node.Client.EnqueueAsync("fail", new { message = "a" }, once), await node.Client.EnqueueAsync("fail", new { message = "b" }, once),
        };
        var unknown = await node.Client.EnqueueAsync("not_deployed_yet", new[] { 1 }, new EnqueueOptions { IdempotencyKey = "report-42" });
        foreach (var id in failed.Append(unknown)) await node.Client.WaitAsync(id, Wait);

        var notJson = await http.DeleteAsync("api/queues/default/dead");
        using var foreign = new HttpRequestMessage(HttpMethod.Delete, "api/queues/default/dead") { Content = EmptyJson() };
        foreign.Headers.Add("Origin", "null"); // a sandboxed page or a file
        var fromNowhere = await http.SendAsync(foreign);
        var ofTask = await Send(http, HttpMethod.Delete, "api/queues/default/dead?task=fail");
        var left = (await GetJson(http, "api/queues/default/dead")).AsArray();
        var rest = await Send(http, HttpMethod.Delete, "api/queues/default/dead");
        var none = await Send(http, HttpMethod.Delete, "api/queues/default/dead");

        Assert.Equal(HttpStatusCode.Forbidden, notJson.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, fromNowhere.StatusCode);
        Assert.Equal(2, ofTask["deleted"]!.GetValue<long>());
        Assert.Equal(unknown, Assert.Single(left)!["id"]!.GetValue<string>());
        Assert.Equal(1, rest["deleted"]!.GetValue<long>());
        Assert.Equal(0, none["deleted"]!.GetValue<long>());
        foreach (var id in failed.Append(unknown)) Assert.Null(await node.Client.GetAsync(id));
        Assert.Equal(0, await node.Redis.GetDatabase().ListLengthAsync(node.Keys.Queue("default").Dead));
        // Its idempotency key went with it: the same key enqueues a new job, which runs.
        var again = await node.Client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { IdempotencyKey = "report-42" });
        Assert.NotEqual(unknown, again);
        Assert.Equal(JobState.Succeeded, (await node.Client.WaitAsync(again, Wait)).State);
    }

    [Fact]
    public async Task With_a_token_set_every_call_but_the_health_check_needs_it()
    {
        await using var node = await StartAsync(o => o.HttpToken = "s3cret");
        using var http = Http(node);

        var without = await http.PostAsync("api/queues/default/pause", EmptyJson());
        var readWithout = await http.GetAsync("api/queues");
        var health = await http.GetAsync("api/health");
        var page = await http.GetAsync("");
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        var wrong = await http.PostAsync("api/queues/default/pause", EmptyJson());
        var wrongEnqueue = await http.PostAsJsonAsync("api/jobs", new { task = "add", args = new[] { 1, 2 } });
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
        var right = await http.PostAsync("api/queues/default/pause", EmptyJson());
        var read = await http.GetAsync("api/queues");

        await AssertProblem(without, HttpStatusCode.Unauthorized, "CLUSTERJOBS_HTTP_TOKEN");
        Assert.Equal(HttpStatusCode.Unauthorized, readWithout.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongEnqueue.StatusCode);
        Assert.Equal(0, (await node.Redis.GetDatabase().SortedSetLengthAsync(node.Keys.Queue("default").Ready)));
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
    }

    [Fact]
    public async Task A_body_that_is_no_JSON_or_a_page_that_is_no_number_is_a_400_that_says_why_after_the_token_check()
    {
        await using var node = await StartAsync(o => o.HttpToken = "s3cret");
        using var http = Http(node);
        static HttpContent Json(string text) => new StringContent(text, System.Text.Encoding.UTF8, "application/json");

        var noToken = await http.PostAsync("api/jobs", Json("{bad"));
        var noTokenPage = await http.GetAsync("api/queues/default/dead?count=ten");
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");

        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode); // who asks comes first, whatever they sent
        Assert.Equal(HttpStatusCode.Unauthorized, noTokenPage.StatusCode);
        await AssertProblem(await http.PostAsync("api/jobs", Json("{bad")), HttpStatusCode.BadRequest, "the body is not JSON");
        await AssertProblem(await http.PostAsync("api/jobs", Json("")), HttpStatusCode.BadRequest, "Expected a JSON object like {\"task\"");
        await AssertProblem(await http.PutAsync("api/queues/default/limits", Json("[1,")), HttpStatusCode.BadRequest, "the body is not JSON");
        await AssertProblem(await http.PutAsync("api/queues/default/recurring/nightly", Json("cron=@daily")), HttpStatusCode.BadRequest,
            "the body is not JSON");
        await AssertProblem(await http.GetAsync("api/queues/default/dead?count=ten"), HttpStatusCode.BadRequest,
            "count must be a whole number from 1 to 500; got 'ten'");
        await AssertProblem(await http.GetAsync("api/queues/default/jobs?offset=1.5"), HttpStatusCode.BadRequest,
            "offset must be a whole number from 0 to 100000; got '1.5'");
        Assert.Equal(0, await node.Redis.GetDatabase().SortedSetLengthAsync(node.Keys.Queue("default").Ready));
    }

    [Fact]
    public async Task Cancelling_a_split_parent_that_waits_for_its_children_is_a_409_that_says_to_cancel_the_children()
    {
        await using var node = await StartAsync();
        using var http = Http(node);
        var id = await node.Client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { Queue = "drafts" }); // no node takes it
        var q = node.Keys.Queue("drafts");
        await node.Redis.GetDatabase().SortedSetRemoveAsync(q.Ready, id);
        await node.Redis.GetDatabase().HashSetAsync(q.Job(id), "state", "waiting"); // as a split leaves its parent

        var answer = await http.PostAsync($"api/jobs/{id}/cancel", EmptyJson());

        await AssertProblem(answer, HttpStatusCode.Conflict, "waits for the children it split into, and a waiting parent is not cancelled: cancel its children");
        Assert.Equal(JobState.Waiting, (await node.Client.GetAsync(id))!.State);
    }

    [Fact]
    public async Task A_key_written_by_hand_with_another_type_is_named_in_its_queues_view_and_never_hides_the_other_queues()
    {
        await using var node = await StartAsync();
        using var http = Http(node);
        var db = node.Redis.GetDatabase();
        var broken = node.Keys.Queue("broken");
        await db.StringSetAsync(broken.Ready, "overwritten by hand");
        await db.SortedSetAddAsync(broken.Scheduled, "broken:a", 1);
        var id = await node.Client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { Queue = "others" });
        await db.HashSetAsync(node.Keys.Queue("others").Job(id), "enqueued_at", "1767225600000000000"); // nanoseconds, by another producer

        var queues = (await GetJson(http, "api/queues")).AsArray();
        var one = await GetJson(http, "api/queues/broken");
        var listing = await http.GetAsync("api/queues/broken/jobs?place=ready");
        var job = await GetJson(http, $"api/jobs/{id}");

        var brokenView = queues.Single(q => q!["name"]!.GetValue<string>() == "broken")!;
        Assert.Contains($"{broken.Ready}: WRONGTYPE", brokenView["problem"]!.GetValue<string>());
        Assert.Equal(0, brokenView["jobs"]!["ready"]!.GetValue<long>());
        Assert.Equal(1, brokenView["jobs"]!["scheduled"]!.GetValue<long>()); // its other keys are read all the same
        Assert.Equal(1, queues.Single(q => q!["name"]!.GetValue<string>() == "others")!["jobs"]!["ready"]!.GetValue<long>());
        Assert.Null(queues.Single(q => q!["name"]!.GetValue<string>() == "others")!["problem"]);
        Assert.Contains("WRONGTYPE", one["problem"]!.GetValue<string>());
        await AssertProblem(listing, HttpStatusCode.InternalServerError, "Redis refused the command: WRONGTYPE"); // not "Redis unavailable"
        Assert.Equal("queued", job["state"]!.GetValue<string>());
        Assert.Null(job["enqueued_at"]); // a time that is no moment is left out, the rest of the job shown
    }

    [Fact]
    public async Task Changes_a_page_on_another_site_could_make_a_browser_send_are_refused_and_so_are_other_host_names()
    {
        await using var node = await StartAsync();
        using var http = Http(node);

        // What a form or a no-cors fetch on any web page can send: no JSON content type.
        var form = await http.PostAsync("api/queues/default/pause", new FormUrlEncodedContent([]));
        var noBody = await http.PostAsync("api/queues/default/pause", null);
        using var fromElsewhere = new HttpRequestMessage(HttpMethod.Post, "api/queues/default/pause") { Content = EmptyJson() };
        fromElsewhere.Headers.Add("Origin", "http://evil.example");
        var elsewhere = await http.SendAsync(fromElsewhere);
        using var crossSite = new HttpRequestMessage(HttpMethod.Post, "api/jobs") { Content = JsonContent.Create(new { task = "add", args = new[] { 1, 2 } }) };
        crossSite.Headers.Add("Sec-Fetch-Site", "cross-site");
        var crossSiteEnqueue = await http.SendAsync(crossSite);
        // A page whose name was made to point at 127.0.0.1 (DNS rebinding) still names its own host.
        using var rebound = new HttpRequestMessage(HttpMethod.Get, "api/queues");
        rebound.Headers.Host = "evil.example";
        var rebinding = await http.SendAsync(rebound);
        using var sameOrigin = new HttpRequestMessage(HttpMethod.Post, "api/queues/default/pause") { Content = EmptyJson() };
        sameOrigin.Headers.Add("Origin", node.OperatorAddress.GetLeftPart(UriPartial.Authority));
        sameOrigin.Headers.Add("Sec-Fetch-Site", "same-origin");
        var fromDashboard = await http.SendAsync(sameOrigin);

        await AssertProblem(form, HttpStatusCode.Forbidden, "Content-Type: application/json");
        Assert.Equal(HttpStatusCode.Forbidden, noBody.StatusCode);
        await AssertProblem(elsewhere, HttpStatusCode.Forbidden, "http://evil.example");
        await AssertProblem(crossSiteEnqueue, HttpStatusCode.Forbidden, "another site");
        Assert.Equal(0, (await node.Redis.GetDatabase().SortedSetLengthAsync(node.Keys.Queue("default").Ready)));
        Assert.Equal(HttpStatusCode.BadRequest, rebinding.StatusCode);
        Assert.Equal(HttpStatusCode.OK, fromDashboard.StatusCode);
    }

    [Fact]
    public async Task Allowed_host_names_are_the_only_ones_it_answers_to()
    {
        await using var node = await StartAsync(o => { o.HttpHost = "*"; o.HttpAllowedHosts = ["jobs.example"]; });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{node.OperatorAddress.Port}/") };

        using var named = new HttpRequestMessage(HttpMethod.Get, "api/queues");
        named.Headers.Host = $"jobs.example:{node.OperatorAddress.Port}";
        var allowed = await http.SendAsync(named);
        var other = await http.GetAsync("api/queues"); // names 127.0.0.1

        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, other.StatusCode);
    }

    [Fact]
    public async Task Any_member_shows_the_whole_cluster_and_steers_a_queue_only_other_nodes_serve()
    {
        var url = brokers.Url(BrokerKind.Redis);
        var port = RedisServer.FreePort();
        var seed = $"akka.tcp://clusterjobs@127.0.0.1:{port}";
        void Cluster(ClusterJobsOptions o, int p) => o.Cluster = new ClusterBootstrap { Host = "127.0.0.1", Port = p, Seeds = [seed] };
        await using var worker = await TestNode.StartAsync(url, _prefix, o => Cluster(o, port), serializeMessages: false);
        // An operator's node: it serves no queue, only the dashboard and API.
        await using var operatorNode = await TestNode.StartAsync(url, _prefix, o =>
        {
            Cluster(o, 0);
            o.Queues = [];
            o.HttpPort = 0;
        }, serializeMessages: false);
        await operatorNode.WaitForMembersUpAsync(2);
        using var http = Http(operatorNode);

        var cluster = await GetJson(http, "api/cluster");
        var paused = await Send(http, HttpMethod.Post, "api/queues/default/pause");
        var id = await operatorNode.Client.EnqueueAsync("add", new[] { 1, 2 });
        await Task.Delay(1_000);
        var whilePaused = (await worker.Client.GetAsync(id))!.State;
        var queue = await GetJson(http, "api/queues/default");
        await Send(http, HttpMethod.Post, "api/queues/default/resume");
        var job = await worker.Client.WaitAsync(id, Wait);
        var health = await http.GetAsync("api/health");

        output.WriteLine(cluster.ToJsonString());
        var members = cluster["members"]!.AsArray();
        Assert.Equal(2, members.Count);
        Assert.All(members, m => Assert.Equal("up", m!["status"]!.GetValue<string>()));
        var serving = Assert.Single(members, m => m!["queues"]!.AsArray().Count > 0)!;
        Assert.Equal("default", Assert.Single(serving["queues"]!.AsArray())!.GetValue<string>());
        Assert.Equal(8, serving["workers"]!["capacity"]!.GetValue<int>()); // asked of its pool over remoting
        Assert.Null(Assert.Single(members, m => m!["queues"]!.AsArray().Count == 0)!["workers"]); // the operator's node runs no jobs
        Assert.Equal(port, new Uri(serving["address"]!.GetValue<string>().Replace("akka.tcp", "http")).Port);
        Assert.Equal(serving["address"]!.GetValue<string>(), queue["router_node"]!.GetValue<string>());
        Assert.True(paused["paused"]!.GetValue<bool>());
        Assert.True(queue["settings"]!["paused"]!.GetValue<bool>());
        Assert.Equal(JobState.Queued, whilePaused);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.True((await health.Content.ReadFromJsonAsync<JsonObject>())!["healthy"]!.GetValue<bool>());
    }

    [Fact]
    public async Task While_Redis_is_down_the_api_says_so_with_503_and_the_health_check_fails()
    {
        await using var redis = await RedisServer.StartBinaryAsync(port: RedisServer.PortNoOneElseIsGiven());
        await using var node = await TestNode.StartAsync(redis.Url, _prefix, o => o.HttpPort = 0);
        using var http = Http(node);
        var before = await http.GetAsync("api/queues");

        redis.Kill();
        var queues = await http.GetAsync("api/queues/default");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var job = await http.GetAsync("api/jobs/default:some-job");
        var jobTook = clock.Elapsed;
        var health = await http.GetAsync("api/health");
        var cluster = await http.GetAsync("api/cluster");

        Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        await AssertProblem(queues, HttpStatusCode.ServiceUnavailable, "Redis");
        Assert.Equal("Redis unavailable", JsonNode.Parse(await queues.Content.ReadAsStringAsync())!["title"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, job.StatusCode);
        // Tried once, not for a producer's 10 s (JobClientOptions.CallRetryFor).
        Assert.True(jobTook < TimeSpan.FromSeconds(8), $"the job read took {jobTook}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var said = JsonNode.Parse(await health.Content.ReadAsStringAsync())!;
        Assert.False(said["healthy"]!.GetValue<bool>());
        Assert.NotEqual("ok", said["redis"]!.GetValue<string>());
        Assert.Equal("up", said["member"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, cluster.StatusCode); // what the cluster itself knows still answers
    }

    [Fact]
    public async Task While_Redis_is_down_a_settings_change_answers_503_naming_why_and_works_once_Redis_is_back()
    {
        // serialize-messages off: Akka.Persistence's own journal replies carry the StackExchange.Redis exception, which
        // its default serializer cannot round-trip, so with it on the persist failure never reaches the settings actor.
        await using var redis = await RedisServer.StartBinaryAsync(port: RedisServer.PortNoOneElseIsGiven());
        await using var node = await TestNode.StartAsync(redis.Url, _prefix, o => o.HttpPort = 0, serializeMessages: false);
        using var http = Http(node);
        redis.Kill();

        // The router's settings actor cannot write or read its journal: the router answers with that failure (503 naming
        // the reason), until Redis is back.
        var refusals = new List<string>();
        await ClusterRun.WaitUntilAsync(async () =>
        {
            var pause = await http.PostAsync("api/queues/default/pause", EmptyJson());
            Assert.Equal(HttpStatusCode.ServiceUnavailable, pause.StatusCode);
            refusals.Add(JsonNode.Parse(await pause.Content.ReadAsStringAsync())!["detail"]!.GetValue<string>());
            return refusals[^1].Contains("could not apply the change");
        }, Wait, "the router's answer that its settings cannot be had");
        output.WriteLine(string.Join("\n", refusals));
        Assert.Contains("The router of queue 'default' could not apply the change: Queue default's settings could not be read from Redis yet", refusals[^1]);
        await using var back = await RedisServer.StartBinaryAsync(port: redis.Port);
        await ClusterRun.WaitUntilAsync(async () => (await http.PostAsync("api/queues/default/pause", EmptyJson())).IsSuccessStatusCode,
            Wait, "the pause once Redis is back");
        // The pause went through the journal's connection; the node's own may still be reconnecting (a read answers 503
        // naming Redis until it has).
        await ClusterRun.WaitUntilAsync(async () => (await http.GetAsync("api/queues/default")).IsSuccessStatusCode, Wait,
            "the queue's read once the node's connection is back");
        Assert.True((await GetJson(http, "api/queues/default"))["settings"]!["paused"]!.GetValue<bool>());
    }

    [Fact]
    public async Task While_Redis_hangs_a_settings_change_answers_503_naming_Redis_not_the_router_and_works_once_it_answers()
    {
        // A stalled Redis (SIGSTOP: a partition, a server stuck) accepts the journal's write and never answers; the router's
        // answer times out long before the journal gives up. What to look at is Redis, and the answer says so.
        await using var redis = await RedisServer.StartBinaryAsync(port: RedisServer.PortNoOneElseIsGiven());
        await using var node = await TestNode.StartAsync(redis.Url, _prefix, o => o.HttpPort = 0, serializeMessages: false);
        using var http = Http(node);
        Assert.True((await http.PostAsync("api/queues/default/resume", EmptyJson())).IsSuccessStatusCode); // its settings loaded
        var pid = redis.ProcessId!.Value;
        Signal("STOP", pid);
        try
        {
            var pause = await http.PostAsync("api/queues/default/pause", EmptyJson());

            Assert.Equal(HttpStatusCode.ServiceUnavailable, pause.StatusCode);
            var detail = JsonNode.Parse(await pause.Content.ReadAsStringAsync())!["detail"]!.GetValue<string>();
            Assert.Contains("The router of queue 'default' did not answer in time, and Redis, where it records its settings, is not answering this node either", detail);
            Assert.Contains("the change may still take effect once Redis answers", detail); // its write may be in Redis's buffer
        }
        finally
        {
            Signal("CONT", pid);
        }
        await ClusterRun.WaitUntilAsync(async () => (await http.PostAsync("api/queues/default/pause", EmptyJson())).IsSuccessStatusCode,
            Wait, "the pause once Redis answers again");
        Assert.True((await GetJson(http, "api/queues/default"))["settings"]!["paused"]!.GetValue<bool>());

        static void Signal(string signal, int pid)
        {
            using var kill = System.Diagnostics.Process.Start("kill", $"-{signal} {pid}")!;
            kill.WaitForExit();
            Assert.Equal(0, kill.ExitCode);
        }
    }

    [Fact]
    public async Task A_node_whose_http_port_is_taken_stops_at_start_saying_which_setting_to_change()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var error = await Assert.ThrowsAsync<ArgumentException>(() => StartAsync(o => o.HttpPort = port));

        output.WriteLine(error.Message);
        Assert.Contains($"operator HTTP port 127.0.0.1:{port} is taken", error.Message);
        Assert.Contains("CLUSTERJOBS_HTTP_PORT", error.Message);
        Assert.StartsWith("invalid configuration: the operator HTTP port", ShutdownExit.StartFailure(error));
    }

    private Task<TestNode> StartAsync(Action<ClusterJobsOptions>? configure = null, BrokerKind kind = BrokerKind.Redis) =>
        TestNode.StartAsync(brokers.Url(kind), _prefix, o =>
        {
            o.HttpPort = 0;
            configure?.Invoke(o);
        });

    [Fact]
    public async Task Forgetting_a_queue_takes_one_that_holds_nothing_and_no_node_serves_off_the_list_and_refuses_any_other()
    {
        await using var node = await StartAsync();
        using var http = Http(node);
        await node.Client.AddOrUpdateRecurringAsync("nightly", "@daily", "add", new[] { 1, 2 }, new RecurringOptions { Queue = "reports" });
        var listed = await GetJson(http, "api/queues");
        var reportsView = await GetJson(http, "api/queues/reports");
        var holding = await http.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "api/queues/reports") { Content = EmptyJson() });
        await node.Client.RemoveRecurringAsync("reports", "nightly");
        var emptied = await http.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "api/queues/reports") { Content = EmptyJson() });
        var unknown = await http.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "api/queues/never_was") { Content = EmptyJson() });
        var draft = await node.Client.EnqueueAsync("add", new[] { 1, 2 }, new EnqueueOptions { Queue = "drafts" });
        var draftsHolding = await http.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "api/queues/drafts") { Content = EmptyJson() });
        await node.Client.CancelAsync(draft); // the cancel is counted: the totals keep the queue listed
        var draftsBefore = await GetJson(http, "api/queues/drafts");
        var forgotten = await Send(http, HttpMethod.Delete, "api/queues/drafts");
        var draftsAfter = await http.GetAsync("api/queues/drafts");

        Assert.Contains(listed.AsArray(), q => q!["name"]!.GetValue<string>() == "reports");
        Assert.True(reportsView["has_recurring"]!.GetValue<bool>()); // listed, so it can be opened too
        await AssertProblem(holding, HttpStatusCode.Conflict, "Queue 'reports' still holds recurring jobs");
        // Nothing left of it in Redis (a schedule's removal leaves no totals): 404, and it leaves the list at once all the same.
        await AssertProblem(emptied, HttpStatusCode.NotFound, "No queue 'reports'");
        await AssertProblem(unknown, HttpStatusCode.NotFound, "No queue 'never_was'");
        Assert.DoesNotContain((await GetJson(http, "api/queues")).AsArray(), q => q!["name"]!.GetValue<string>() == "reports");
        await AssertProblem(draftsHolding, HttpStatusCode.Conflict, "Queue 'drafts' still holds ready jobs: cancel them, or start a node serving it");
        Assert.Equal(1, draftsBefore["totals"]!["cancelled"]!.GetValue<long>());
        Assert.Equal("drafts", forgotten["forgotten"]!.GetValue<string>());
        await AssertProblem(draftsAfter, HttpStatusCode.NotFound, "No queue 'drafts'");
        Assert.False(await node.Redis.GetDatabase().KeyExistsAsync(node.Keys.Queue("drafts").Stats));
    }

    private static HttpClient Http(TestNode node) => new() { BaseAddress = node.OperatorAddress, Timeout = TimeSpan.FromSeconds(30) };

    private static async Task<JsonNode> GetJson(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    private static async Task<JsonNode> Send(HttpClient http, HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? EmptyJson() : JsonContent.Create(body) };
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>A change with no body, sent as the API wants changes sent: as JSON.</summary>
    private static HttpContent EmptyJson() => new StringContent("", System.Text.Encoding.UTF8, "application/json");

    private static async Task AssertProblem(HttpResponseMessage response, HttpStatusCode status, string detail)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Contains(detail, JsonNode.Parse(body)!["detail"]!.GetValue<string>());
    }
}
