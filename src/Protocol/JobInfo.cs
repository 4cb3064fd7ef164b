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
    /// <summary>The latest progress the handler reported (0-100), and its message.</summary>
    public int? ProgressPercent { get; init; }
    public string? ProgressMessage { get; init; }
    /// <summary>For a split job: how many children it has and how many are not finished yet.</summary>
    public int? ChildrenTotal { get; init; }
    public int? ChildrenPending { get; init; }
    /// <summary>For a split job: its children's ids (<c>id.0</c>, <c>id.1</c>...), in split order.</summary>
    public IReadOnlyList<string> ChildIds => ChildrenTotal is { } n ? Enumerable.Range(0, n).Select(i => $"{Id}.{i}").ToList() : [];
    public string? ParentId => Envelope?.ParentId;
    /// <summary>For a replayed dead letter: the job it replays. For the original: the job that replays it.</summary>
    public string? ReplayOf => Envelope?.ReplayOf;
    public string? ReplayedAs { get; init; }

    public T? ResultAs<T>(JsonSerializerOptions? options = null) =>
        Result is { } r ? r.Deserialize<T>(options ?? JsonSerializerOptions.Web) : default;
}
