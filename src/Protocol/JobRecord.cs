using System.Text.Json;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>Reads a job hash into a <see cref="JobInfo"/>.</summary>
public static class JobRecord
{
    public static JobInfo Read(string jobId, HashEntry[] fields)
    {
        var map = fields.ToDictionary(f => (string)f.Name!, f => f.Value);
        string? Str(string name) => map.TryGetValue(name, out var v) && !v.IsNull ? (string?)v : null;
        long? Long(string name) => long.TryParse(Str(name), out var l) ? l : null;
        DateTimeOffset? Time(string name) => Long(name) is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

        JobEnvelope? envelope = null;
        try { envelope = Str(JobHashFields.Envelope) is { } e ? ProtocolJson.DeserializeEnvelope(e) : null; }
        catch (JsonException) { /* a malformed envelope is reported through the job's error, not here */ }
        JobError? error = null;
        try { error = Str(JobHashFields.Error) is { } err ? ProtocolJson.DeserializeError(err) : null; }
        catch (JsonException) { error = new JobError { Type = "Unknown", Message = Str(JobHashFields.Error)! }; }

        return new JobInfo
        {
            Id = jobId,
            State = JobStates.TryFromWire(Str(JobHashFields.State), out var s) ? s : JobState.Queued,
            Task = Str(JobHashFields.Task) ?? envelope?.Task,
            Result = Str(JobHashFields.Result) is { } r ? JsonDocument.Parse(r).RootElement.Clone() : null,
            Error = error,
            Attempts = (int)(Long(JobHashFields.Attempts) ?? 0),
            MaxAttempts = (int)(Long(JobHashFields.MaxAttempts) ?? envelope?.MaxAttempts ?? JobDefaults.MaxAttempts),
            EnqueuedAt = Time(JobHashFields.EnqueuedAt),
            StartedAt = Time(JobHashFields.StartedAt),
            FinishedAt = Time(JobHashFields.FinishedAt),
            Node = Str(JobHashFields.Node),
            Envelope = envelope,
        };
    }
}
