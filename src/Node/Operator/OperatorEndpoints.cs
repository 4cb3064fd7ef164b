using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClusterJobs.Node.Queues;
using ClusterJobs.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using HttpResults = Microsoft.AspNetCore.Http.Results;

namespace ClusterJobs.Node.Operator;

/// <summary>
/// The operator's HTTP API and dashboard (README.md, "Operating a cluster"). A node serves them on its own port when
/// CLUSTERJOBS_HTTP_PORT is set; an ASP.NET Core app that hosts a node maps them itself:
/// <c>app.MapClusterJobsOperator("/jobs")</c>. With a token (the argument, else CLUSTERJOBS_HTTP_TOKEN) every call but
/// the health check needs it. Changes must come as JSON from this dashboard's own origin or a non-browser client, so a
/// web page elsewhere cannot make a visitor's browser pause a queue or enqueue a job (cross-site requests).
/// </summary>
public static class OperatorEndpoints
{
    /// <summary>The longest countdown the API takes (ten years): further is a mistake in the units.</summary>
    private const double MaxCountdownSeconds = 10 * 365.25 * 86_400;

    public static RouteGroupBuilder MapClusterJobsOperator(this IEndpointRouteBuilder endpoints, string prefix = "", string? token = null)
    {
        var group = endpoints.MapGroup(prefix);
        group.MapGet("/", () => HttpResults.Content(Dashboard.Html, "text/html; charset=utf-8"));
        group.MapGet("/api/health", async (OperatorApi ops) =>
        {
            var health = await ops.HealthAsync();
            return HttpResults.Json(health, OperatorJson.Options, statusCode: health.Healthy ? 200 : 503);
        });

        var api = group.MapGroup("/api").AddEndpointFilter(async (context, next) =>
        {
            var ops = context.HttpContext.RequestServices.GetService(typeof(OperatorApi)) as OperatorApi;
            return Authorized(context.HttpContext.Request, token ?? ops?.Token)
                ? await next(context)
                : Problem(401, "Token required", "This API needs its token (CLUSTERJOBS_HTTP_TOKEN): send 'Authorization: Bearer <token>'.");
        });
        api.MapGet("/cluster", (OperatorApi ops) => Answer(ops, async () => Json(await ops.GetClusterAsync())));
        api.MapGet("/queues", (OperatorApi ops, CancellationToken ct) => Answer(ops, async () => Json(await ops.GetQueuesAsync(ct))));
        api.MapGet("/queues/{queue}", (string queue, OperatorApi ops) => Answer(ops, async () => Json(await ops.GetQueueAsync(queue))));
        api.MapGet("/queues/{queue}/dead", (string queue, string? task, string? offset, string? count, OperatorApi ops) => Answer(ops, async () =>
        {
            var (from, many) = Page(offset, count);
            return Json((await ops.Jobs.ListDeadLettersAsync(queue, task, from, many)).Select(JobView.From));
        }));
        api.MapGet("/queues/{queue}/jobs", (string queue, string? place, string? offset, string? count, OperatorApi ops) => Answer(ops, async () =>
        {
            JobIds.ValidateQueueName(queue);
            var where = place switch
            {
                null or "ready" => JobPlace.Ready,
                "scheduled" => JobPlace.Scheduled,
                "running" => JobPlace.Running,
                "waiting" => JobPlace.Waiting,
                _ => throw new ArgumentException($"place must be ready, scheduled, running or waiting; got '{place}'."),
            };
            var (from, many) = Page(offset, count);
            return Json((await ops.Jobs.GetManyAsync(await ops.Census.ListAsync(queue, where, from, many))).Select(JobView.From));
        }));
        api.MapGet("/queues/{queue}/recurring", (string queue, OperatorApi ops) =>
            Answer(ops, async () => Json((await ops.Jobs.ListRecurringAsync(queue)).Select(RecurringView.From))));
        api.MapGet("/jobs/{id}", (string id, OperatorApi ops) => Answer(ops, async () =>
            await ops.Jobs.GetAsync(CheckedId(id)) is { } job ? Json(JobView.From(job)) : NoSuchJob(id)));

        var changes = api.MapGroup("").AddEndpointFilter(async (context, next) =>
            CrossSite(context.HttpContext.Request) is { } refused ? Problem(403, "Refused", refused) : await next(context));
        changes.MapPost("/queues/{queue}/pause", (string queue, OperatorApi ops) =>
            Answer(ops, async () => Json(await ops.ChangeAsync(queue, c => c.PauseAsync(queue)))));
        changes.MapPost("/queues/{queue}/resume", (string queue, OperatorApi ops) =>
            Answer(ops, async () => Json(await ops.ChangeAsync(queue, c => c.ResumeAsync(queue)))));
        changes.MapDelete("/queues/{queue}", (string queue, OperatorApi ops) => Answer(ops, async () =>
        {
            try { await ops.ForgetQueueAsync(queue); }
            catch (QueueInUseException ex) { return Problem(409, "Not possible now", ex.Message); } // served, or holds something
            return Json(new QueueForgotten(queue));
        }));
        changes.MapPut("/queues/{queue}/limits", (string queue, OperatorApi ops, HttpContext http) => Answer(ops, async () =>
        {
            var limits = Limits(await BodyAsync(http.Request, LimitsExpected));
            return Json(await ops.ChangeAsync(queue, c => c.ChangeAsync(queue, limits)));
        }));
        changes.MapPost("/queues/{queue}/dead/replay", (string queue, string? task, OperatorApi ops, HttpContext http) =>
            Answer(ops, async () => Json(new Replayed(await ops.Jobs.ReplayAllAsync(queue, task, http.RequestAborted)))));
        changes.MapDelete("/queues/{queue}/dead", (string queue, string? task, OperatorApi ops, HttpContext http) =>
            Answer(ops, async () => Json(new Purged(await ops.Jobs.PurgeDeadLettersAsync(queue, task, http.RequestAborted)))));
        changes.MapPut("/queues/{queue}/recurring/{name}", (string queue, string name, OperatorApi ops, HttpContext http) =>
            Answer(ops, async () =>
            {
                const string expected =
                    "Expected a JSON object like {\"cron\": \"0 3 * * *\", \"task\": \"nightly_report\", \"args\": {...}, \"time_zone\": \"UTC\"}";
                var request = Read<RecurringRequest>(await BodyAsync(http.Request, expected), expected);
                if (string.IsNullOrWhiteSpace(request.Cron)) throw new ArgumentException("'cron' is required: five fields, six with seconds, or a macro such as @hourly.");
                if (string.IsNullOrWhiteSpace(request.Task)) throw new ArgumentException("'task' is required: the name of a task the nodes serve.");
                var options = new RecurringOptions
                {
                    Queue = queue, TimeZone = request.TimeZone ?? RecurringRules.DefaultTimeZone, Priority = request.Priority ?? 0,
                    MaxAttempts = request.MaxAttempts,
                };
                return Json(RecurringView.From(await Conflict(() =>
                    ops.Jobs.AddOrUpdateRecurringAsync(name, request.Cron, request.Task, request.Args, options, http.RequestAborted))));
            }));
        changes.MapDelete("/queues/{queue}/recurring/{name}", (string queue, string name, OperatorApi ops, HttpContext http) => Answer(ops, async () =>
            await ops.Jobs.RemoveRecurringAsync(queue, name, http.RequestAborted) ? Json(new RecurringRemoved(name))
                : Problem(404, "No such recurring job", $"No recurring job '{name}' in queue '{queue}'.")));
        changes.MapPost("/queues/{queue}/recurring/{name}/pause", (string queue, string name, OperatorApi ops, HttpContext http) => Answer(ops, async () =>
        {
            await ops.Jobs.PauseRecurringAsync(queue, name, http.RequestAborted); // paused already: the same answer, as a queue's pause
            return Json(RecurringView.From(await Schedule(ops, queue, name, http.RequestAborted)));
        }));
        changes.MapPost("/queues/{queue}/recurring/{name}/resume", (string queue, string name, OperatorApi ops, HttpContext http) => Answer(ops, async () =>
        {
            await Conflict(() => ops.Jobs.ResumeRecurringAsync(queue, name, http.RequestAborted)); // stopped by a node: 409, saying so
            return Json(RecurringView.From(await Schedule(ops, queue, name, http.RequestAborted)));
        }));
        changes.MapPost("/queues/{queue}/recurring/{name}/trigger", (string queue, string name, OperatorApi ops, HttpContext http) =>
            Answer(ops, async () => HttpResults.Json(new Enqueued(await Conflict(() => ops.Jobs.TriggerRecurringAsync(queue, name, http.RequestAborted))),
                OperatorJson.Options, statusCode: 201)));
        changes.MapPost("/jobs", (OperatorApi ops, HttpContext http) => Answer(ops, async () =>
        {
            const string expected = "Expected a JSON object like {\"task\": \"send_email\", \"args\": {...}, \"queue\": \"default\"}";
            var request = Read<EnqueueRequest>(await BodyAsync(http.Request, expected), expected);
            if (string.IsNullOrWhiteSpace(request.Task)) throw new ArgumentException("'task' is required: the name of a task the nodes serve.");
            if (request.CountdownSeconds is { } s && !(s >= 0 && s <= MaxCountdownSeconds))
                throw new ArgumentException($"countdown_seconds must be from 0 to {MaxCountdownSeconds:0} (ten years), got {s}.");
            var options = new EnqueueOptions
            {
                Queue = request.Queue ?? JobDefaults.Queue, Priority = request.Priority ?? 0, MaxAttempts = request.MaxAttempts,
                Countdown = request.CountdownSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : null, IdempotencyKey = request.IdempotencyKey,
            };
            var id = await ops.Jobs.EnqueueAsync(request.Task, request.Args, options, http.RequestAborted);
            return HttpResults.Json(new Enqueued(id), OperatorJson.Options, statusCode: 201);
        }));
        changes.MapPost("/jobs/{id}/cancel", (string id, OperatorApi ops, HttpContext http) => Answer(ops, async () =>
        {
            var cancelled = await ops.Jobs.CancelAsync(CheckedId(id), http.RequestAborted);
            var job = await ops.Jobs.GetAsync(id, http.RequestAborted);
            if (job is null) return NoSuchJob(id);
            // The state is read after the cancel: a running job may have ended or been handed back in between.
            return (cancelled, job.State) switch
            {
                (_, JobState.Cancelled) => Json(new CancelAnswer(id, "cancelled")), // a second cancel is no error
                // still to run (again): the node that takes it ends it cancelled instead
                (true, JobState.Running or JobState.Retrying or JobState.Queued or JobState.Scheduled) => Json(new CancelAnswer(id, "requested")),
                (false, JobState.Waiting) => Problem(409, "Not cancelled",
                    $"Job '{id}' waits for the children it split into, and a waiting parent is not cancelled: cancel its children " +
                    "(it then fails, unless it collects its children's failures)."),
                _ => Problem(409, "Not cancelled", $"Job '{id}' is {job.State.ToWire()}: it finished before it could be cancelled."),
            };
        }));
        changes.MapPost("/jobs/{id}/replay", (string id, OperatorApi ops, HttpContext http) =>
            Answer(ops, async () => Json(new Replayed([await Conflict(() => ops.Jobs.ReplayAsync(CheckedId(id), http.RequestAborted))]))));
        return group;
    }

    /// <summary>Maps what goes wrong to its status code, with the message that says why (problem+json); a bug is a logged 500.</summary>
    private static async Task<IResult> Answer(OperatorApi ops, Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (KeyNotFoundException ex) { return Problem(404, "Not found", ex.Message); }
        catch (ArgumentException ex) { return Problem(400, "Invalid request", ex.Message); }
        catch (ConflictException ex) { return Problem(409, "Not possible now", ex.Message); }
        catch (NoRouterException ex) { return Problem(503, "Queue router unavailable", ex.Message); }
        catch (RedisUnavailableException ex) { return Problem(503, "Redis unavailable", ex.Message); }
        catch (StackExchange.Redis.RedisServerException ex) when (!IsPassing(ex))
        {
            // Redis answered, and refused: not an outage to wait out, but data to mend (or a bug of ours)
            ops.Log.LogWarning(ex, "Redis refused a command of the operator API");
            return Problem(500, "Redis refused", $"Redis refused the command: {ex.Message} (a key written by hand with another type?)");
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
        {
            return Problem(503, "Redis unavailable", $"Redis did not answer: {ex.Message}");
        }
        catch (OperationCanceledException) { return HttpResults.StatusCode(499); } // the caller gave up
        catch (Exception ex)
        {
            ops.Log.LogError(ex, "The operator API failed");
            return Problem(500, "Internal error", $"{ex.GetType().Name}: {ex.Message} (the node's log has the details)");
        }
    }

    /// <summary>Refusals that pass by themselves (a restart loading its data, a busy script, a failover): answered 503.</summary>
    private static bool IsPassing(StackExchange.Redis.RedisServerException ex) =>
        new[] { "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY" }.Any(code => ex.Message.StartsWith(code, StringComparison.Ordinal));

    /// <summary>The schedule as it is now; removed meanwhile, a 404 like any missing one.</summary>
    private static async Task<RecurringJob> Schedule(OperatorApi ops, string queue, string name, CancellationToken ct) =>
        await ops.Jobs.GetRecurringAsync(queue, name, ct) ?? throw new KeyNotFoundException($"No recurring job '{name}' in queue '{queue}'.");

    /// <summary>The client's "not in this state" answers (replaying what is not a dead letter, or was replayed) are 409s.</summary>
    private static async Task<T> Conflict<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (InvalidOperationException ex)
        {
            throw new ConflictException(ex.Message);
        }
    }

    private sealed class ConflictException(string message) : Exception(message);

    private const string LimitsExpected = "Expected a JSON object like {\"max_running\": 4, \"rate_limit_per_second\": 10} (null lifts a limit)";

    /// <summary>
    /// The request's body as JSON, read here rather than bound by ASP.NET, whose refusal of a body that is not JSON is a
    /// bare 400 (no detail) given before the token check; here it is a 400 that says why, after it.
    /// </summary>
    private static async Task<JsonElement> BodyAsync(HttpRequest request, string expected)
    {
        try
        {
            using var body = await JsonDocument.ParseAsync(request.Body, default, request.HttpContext.RequestAborted);
            return body.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"{expected}; the body is not JSON: {ex.Message}");
        }
    }

    /// <summary>{"max_running": 4, "rate_limit_per_second": 10}: a field left out is kept, null lifts it.</summary>
    private static QueueSettings.Change Limits(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) throw new ArgumentException(LimitsExpected + ".");
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
                "rate_limit_per_second" when value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var r) && double.IsFinite(r) && r > 0
                    => change with { RateLimitPerSecond = r },
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

    /// <summary>
    /// A list's page: from offset (0 to 100,000; default 0), count items (1 to 500; default 50). Taken as text and read
    /// here, so that "?count=ten" is a 400 that says why (ASP.NET's binding answers a bare 400, before the token check).
    /// </summary>
    private static (int Offset, int Count) Page(string? offset, string? count)
    {
        static int? Whole(string? text, string name, string range) =>
            text is null ? null : int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n)
                ? n : throw new ArgumentException($"{name} must be a whole number from {range}; got '{text}'.");
        var (from, many) = (Whole(offset, "offset", "0 to 100000"), Whole(count, "count", "1 to 500"));
        if (from is < 0 or > 100_000) throw new ArgumentException("offset must be from 0 to 100000.");
        if (many is < 1 or > 500) throw new ArgumentException("count must be from 1 to 500.");
        return (from ?? 0, many ?? 50);
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

    /// <summary>
    /// Why a change is refused as possibly cross-site, or null. A browser sends a JSON body (or any non-simple header)
    /// from another site only after a CORS preflight this API never answers, and it names the page's origin; a simple
    /// form post or no-cors fetch can carry neither. So changes need a JSON content type, and a browser's origin must
    /// be this API's own.
    /// </summary>
    private static string? CrossSite(HttpRequest request)
    {
        if (request.Headers.TryGetValue("Sec-Fetch-Site", out var site) && site.ToString() is "cross-site" or "same-site")
            return "A change from another site's page is refused (Sec-Fetch-Site: " + site + ").";
        if (request.Headers.Origin.ToString() is { Length: > 0 } origin &&
            !(Uri.TryCreate(origin, UriKind.Absolute, out var from) && string.Equals(from.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)))
            return $"A change from another origin ({origin}) is refused.";
        if (request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            return "Changes must be sent with 'Content-Type: application/json' (an empty body is fine).";
        return null;
    }

    private static IResult Json<T>(T value) => HttpResults.Json(value, OperatorJson.Options);

    private static IResult NoSuchJob(string id) => Problem(404, "No such job", $"No job '{id}' (it never existed or its record expired).");

    private static IResult Problem(int status, string title, string detail) => HttpResults.Problem(detail, statusCode: status, title: title);
}
