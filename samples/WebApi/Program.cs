using ClusterJobs.Protocol;
using Microsoft.AspNetCore.Http.HttpResults;

// The seed article's Flask example as an ASP.NET Core minimal API:
//   GET /send-mail/{email}          enqueue send_email and answer 202 at once, with Location: /jobs/{id}
//   GET /jobs/{id}                  the job's state, result, error, attempts and timestamps
//   GET /jobs/{id}/wait?timeoutSeconds=10   wait for a terminal state (504 when it takes longer)
// REDIS_URL (environment or configuration, default redis://127.0.0.1:6379) names the Redis the nodes use.
// REDIS_RETRY_SECONDS (default 5): how long /send-mail and /jobs/{id} keep trying while Redis cannot be reached (a
// restart) before they answer 503 Service Unavailable.
// Listen address: ASPNETCORE_URLS or --urls, as for any ASP.NET Core app.
const string DefaultRedisUrl = "redis://127.0.0.1:6379";
const int MaxWaitSeconds = 300;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddProblemDetails();

var redisUrl = builder.Configuration["REDIS_URL"] is { Length: > 0 } configured ? configured : DefaultRedisUrl;
JobClient client;
try
{
    var retrySeconds = 5.0;
    // ENQUEUE_RETRY_SECONDS: its name before it covered reads too, still read.
    var retryName = builder.Configuration["REDIS_RETRY_SECONDS"] is not null ? "REDIS_RETRY_SECONDS" : "ENQUEUE_RETRY_SECONDS";
    if (builder.Configuration[retryName] is { Length: > 0 } raw &&
        !(double.TryParse(raw, System.Globalization.CultureInfo.InvariantCulture, out retrySeconds) && retrySeconds >= 0))
        throw new ArgumentException($"{retryName} must be a number of seconds, 0 or more; got '{raw}'.");
    var retryFor = TimeSpan.FromSeconds(retrySeconds);
    client = await JobClient.ConnectAsync(redisUrl, new JobClientOptions { EnqueueRetryFor = retryFor, CallRetryFor = retryFor });
}
catch (RedisUnavailableException ex)
{
    // Already names the cause (wrong password, nothing listening) with the password redacted.
    Console.Error.WriteLine($"clusterjobs-webapi: {ex.Message}");
    return 2;
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"clusterjobs-webapi: invalid configuration: {ex.Message}");
    return 2;
}

await using (client)
{
    builder.Services.AddSingleton(client);
    var app = builder.Build();
    app.UseExceptionHandler();
    app.UseStatusCodePages();
    app.Logger.LogInformation("Producing to Redis at {RedisUrl}", RedisConnection.Redact(redisUrl));

    // Flask: send_task('send_email', args=[email]) and return "Task queued to send email to ..." at once.
    app.MapGet("/send-mail/{email}", async Task<Results<Accepted<Queued>, ProblemHttpResult>> (
        string email, JobClient jobs, string? queue, int? priority, double? countdownSeconds, CancellationToken ct) =>
    {
        try
        {
            var options = new EnqueueOptions
            {
                Queue = queue ?? JobDefaults.Queue,
                Priority = priority ?? 0,
                Countdown = countdownSeconds is { } s ? TimeSpan.FromSeconds(s) : null,
            };
            var id = await jobs.EnqueueAsync("send_email", new { recipient = email }, options, ct);
            return TypedResults.Accepted($"/jobs/{id}", new Queued(id, $"Task queued to send email to {email}"));
        }
        catch (ArgumentException ex)
        {
            return BadRequest(ex);
        }
        catch (RedisUnavailableException ex)
        {
            // Redis stayed out of reach for REDIS_RETRY_SECONDS: the client may try again later (the message names the job).
            return Unavailable(ex);
        }
    });

    app.MapGet("/jobs/{id}", async Task<Results<Ok<JobView>, ProblemHttpResult>> (string id, JobClient jobs, CancellationToken ct) =>
    {
        if (!JobIds.IsValid(id)) return BadRequest(new ArgumentException($"Invalid job id '{id}': expected '<queue>:<suffix>'."));
        try
        {
            return await jobs.GetAsync(id, ct) is { } info ? TypedResults.Ok(JobView.From(info)) : NotFound(id);
        }
        catch (RedisUnavailableException ex)
        {
            return Unavailable(ex);
        }
    });

    app.MapGet("/jobs/{id}/wait", async Task<Results<Ok<JobView>, ProblemHttpResult>> (
        string id, JobClient jobs, double? timeoutSeconds, CancellationToken ct) =>
    {
        if (!JobIds.IsValid(id)) return BadRequest(new ArgumentException($"Invalid job id '{id}': expected '<queue>:<suffix>'."));
        var seconds = timeoutSeconds ?? 10;
        if (!(seconds > 0 && seconds <= MaxWaitSeconds))
            return BadRequest(new ArgumentException($"timeoutSeconds must be more than 0 and at most {MaxWaitSeconds}, got {seconds}."));
        try
        {
            return TypedResults.Ok(JobView.From(await jobs.WaitAsync(id, TimeSpan.FromSeconds(seconds), ct)));
        }
        catch (KeyNotFoundException)
        {
            return NotFound(id);
        }
        catch (TimeoutException ex)
        {
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status504GatewayTimeout, title: "The job did not finish in time");
        }
    });

    await app.RunAsync();
}
return 0;

static ProblemHttpResult BadRequest(ArgumentException ex) =>
    TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "Invalid request");

static ProblemHttpResult Unavailable(RedisUnavailableException ex) =>
    TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status503ServiceUnavailable, title: "The job queue is unavailable");

static ProblemHttpResult NotFound(string id) =>
    TypedResults.Problem($"No job '{id}' (it never existed or its record expired).",
        statusCode: StatusCodes.Status404NotFound, title: "No such job");

/// <summary>The answer to /send-mail: the new job's id and the Flask example's message.</summary>
internal sealed record Queued(string JobId, string Message);

/// <summary>A job as the API shows it: the state by its wire name, the error without its stack trace.</summary>
internal sealed record JobView(
    string Id, string? Task, string Queue, string State, System.Text.Json.JsonElement? Result, JobErrorView? Error,
    int Attempts, int? MaxAttempts, DateTimeOffset? EnqueuedAt, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Node)
{
    public static JobView From(JobInfo job) => new(
        job.Id, job.Task, job.Queue, job.State.ToWire(), job.Result,
        job.Error is { } e ? new JobErrorView(e.Type, e.Message, e.Attempt) : null,
        job.Attempts, job.MaxAttempts, job.EnqueuedAt, job.StartedAt, job.FinishedAt, job.Node);
}

internal sealed record JobErrorView(string Type, string Message, int Attempt);
