using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Tasks;

/// <summary>What a handler knows about the job it runs.</summary>
public sealed class JobContext
{
    internal JobContext(JobEnvelope envelope, int attempt, string node, IServiceProvider services, RetryPolicy retry)
    {
        Envelope = envelope;
        Retry = retry;
        Attempt = attempt;
        Node = node;
        Services = services;
    }

    public JobEnvelope Envelope { get; }
    public string JobId => Envelope.Id;
    public string Task => Envelope.Task;
    public string Queue => Envelope.Queue;
    /// <summary>1 on the first run, 2 on the first retry...</summary>
    public int Attempt { get; }
    /// <summary>The retry policy in force for this job (the task's, with the job's overrides).</summary>
    public RetryPolicy Retry { get; }
    public int MaxAttempts => Retry.MaxAttempts;
    public bool IsLastAttempt => Attempt >= MaxAttempts;
    /// <summary>The cluster node (address) running this attempt.</summary>
    public string Node { get; }
    /// <summary>The job's DI scope: one per attempt.</summary>
    public IServiceProvider Services { get; }

    internal IReadOnlyList<ChildJob>? RequestedChildren { get; private set; }

    /// <summary>
    /// Splits this job into child jobs (in its queue, each with its own retries, spread over the cluster). When the
    /// handler returns, the job waits for them without holding a worker slot; their results then go to the task's
    /// reducer (or, without one, become a JSON array). The handler's own return value is ignored.
    /// </summary>
    public void Split(IEnumerable<ChildJob> children)
    {
        var list = children.ToList();
        if (list.Count == 0) throw new ArgumentException("A split needs at least one child job.", nameof(children));
        RequestedChildren = list;
    }

    internal Func<int, string?, Task>? ProgressSink { get; init; }

    /// <summary>Reports progress (0-100 and a message): visible in GetAsync and published as an event.</summary>
    public Task ReportProgressAsync(int percent, string? message = null)
    {
        if (percent is < 0 or > 100) throw new ArgumentOutOfRangeException(nameof(percent), percent, "Progress is 0 to 100.");
        return ProgressSink?.Invoke(percent, message) ?? System.Threading.Tasks.Task.CompletedTask;
    }
}
