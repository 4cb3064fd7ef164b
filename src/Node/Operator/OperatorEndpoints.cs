using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClusterJobs.Node.Queues;
using ClusterJobs.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using HttpResults = Microsoft.AspNetCore.Http.Results;

namespace ClusterJobs.Node.Operator;

/// <summary>
/// The operator's HTTP API and dashboard (README.md, "Operating a cluster"). A node serves them on its own port when
/// CLUSTERJOBS_HTTP_PORT is set; an ASP.NET Core app that hosts a node maps them itself:
/// <c>app.MapClusterJobsOperator("/jobs")</c>. Reads are open; changes need the token when one is set.
/// </summary>
public static class OperatorEndpoints
{
    public static RouteGroupBuilder MapClusterJobsOperator(this IEndpointRouteBuilder endpoints, string prefix = "", string? token = null)
    {
        var group = endpoints.MapGroup(prefix);
        group.MapGet("/", () => HttpResults.Content(Dashboard.Html, "text/html; charset=utf-8"));

        var api = group.MapGroup("/api");
        api.MapGet("/health", async (OperatorApi ops) =>
        {
            var health = await ops.HealthAsync();
            return HttpResults.Json(health, OperatorJson.Options, statusCode: health.Healthy ? 200 : 503);
        });
        api.MapGet("/cluster", (OperatorApi ops) => Json(ops.GetCluster()));
        api.MapGet("/queues", (OperatorApi ops, CancellationToken ct) => Answer(async () => Json(await ops.GetQueuesAsync(ct))));
        api.MapGet("/queues/{queue}", (string queue, OperatorApi ops) => Answer(async () => Json(await ops.GetQueueAsync(queue))));
        api.MapGet("/queues/{queue}/dead", (string queue, string? task, int? offset, int? count, OperatorApi ops) => Answer(async () =>
            Json((await ops.Jobs.ListDeadLettersAsync(queue, task, offset ?? 0, Math.Min(count ?? 50, 500))).Select(JobView.From))));
        api.MapGet("/jobs/{id}", (string id, OperatorApi ops) => Answer(async () =>
            await ops.Jobs.GetAsync(CheckedId(id)) is { } job ? Json(JobView.From(job)) : NoSuchJob(id)));

        var changes = api.MapGroup("").AddEndpointFilter(async (context, next) =>
            Authorized(context.HttpContext.Request, token) ? await next(context) : Problem(401, "Token required",
                "This API's changes need its token (CLUSTERJOBS_HTTP_TOKEN): send 'Authorization: Bearer <token>'."));
        changes.MapPost("/queues/{queue}/pause", (string queue, OperatorApi ops) =>
            Answer(async () => Json(await ops.ChangeAsync(queue, c => c.PauseAsync(queue)))));
        changes.MapPost("/queues/{queue}/resume", (string queue, OperatorApi ops) =>
            Answer(async () => Json(await ops.ChangeAsync(queue, c => c.ResumeAsync(queue)))));
        changes.MapPut("/queues/{queue}/limits", (string queue, JsonElement body, OperatorApi ops) =>
            Answer(async () => Json(await ops.ChangeAsync(queue, c => c.ChangeAsync(queue, Limits(body))))));
        changes.MapPost("/queues/{queue}/dead/replay", (string queue, string? task, OperatorApi ops) =>
            Answer(async () => Json(new Replayed(await ops.Jobs.ReplayAllAsync(queue, task)))));
        changes.MapPost("/jobs", (JsonElement body, OperatorApi ops, HttpContext http) => Answer(async () =>
        {
            var request = Read<EnqueueRequest>(body,
                "Expected a JSON object like {\"task\": \"send_email\", \"args\": {...}, \"queue\": \"default\"}");
            if (string.IsNullOrWhiteSpace(request.Task)) throw new ArgumentException("'task' is required: the name of a task the nodes serve.");
            var options = new EnqueueOptions
            {
                Queue = request.Queue ?? JobDefaults.Queue, Priority = request.Priority ?? 0, MaxAttempts = request.MaxAttempts,
                Countdown = request.CountdownSeconds is { } s ? TimeSpan.FromSeconds(s) : null, IdempotencyKey = request.IdempotencyKey,
            };
            var id = await ops.Jobs.EnqueueAsync(request.Task, request.Args, options, http.RequestAborted);
            return HttpResults.Json(new Enqueued(id), OperatorJson.Options, statusCode: 201);
        }));
        changes.MapPost("/jobs/{id}/cancel", (string id, OperatorApi ops) => Answer(async () =>
        {
            if (!await ops.Jobs.CancelAsync(CheckedId(id)))
                return await ops.Jobs.GetAsync(id) is { } job
                    ? Problem(409, "Not cancelled", $"Job '{id}' is {job.State.ToWire()}: it finished before it could be cancelled.")
                    : NoSuchJob(id);
            var now = await ops.Jobs.GetAsync(id);
            return Json(new CancelAnswer(id, now?.State == JobState.Running ? "requested" : "cancelled"));
        }));
        changes.MapPost("/jobs/{id}/replay", (string id, OperatorApi ops) =>
            Answer(async () => Json(new Replayed([await ops.Jobs.ReplayAsync(CheckedId(id))]))));
        return group;
    }

    /// <summary>Maps what goes wrong to its status code, with the message that says why (problem+json).</summary>
    private static async Task<IResult> Answer(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (KeyNotFoundException ex) { return Problem(404, "Not found", ex.Message); }
        catch (ArgumentException ex) { return Problem(400, "Invalid request", ex.Message); }
        catch (InvalidOperationException ex) { return Problem(409, "Not possible now", ex.Message); }
        catch (NoRouterException ex) { return Problem(503, "Queue router unavailable", ex.Message); }
        catch (RedisUnavailableException ex) { return Problem(503, "Redis unavailable", ex.Message); }
        catch (StackExchange.Redis.RedisException ex) { return Problem(503, "Redis unavailable", ex.Message); }
    }

    /// <summary>{"max_running": 4, "rate_limit_per_second": 10}: a field left out is kept, null lifts it.</summary>
    private static QueueSettings.Change Limits(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
            throw new ArgumentException("Expected a JSON object like {\"max_running\": 4, \"rate_limit_per_second\": 10} (null lifts a limit).");
        var change = new QueueSettings.Change();
        var any = false;
        foreach (var field in body.EnumerateObject())
        {
            var value = field.Value;
            any = true;
            change = field.Name switch
            {
                "max_running" when value.ValueKind == JsonValueKind.Null => change with { ClearMaxRunning = true },
                "max_running" when value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var m) && m >= 0 => change with { MaxRunning = m },
                "max_running" => throw new ArgumentException($"max_running must be a whole number, 0 or more, or null; got {value.GetRawText()}."),
                "rate_limit_per_second" when value.ValueKind == JsonValueKind.Null => change with { ClearRateLimit = true },
                "rate_limit_per_second" when value.ValueKind == JsonValueKind.Number && value.GetDouble() > 0 => change with { RateLimitPerSecond = value.GetDouble() },
                "rate_limit_per_second" => throw new ArgumentException($"rate_limit_per_second must be a number above 0, or null; got {value.GetRawText()}."),
                _ => throw new ArgumentException($"Unknown field '{field.Name}': expected max_running or rate_limit_per_second."),
            };
        }
        return any ? change : throw new ArgumentException("Give max_running, rate_limit_per_second or both (null lifts a limit).");
    }

    /// <summary>The body as <typeparamref name="T"/>, in the API's snake_case; a misspelt or mistyped field is a 400 that names it.</summary>
    private static T Read<T>(JsonElement body, string expected)
    {
        if (body.ValueKind != JsonValueKind.Object) throw new ArgumentException(expected + ".");
        try
        {
            return body.Deserialize<T>(OperatorJson.Options) ?? throw new ArgumentException(expected + ".");
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"{expected}: {ex.Message}");
        }
    }

    private static string CheckedId(string id) => JobIds.IsValid(id) ? id
        : throw new ArgumentException($"Invalid job id '{id}': expected '<queue>:<suffix>'.");

    private static bool Authorized(HttpRequest request, string? token)
    {
        if (string.IsNullOrEmpty(token)) return true;
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), Encoding.UTF8.GetBytes(token));
    }

    private static IResult Json<T>(T value) => HttpResults.Json(value, OperatorJson.Options);

    private static IResult NoSuchJob(string id) => Problem(404, "No such job", $"No job '{id}' (it never existed or its record expired).");

    private static IResult Problem(int status, string title, string detail) => HttpResults.Problem(detail, statusCode: status, title: title);
}
