using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterJobs.Protocol;

/// <summary>
/// The job as producers write it (format version <see cref="CurrentVersion"/>). Stored as JSON in the job hash's
/// <c>envelope</c> field; the field names are the documented wire names (docs/protocol.md).
/// </summary>
public sealed record JobEnvelope
{
    public const int CurrentVersion = 1;

    /// <summary>Format version. A settable property on purpose: source-generated JSON would zero a missing init-only field.</summary>
    [JsonPropertyName("v")] public int Version { get; set; } = CurrentVersion;
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("task")] public required string Task { get; init; }
    [JsonPropertyName("queue")] public required string Queue { get; init; }
    /// <summary>Handler arguments: a JSON object (bound by name) or array (bound by position).</summary>
    [JsonPropertyName("args"), JsonConverter(typeof(ArgsConverter))] public JsonElement Args { get; init; } = EmptyArgs;

    /// <summary>No arguments: an empty positional list.</summary>
    public static readonly JsonElement EmptyArgs = JsonDocument.Parse("[]").RootElement.Clone();
    /// <summary>0 (lowest, default) to 9 (highest); higher runs first within a queue.</summary>
    [JsonPropertyName("priority")] public int Priority { get; init; }
    /// <summary>Unix milliseconds when the producer enqueued the job.</summary>
    [JsonPropertyName("enqueued_at")] public long EnqueuedAt { get; init; }
    /// <summary>Unix milliseconds before which the job must not start (delayed jobs); null = at once.</summary>
    [JsonPropertyName("not_before")] public long? NotBefore { get; init; }
    /// <summary>Attempts in all (first run included); null = the task's retry policy (default 3).</summary>
    [JsonPropertyName("max_attempts")] public int? MaxAttempts { get; init; }
    /// <summary>First retry delay; null = the task's retry policy (default 1 s, doubling per attempt with jitter).</summary>
    [JsonPropertyName("backoff_ms")] public long? BackoffMs { get; init; }
    /// <summary>Cap on the retry delay; null = the task's retry policy (default 5 min).</summary>
    [JsonPropertyName("backoff_max_ms")] public long? BackoffMaxMs { get; init; }
    [JsonPropertyName("soft_timeout_ms")] public long? SoftTimeoutMs { get; init; }
    [JsonPropertyName("hard_timeout_ms")] public long? HardTimeoutMs { get; init; }
    [JsonPropertyName("parent_id")] public string? ParentId { get; init; }
    [JsonPropertyName("root_id")] public string? RootId { get; init; }
    [JsonPropertyName("idempotency_key")] public string? IdempotencyKey { get; init; }
    /// <summary>For a replayed dead letter: the id of the job it replays (its lineage).</summary>
    [JsonPropertyName("replay_of")] public string? ReplayOf { get; init; }
    /// <summary>
    /// The W3C trace context (<c>traceparent</c> header value) of the span that enqueued the job: the node's span
    /// running it joins that trace. Set by the .NET client when the app traces (docs/protocol.md "Tracing").
    /// </summary>
    [JsonPropertyName("traceparent")] public string? TraceParent { get; init; }
    /// <summary>The W3C <c>tracestate</c> that goes with <see cref="TraceParent"/>, if any.</summary>
    [JsonPropertyName("tracestate")] public string? TraceState { get; init; }
    /// <summary>Attempt number of this delivery: 0 as enqueued, 1 on the first run. Redis's job hash holds the truth.</summary>
    [JsonPropertyName("attempt")] public int Attempt { get; init; }
}

public static class JobDefaults
{
    public const string Queue = "default";
    public const int MaxAttempts = 3;
    public const long BackoffMs = 1_000;
    public const long BackoffMaxMs = 300_000;
    public const int MaxPriority = 9;
    /// <summary>
    /// The longest soft or hard time limit (30 days, in ms). A longer one is refused: a job runs for minutes or hours, a
    /// limit of months is a mistake in its units, and timers cannot hold one past 49 days.
    /// </summary>
    public const long MaxTimeoutMs = 30L * 24 * 3_600_000;
    /// <summary>Largest envelope accepted by default (512 KiB): big data belongs elsewhere, passed by reference.</summary>
    public const int MaxPayloadBytes = 512 * 1024;
    public static readonly TimeSpan ResultTtl = TimeSpan.FromDays(1);
}

/// <summary>Writes missing arguments (an envelope read without <c>args</c>) as the empty list, so every envelope serializes.</summary>
public sealed class ArgsConverter : JsonConverter<JsonElement>
{
    public override JsonElement Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonElement.ParseValue(ref reader);

    public override void Write(Utf8JsonWriter writer, JsonElement value, JsonSerializerOptions options)
    {
        if (value.ValueKind == JsonValueKind.Undefined) JobEnvelope.EmptyArgs.WriteTo(writer);
        else value.WriteTo(writer);
    }
}
