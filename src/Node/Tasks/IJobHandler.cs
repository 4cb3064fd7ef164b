namespace ClusterJobs.Node.Tasks;

/// <summary>A task handler that returns a result (stored as JSON on the job).</summary>
public interface IJobHandler<in TArgs, TResult>
{
    Task<TResult> HandleAsync(TArgs args, JobContext job, CancellationToken cancellationToken);
}

/// <summary>A task handler with no result.</summary>
public interface IJobHandler<in TArgs>
{
    Task HandleAsync(TArgs args, JobContext job, CancellationToken cancellationToken);
}
