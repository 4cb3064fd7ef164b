using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Operator;

// What the operator API answers (JSON, snake_case; README.md, "Operating a cluster"). Views, not the internal records,
// so the API's shape changes only on purpose.

/// <param name="Node">The address of the node that answered.</param>
/// <param name="Leader">The cluster's leader (it moves members to Up and removes downed ones).</param>
public sealed record ClusterView(string Node, string? Leader, IReadOnlyList<MemberView> Members);

/// <param name="Status">joining, up, leaving, exiting, down, removed...</param>
/// <param name="Reachable">False when this node's failure detector has lost it (the split-brain resolver downs it soon).</param>
/// <param name="Queues">The queues it serves.</param>
/// <param name="Roles">Its other roles (seed, node).</param>
/// <param name="Workers">Its worker pool's load; null for a member without one (the seed, a dashboard) or one that did not answer.</param>
public sealed record MemberView(string Address, string Status, bool Reachable, IReadOnlyList<string> Queues, IReadOnlyList<string> Roles,
    WorkersView? Workers);

/// <param name="Capacity">Jobs it runs at once (CLUSTERJOBS_CONCURRENCY).</param>
/// <param name="Busy">Jobs it runs now, in all and by queue.</param>
/// <param name="Runaways">Abandoned handlers still running (past their hard limit, ignoring cancellation).</param>
public sealed record WorkersView(int Capacity, int Busy, IReadOnlyDictionary<string, int> BusyByQueue, int Runaways);

/// <param name="ServedBy">Up members serving the queue; empty: nothing takes its jobs.</param>
/// <param name="RouterNode">Where the queue's router runs (the oldest member serving it).</param>
/// <param name="Settings">Null when no node serving it answered.</param>
/// <param name="Router">The router's own counters; null when it did not answer.</param>
/// <param name="Totals">Outcomes recorded since the queue's first job (its rate is their change between two reads).</param>
/// <param name="HasRecurring">It holds recurring schedules.</param>
/// <param name="Problem">Keys of it Redis refused to read (written by hand with another type), and why; null when none.</param>
public sealed record QueueView(string Name, QueueCounts Jobs, QueueTotals Totals, IReadOnlyList<string> ServedBy, string? RouterNode,
    SettingsView? Settings, RouterView? Router, bool HasRecurring, string? Problem);

public sealed record SettingsView(bool Paused, int? MaxRunning, double? RateLimitPerSecond);

/// <param name="Buffered">Jobs the router leased ahead and holds for the next free slot.</param>
/// <param name="Pools">Worker pools (one per node) it knows.</param>
/// <param name="FreeSlots">Free slots the pools offered it.</param>
/// <param name="InFlight">Jobs it sent to pools that have not finished.</param>
/// <param name="Granted">Slots pools are leasing for themselves (a backlog spread over nodes).</param>
public sealed record RouterView(int Buffered, int Pools, int FreeSlots, int InFlight, int Granted);

/// <param name="At">When it failed; null when the record's time is no moment (written by hand in other units).</param>
public sealed record JobErrorView(string Type, string Message, string? StackTrace, string? Node, int Attempt, DateTimeOffset? At)
{
    public static JobErrorView From(JobError e) => new(e.Type, e.Message, e.StackTrace, e.Node, e.Attempt, UnixTime.FromMilliseconds(e.At));
}

public sealed record JobView(
    string Id, string Queue, string? Task, string State, JsonElement? Args, JsonElement? Result, JobErrorView? Error,
    IReadOnlyList<JobErrorView> History, int Attempts, int? MaxAttempts, int Priority,
    DateTimeOffset? EnqueuedAt, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Node, bool CancelRequested,
    int? ProgressPercent, string? ProgressMessage, string? ParentId, IReadOnlyList<string> ChildIds, int? ChildrenPending,
    string? ReplayOf, string? ReplayedAs, string? TraceId)
{
    public static JobView From(JobInfo j) => new(
        j.Id, j.Queue, j.Task, j.State.ToWire(), j.Envelope?.Args, j.Result, j.Error is { } e ? JobErrorView.From(e) : null,
        j.History.Select(JobErrorView.From).ToList(), j.Attempts, j.MaxAttempts, j.Envelope?.Priority ?? 0,
        j.EnqueuedAt, j.StartedAt, j.FinishedAt, j.Node, j.CancelRequested, j.ProgressPercent, j.ProgressMessage, j.ParentId,
        j.ChildIds, j.ChildrenPending, j.ReplayOf, j.ReplayedAs, TraceIdOf(j.Envelope));

    /// <summary>The trace the job runs in (from its <c>traceparent</c>), as tracing tools search for it: 32 hex digits.</summary>
    private static string? TraceIdOf(JobEnvelope? envelope) =>
        System.Diagnostics.ActivityContext.TryParse(envelope?.TraceParent, envelope?.TraceState, out var context)
            ? context.TraceId.ToHexString() : null;
}

/// <summary>A job to enqueue through the API (as <see cref="JobClient.EnqueueAsync(string, object?, EnqueueOptions?, CancellationToken)"/>).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record EnqueueRequest(string? Task, JsonElement? Args, string? Queue, int? Priority, double? CountdownSeconds,
    int? MaxAttempts, string? IdempotencyKey);

/// <summary>A recurring schedule to write through the API (as <see cref="JobClient.AddOrUpdateRecurringAsync"/>).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record RecurringRequest(string? Cron, string? Task, JsonElement? Args, string? TimeZone, int? Priority, int? MaxAttempts);

/// <param name="NextRunAt">Null when it runs no more (its cron has no further occurrence, or <c>error</c> says why a node stopped it).</param>
/// <param name="LastRunAt">The last run fired (the cron occurrence) and the job it made.</param>
public sealed record RecurringView(string Name, string Queue, string Cron, string TimeZone, string? Task, JsonElement? Args, int Priority,
    int? MaxAttempts, DateTimeOffset? NextRunAt, DateTimeOffset? LastRunAt, string? LastJobId, DateTimeOffset? CreatedAt,
    DateTimeOffset? UpdatedAt, DateTimeOffset? PausedAt, string? Error)
{
    public static RecurringView From(RecurringJob r) => new(r.Name, r.Queue, r.Cron, r.TimeZone, r.Task, r.Args, r.Template?.Priority ?? 0,
        r.Template?.MaxAttempts, r.NextRunAt, r.LastRunAt, r.LastJobId, r.CreatedAt, r.UpdatedAt, r.PausedAt, r.Error);
}

public sealed record RecurringRemoved(string Removed);

public sealed record QueueForgotten(string Forgotten);

public sealed record Enqueued(string Id);

public sealed record Replayed(IReadOnlyList<string> Ids);

public sealed record Purged(long Deleted);

public sealed record CancelAnswer(string Id, string Outcome);

/// <param name="Redis">"ok", or why it could not be reached.</param>
/// <param name="Member">This node's status in its cluster.</param>
public sealed record HealthView(bool Healthy, string Redis, string Member);

/// <summary>The API's JSON: snake_case, nulls written, enums as strings, whatever the hosting app's own settings.</summary>
public static class OperatorJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
}
