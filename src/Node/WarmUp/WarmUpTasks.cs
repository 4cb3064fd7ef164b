using ClusterJobs.Node.Tasks;

namespace ClusterJobs.Node.WarmUp;

/// <summary>The arguments of a warm-up job: a few fields of common types, so argument binding gets compiled too.</summary>
internal sealed record WarmUpArgs(int Index, string Text, double Value);

/// <summary>Counts warm-up jobs as they finish; <see cref="AllDone"/> completes with the last.</summary>
internal sealed class WarmUpProgress(int jobs)
{
    private readonly TaskCompletionSource _allDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _done;

    public Task AllDone => _allDone.Task;

    public void JobDone()
    {
        if (Interlocked.Increment(ref _done) == jobs) _allDone.TrySetResult();
    }
}

/// <summary>A warm-up job with no result (the shape of most fire-and-forget tasks).</summary>
internal sealed class WarmUpTask(WarmUpProgress progress) : IJobHandler<WarmUpArgs>
{
    public const string Name = "clusterjobs.warmup";

    public Task HandleAsync(WarmUpArgs args, JobContext job, CancellationToken cancellationToken)
    {
        progress.JobDone();
        return Task.CompletedTask;
    }
}

/// <summary>A warm-up job with a result, so the path that stores results is compiled as well.</summary>
internal sealed class WarmUpResultTask(WarmUpProgress progress) : IJobHandler<WarmUpArgs, string>
{
    public const string Name = "clusterjobs.warmup-result";

    public Task<string> HandleAsync(WarmUpArgs args, JobContext job, CancellationToken cancellationToken)
    {
        progress.JobDone();
        return Task.FromResult(args.Text);
    }
}
