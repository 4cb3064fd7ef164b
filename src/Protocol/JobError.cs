using System.Text.Json.Serialization;

namespace ClusterJobs.Protocol;

/// <summary>Why an attempt failed, as stored in the job hash's <c>error</c> field.</summary>
public sealed record JobError
{
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("message")] public required string Message { get; init; }
    [JsonPropertyName("stack")] public string? StackTrace { get; init; }
    [JsonPropertyName("node")] public string? Node { get; init; }
    [JsonPropertyName("attempt")] public int Attempt { get; init; }
    /// <summary>Unix milliseconds.</summary>
    [JsonPropertyName("at")] public long At { get; init; }
}
