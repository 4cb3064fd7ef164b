using System.Text.Json;

namespace ClusterJobs.Protocol;

/// <summary>A job's state as <see cref="JobClient.GetAsync"/> reads it from Redis.</summary>
public sealed record JobInfo
{
    public required string Id { get; init; }
    public required JobState State { get; init; }
    public string? Task { get; init; }
    public string Queue => JobIds.QueueOf(Id);
    /// <summary>The handler's return value as JSON; null until it succeeded (or when it returned nothing).</summary>
    public JsonElement? Result { get; init; }
    /// <summary>The last attempt's error, or why the job was dead-lettered.</summary>
    public JobError? Error { get; init; }
    /// <summary>Attempts started so far.</summary>
    public int Attempts { get; init; }
    /// <summary>The attempts the job may use: the producer's override, else (once a node ran it) the task's policy.</summary>
    public int? MaxAttempts { get; init; }
    public DateTimeOffset? EnqueuedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    /// <summary>The node that ran (or runs) the latest attempt.</summary>
    public string? Node { get; init; }
    public JobEnvelope? Envelope { get; init; }
    /// <summary>Every failed attempt's error, oldest first (type, message, stack trace, node, time).</summary>
    public IReadOnlyList<JobError> History { get; init; } = [];
    /// <summary>Cancellation was asked for while the job ran; the node running it ends it Cancelled.</summary>
    public bool CancelRequested { get; init; }

    public T? ResultAs<T>(JsonSerializerOptions? options = null) =>
        Result is { } r ? r.Deserialize<T>(options ?? JsonSerializerOptions.Web) : default;
}
