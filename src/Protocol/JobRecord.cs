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
        DateTimeOffset? Time(string name) => Long(name) is { } ms ? UnixTime.FromMilliseconds(ms) : null;

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
            Result = ParseResult(Str(JobHashFields.Result)),
            Error = error,
            Attempts = (int)(Long(JobHashFields.Attempts) ?? 0),
            MaxAttempts = (int?)Long(JobHashFields.MaxAttempts) ?? envelope?.MaxAttempts,
            EnqueuedAt = Time(JobHashFields.EnqueuedAt),
            StartedAt = Time(JobHashFields.StartedAt),
            FinishedAt = Time(JobHashFields.FinishedAt),
            Node = Str(JobHashFields.Node),
            Envelope = envelope,
            History = ReadHistory(map),
            CancelRequested = map.ContainsKey(JobHashFields.CancelRequested),
            ProgressPercent = (int?)Long(JobHashFields.ProgressPercent),
            ReplayedAs = Str("replayed_as"),
            ProgressMessage = Str(JobHashFields.ProgressMessage) is { Length: > 0 } m ? m : null,
            ChildrenTotal = (int?)Long(JobHashFields.ChildrenTotal),
            ChildrenPending = (int?)Long(JobHashFields.ChildrenPending),
        };
    }

    /// <summary>Each failed attempt's error, from the <c>error:&lt;attempt&gt;</c> fields, oldest first.</summary>
    private static IReadOnlyList<JobError> ReadHistory(Dictionary<string, RedisValue> map)
    {
        var history = new SortedList<int, JobError>();
        foreach (var (name, value) in map)
        {
            if (!name.StartsWith("error:", StringComparison.Ordinal) || !int.TryParse(name.AsSpan(6), out var attempt)) continue;
            try { if (ProtocolJson.DeserializeError((string)value!) is { } e) history[attempt] = e; }
            catch (JsonException) { history[attempt] = new JobError { Type = "Unknown", Message = (string)value!, Attempt = attempt }; }
        }
        return history.Values.ToList();
    }

    /// <summary>A result that is not JSON (written by hand, say) is returned as a JSON string rather than failing the read.</summary>
    private static JsonElement? ParseResult(string? raw)
    {
        if (raw is null) return null;
        try { return JsonDocument.Parse(raw).RootElement.Clone(); }
        catch (JsonException) { return JsonSerializer.SerializeToElement(raw, ProtocolJson.Default.String); }
    }
}
