using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Tasks;

/// <summary>
/// A task that can split its input: the runtime uses it by itself when the input is larger than the task's chunk
/// size, and when an attempt hits its hard timeout (the retry then runs as split children, not the whole again).
/// </summary>
public interface IJobSplitter<TArgs>
{
    /// <summary>The size of an input, in the unit of <see cref="SplitOptions.ChunkSize"/> (items, rows, bytes...).</summary>
    int SizeOf(TArgs args);

    /// <summary>Splits an input into parts (at least two), each to run as a child job of the same task.</summary>
    IEnumerable<TArgs> Split(TArgs args, int chunkSize);
}

/// <summary>Combines the results of a split job's children into the parent's result.</summary>
public interface IJobReducer<TResult>
{
    Task<TResult> ReduceAsync(IReadOnlyList<ChildOutcome<TResult>> children, JobContext job, CancellationToken cancellationToken);
}

/// <summary>One child's outcome, in the order the children were split: its result, or (when failures are collected) its error.</summary>
public sealed record ChildOutcome<TResult>(string JobId, TResult? Result, JobError? Error)
{
    public bool Succeeded => Error is null;
}

/// <summary>A child job a handler asks for with <see cref="JobContext.Split"/>; it runs in the parent's queue.</summary>
public sealed record ChildJob(string Task, object? Args);

public enum ChildFailurePolicy
{
    /// <summary>A child that is dead-lettered or cancelled fails the parent (and its ancestors).</summary>
    FailParent,
    /// <summary>Failed children are handed to the reducer with their errors; the parent still completes.</summary>
    Collect,
}

/// <summary>How a task splits: its chunk size (for automatic splitting) and what a failed child does to the parent.</summary>
public sealed record SplitOptions
{
    /// <summary>Inputs larger than this (by <see cref="IJobSplitter{TArgs}.SizeOf"/>) are split before they run.</summary>
    public int? ChunkSize { get; init; }
    public ChildFailurePolicy OnChildFailure { get; init; } = ChildFailurePolicy.FailParent;
}

/// <summary>A child's outcome as stored in its parent's hash: its result JSON, or its error JSON.</summary>
public sealed record ChildResult(string JobId, bool Succeeded, string Json);
