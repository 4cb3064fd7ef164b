using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Tasks;
using Microsoft.Extensions.Logging;

namespace ClusterJobs.Node.Demo;

/// <summary>The seed article's task: send an email (simulated: a short async wait, no real mail).</summary>
public sealed record SendEmailArgs(string Recipient, string? Subject = null);

public sealed class SendEmailTask(ILogger<SendEmailTask> logger) : IJobHandler<SendEmailArgs, string>
{
    public async Task<string> HandleAsync(SendEmailArgs args, JobContext job, CancellationToken ct)
    {
        if (!args.Recipient.Contains('@')) throw new PermanentJobFailureException($"'{args.Recipient}' is not an email address.");
        await Task.Delay(20, ct);
        logger.LogInformation("Sending email to {Recipient} (job {JobId}, attempt {Attempt})", args.Recipient, job.JobId, job.Attempt);
        return $"sent to {args.Recipient}";
    }
}

public sealed record AddArgs(long A, long B);

/// <summary>Adds two numbers: the smallest task with a typed result.</summary>
public sealed class AddTask : IJobHandler<AddArgs, long>
{
    public Task<long> HandleAsync(AddArgs args, JobContext job, CancellationToken ct) => Task.FromResult(args.A + args.B);
}

public sealed record SleepArgs(int Ms);

/// <summary>Waits asynchronously (IO-bound work); used by tests and benchmarks.</summary>
public sealed class SleepTask : IJobHandler<SleepArgs, int>
{
    public async Task<int> HandleAsync(SleepArgs args, JobContext job, CancellationToken ct)
    {
        await Task.Delay(args.Ms, ct);
        return args.Ms;
    }
}

public sealed record FailArgs(string Message, int SucceedOnAttempt = 0);

/// <summary>Fails with the given message (until <c>SucceedOnAttempt</c>, if set): exercises retries and dead-letters.</summary>
public sealed class FailTask : IJobHandler<FailArgs, string>
{
    public Task<string> HandleAsync(FailArgs args, JobContext job, CancellationToken ct) =>
        args.SucceedOnAttempt > 0 && job.Attempt >= args.SucceedOnAttempt
            ? Task.FromResult($"succeeded on attempt {job.Attempt}")
            : throw new InvalidOperationException(args.Message);
}

public static class DemoTaskRegistration
{
    /// <summary>The tasks the stock node binary serves: send_email, add, sleep, fail, sum.</summary>
    public static ClusterJobsBuilder AddDemoTasks(this ClusterJobsBuilder builder) => builder
        .AddTask<SendEmailTask>("send_email", RetryPolicy.Celery(maxRetries: 3, defaultRetryDelay: TimeSpan.FromSeconds(30)))
        .AddTask<SumTask>("sum", splitting: new SplitOptions { ChunkSize = 1_000 })
        .AddTask<AddTask>("add")
        .AddTask<SleepTask>("sleep")
        .AddTask<FailTask>("fail");
}

/// <summary>Numbers to add; <c>MsPerItem</c> makes an unsplit part take that long per item (a stand-in for real work).</summary>
public sealed record SumArgs(long[] Items, int MsPerItem = 0);

/// <summary>
/// Sums numbers, splitting big inputs into child jobs (at most 10 per level) and adding their sums back up: shows
/// splitting and reducing. Registered with a chunk size of 1,000 items.
/// </summary>
public sealed class SumTask : IJobHandler<SumArgs, long>, IJobSplitter<SumArgs>, IJobReducer<long>
{
    public async Task<long> HandleAsync(SumArgs args, JobContext job, CancellationToken ct)
    {
        if (args.MsPerItem > 0) await Task.Delay(args.MsPerItem * args.Items.Length, ct);
        return args.Items.Sum();
    }

    public int SizeOf(SumArgs args) => args.Items.Length;

    public IEnumerable<SumArgs> Split(SumArgs args, int chunkSize)
    {
        var parts = Math.Clamp((args.Items.Length + chunkSize - 1) / chunkSize, 2, 10);
        var size = (args.Items.Length + parts - 1) / parts;
        return args.Items.Chunk(size).Select(chunk => new SumArgs(chunk, args.MsPerItem));
    }

    public Task<long> ReduceAsync(IReadOnlyList<ChildOutcome<long>> children, JobContext job, CancellationToken ct) =>
        Task.FromResult(children.Sum(c => c.Result));
}
