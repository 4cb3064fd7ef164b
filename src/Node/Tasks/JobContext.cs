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
}
