using System.Text.Json;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>A recurring schedule as Redis holds it (<see cref="JobClient.ListRecurringAsync"/>).</summary>
public sealed record RecurringJob
{
    public required string Name { get; init; }
    public required string Queue { get; init; }
    public required string Cron { get; init; }
    public required string TimeZone { get; init; }
    public string? Task => Template?.Task;
    public JsonElement? Args => Template?.Args;
    /// <summary>The job each run enqueues (its id and time are set per run).</summary>
    public JobEnvelope? Template { get; init; }
    /// <summary>When it runs next; null when it runs no more (no further occurrence, or <see cref="Error"/>) or is paused (<see cref="PausedAt"/>).</summary>
    public DateTimeOffset? NextRunAt { get; init; }
    /// <summary>The run it fired last (the cron occurrence, not the moment a node got to it) and the job it made.</summary>
    public DateTimeOffset? LastRunAt { get; init; }
    public string? LastJobId { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
    public DateTimeOffset? UpdatedAt { get; init; }
    /// <summary>When it was paused (<see cref="JobClient.PauseRecurringAsync"/>); null when it is not. A paused schedule has no next run.</summary>
    public DateTimeOffset? PausedAt { get; init; }
    /// <summary>Why a node stopped firing it (a schedule written by hand that it could not read); null when healthy.</summary>
    public string? Error { get; init; }

    internal static RecurringJob Read(string queue, string name, double score, HashEntry[] fields)
    {
        var map = fields.ToDictionary(f => (string)f.Name!, f => f.Value);
        string? Text(string field) => map.TryGetValue(field, out var v) && !v.IsNull ? (string)v! : null;
        DateTimeOffset? Time(string field) => long.TryParse(Text(field), out var ms) ? UnixTime.FromMilliseconds(ms) : null;
        JobEnvelope? template = null;
        try { template = Text("template") is { } json ? ProtocolJson.DeserializeEnvelope(json) : null; }
        catch (JsonException) { } // written by hand and unreadable: the node that met it says so in Error
        return new RecurringJob
        {
            Name = name, Queue = queue, Cron = Text("cron") ?? "", TimeZone = Text("time_zone") ?? RecurringRules.DefaultTimeZone,
            Template = template,
            NextRunAt = double.IsFinite(score) ? UnixTime.FromMilliseconds((long)Math.Clamp(score, long.MinValue / 2, long.MaxValue / 2)) : null,
            LastRunAt = Time("last_run_at"), LastJobId = Text("last_job_id"),
            CreatedAt = Time("created_at"), UpdatedAt = Time("updated_at"), PausedAt = Time("paused_at"), Error = Text("error"),
        };
    }
}
