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
    /// <summary>The tasks the stock node binary serves: send_email, add, sleep, fail.</summary>
    public static ClusterJobsBuilder AddDemoTasks(this ClusterJobsBuilder builder) => builder
        .AddTask<SendEmailTask>("send_email")
        .AddTask<AddTask>("add")
        .AddTask<SleepTask>("sleep")
        .AddTask<FailTask>("fail");
}
