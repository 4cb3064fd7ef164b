using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// samples/WebApi, the seed article's Flask example, run as the process users start: it answers at once with the
/// queued job's id, a node runs the job, and the API reports it; bad requests and an unreachable Redis get clear answers.
/// </summary>
public sealed class WebApiSampleSpecs
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_sample_queues_a_job_answering_202_at_once_and_reports_it_once_a_node_ran_it()
    {
        await using var redis = await RedisServer.StartBinaryAsync();
        await using var node = await TestNode.StartAsync(redis.Url, RedisKeys.DefaultPrefix);
        await using var api = await StartSampleAsync(redis.Url);
        using var http = new HttpClient { BaseAddress = api.Address };

        var queued = await http.GetAsync("/send-mail/ada@example.com");

        Assert.Equal(HttpStatusCode.Accepted, queued.StatusCode);
        var body = await queued.Content.ReadFromJsonAsync<JsonElement>();
        var id = body.GetProperty("jobId").GetString()!;
        Assert.Equal($"/jobs/{id}", queued.Headers.Location?.ToString());
        Assert.Equal("Task queued to send email to ada@example.com", body.GetProperty("message").GetString());
        var done = await http.GetFromJsonAsync<JsonElement>($"/jobs/{id}/wait?timeoutSeconds=30");
        Assert.Equal("succeeded", done.GetProperty("state").GetString());
        Assert.Equal("succeeded", (await http.GetFromJsonAsync<JsonElement>($"/jobs/{id}")).GetProperty("state").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/jobs/default:no-such-job")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/jobs/no-queue-in-this-id")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/send-mail/ada@example.com?priority=99")).StatusCode);
    }

    [Fact]
    public async Task A_send_or_a_status_read_while_Redis_stays_unreachable_answers_503_naming_the_job()
    {
        var redis = await RedisServer.StartBinaryAsync(port: RedisServer.PortNoOneElseIsGiven());
        await using var api = await StartSampleAsync(redis.Url, retrySeconds: "1");
        using var http = new HttpClient { BaseAddress = api.Address, Timeout = Wait };
        await redis.DisposeAsync();

        var refused = await http.GetAsync("/send-mail/ada@example.com");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("Could not enqueue job 'default:", problem.GetProperty("detail").GetString());

        // Asking for a job's state then is the same answer, not a 500.
        var read = await http.GetAsync("/jobs/default:order-42");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, read.StatusCode);
        Assert.Contains("Could not read job 'default:order-42': Redis could not be reached",
            (await read.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString());
    }

    private sealed class Sample(ClusterProcess process, Uri address) : IAsyncDisposable
    {
        public Uri Address { get; } = address;
        public ValueTask DisposeAsync() => process.DisposeAsync();
    }

    private static async Task<Sample> StartSampleAsync(string redisUrl, string? retrySeconds = null)
    {
        var address = new Uri($"http://127.0.0.1:{RedisServer.FreePort()}");
        var env = new Dictionary<string, string> { ["REDIS_URL"] = redisUrl, ["ASPNETCORE_URLS"] = address.ToString() };
        if (retrySeconds is not null) env["REDIS_RETRY_SECONDS"] = retrySeconds;
        var process = ClusterProcess.Start("ClusterJobs.Samples.WebApi", "webapi", env);
        try
        {
            await process.WaitForOutputAsync("Now listening on", Wait);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
        return new Sample(process, address);
    }
}
