using System.Diagnostics;
using Akka.Actor;
using Akka.TestKit;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Results;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

public sealed class WorkerActorSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const string Node = "node-1";
    private const string Queue = "q";

    private readonly Signals _signals = new();
    private readonly TaskRegistry _tasks;
    private readonly TestProbe _results;
    private readonly TestProbe _pool;
    private readonly IActorRef _parent;

    public WorkerActorSpecs(ITestOutputHelper output) : base(SpecConfig.Hocon, output: output)
    {
        var json = TaskRegistry.DefaultArgumentJson();
        _tasks = new TaskRegistry(
        [
            TaskRegistration.For<EchoHandler>("echo", json),
            TaskRegistration.For<BoomHandler>("boom", json),
            TaskRegistration.For<PermanentHandler>("permanent", json),
            TaskRegistration.For<HangHandler>("hang", json),
            TaskRegistration.For<LateHandler>("late", json),
            TaskRegistration.For<SoftHandler>("soft", json),
            TaskRegistration.For<NoResultHandler>("no_result", json),
        ]);
        var services = new ServiceCollection().AddSingleton(_signals).BuildServiceProvider();
        _results = CreateTestProbe("results");
        _pool = CreateTestProbe("pool");
        // These handlers never talk to Redis (no progress, no children): the worker's brokers need no connection.
        Func<string, QueueBroker> brokers = queue => new QueueBroker(null!, new RedisKeys("specs"), queue, Node, new BrokerSettings());
        _parent = Sys.ActorOf(ForwardingParent.Props(WorkerActorExtensions.WorkerProps(_tasks, services, _results.Ref, Node, brokers), _pool.Ref), "pool");
    }

    // ---- handlers ----

    public sealed class Signals
    {
        public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource ReleaseLate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<string> NoResultRan { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public sealed record EchoArgs(string Text);
    public sealed record EchoResult(string Text, int Attempt, string Node);
    public sealed record NoArgs;

    public sealed class EchoHandler : IJobHandler<EchoArgs, EchoResult>
    {
        public Task<EchoResult> HandleAsync(EchoArgs args, JobContext job, CancellationToken ct) =>
            Task.FromResult(new EchoResult(args.Text, job.Attempt, job.Node));
    }

    public sealed class BoomHandler : IJobHandler<NoArgs, string>
    {
        public Task<string> HandleAsync(NoArgs args, JobContext job, CancellationToken ct) => throw new InvalidOperationException("boom");
    }

    public sealed class PermanentHandler : IJobHandler<NoArgs, string>
    {
        public Task<string> HandleAsync(NoArgs args, JobContext job, CancellationToken ct) =>
            throw new PermanentJobFailureException("this input can never work");
    }

    /// <summary>Never completes and ignores its token.</summary>
    public sealed class HangHandler : IJobHandler<NoArgs, string>
    {
        public async Task<string> HandleAsync(NoArgs args, JobContext job, CancellationToken ct)
        {
            await new TaskCompletionSource().Task;
            return "never";
        }
    }

    /// <summary>Ignores its token and completes only when the spec says so.</summary>
    public sealed class LateHandler(Signals signals) : IJobHandler<NoArgs, string>
    {
        public async Task<string> HandleAsync(NoArgs args, JobContext job, CancellationToken ct)
        {
            await signals.ReleaseLate.Task;
            return "late";
        }
    }

    /// <summary>Waits on its token and says when it saw it cancelled.</summary>
    public sealed class SoftHandler(Signals signals) : IJobHandler<NoArgs, string>
    {
        public async Task<string> HandleAsync(NoArgs args, JobContext job, CancellationToken ct)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
                return "never";
            }
            catch (OperationCanceledException)
            {
                signals.Cancelled.TrySetResult();
                throw;
            }
        }
    }

    public sealed class NoResultHandler(Signals signals) : IJobHandler<EchoArgs>
    {
        public Task HandleAsync(EchoArgs args, JobContext job, CancellationToken ct)
        {
            signals.NoResultRan.TrySetResult(args.Text);
            return Task.CompletedTask;
        }
    }

    // ---- helpers ----

    private void Run(JobLease job) => _parent.Tell(new WorkerActor.Run(job));

    private JobOutcome ExpectOutcome(string jobId, TimeSpan? within = null)
    {
        var record = _results.ExpectMsg<ResultWriter.Record>(within ?? TimeSpan.FromSeconds(3));
        Assert.Equal(Queue, record.Queue);
        Assert.Equal(_parent, record.NotifyWhenRecorded);
        Assert.Equal(jobId, record.Outcome.JobId);
        return record.Outcome;
    }

    /// <summary>The pool hears the worker is free (news of abandoned handlers may come first).</summary>
    private WorkerPool.WorkerFree ExpectFree(TimeSpan? within = null)
    {
        var free = (WorkerPool.WorkerFree)_pool.FishForMessage(m => m switch
        {
            WorkerPool.WorkerFree => true,
            WorkerPool.RunawayStarted or WorkerPool.RunawayEnded => false,
            _ => throw new Xunit.Sdk.XunitException($"Unexpected message to the pool: {m}"),
        }, within ?? TimeSpan.FromSeconds(3));
        Assert.Equal(Queue, free.Queue);
        Assert.Equal("child", free.Worker.Path.Name);
        return free;
    }

    /// <summary>A timed-out attempt's error names TimeoutException or a subtype of it.</summary>
    private static void AssertTimeout(JobError error, string limit)
    {
        var type = error.Type == typeof(TimeoutException).FullName
            ? typeof(TimeoutException)
            : typeof(WorkerActor).Assembly.GetType(error.Type);
        Assert.True(type is not null && typeof(TimeoutException).IsAssignableFrom(type), $"{error.Type} is no TimeoutException");
        Assert.Contains(limit, error.Message);
    }

    // ---- specs ----

    [Fact]
    public void A_successful_handler_is_recorded_as_Succeeded_with_its_result_as_json()
    {
        Run(Jobs.Lease(Queue, "ok", attempt: 2, args: """{"text":"hi"}"""));

        var succeeded = Assert.IsType<JobOutcome.Succeeded>(ExpectOutcome("q:ok"));
        Assert.Equal("""{"text":"hi","attempt":2,"node":"node-1"}""", succeeded.ResultJson);
        ExpectFree();
    }

    [Fact]
    public async Task A_handler_without_a_result_is_recorded_with_null()
    {
        Run(Jobs.Lease(Queue, "void", task: "no_result", args: """["positional"]"""));

        Assert.Equal("null", Assert.IsType<JobOutcome.Succeeded>(ExpectOutcome("q:void")).ResultJson);
        Assert.True(_signals.NoResultRan.Task.IsCompleted);
        Assert.Equal("positional", await _signals.NoResultRan.Task);
        ExpectFree();
    }

    [Fact]
    public void A_throwing_handler_with_attempts_left_is_retried_after_a_backoff_with_the_error()
    {
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Run(Jobs.Lease(Queue, "boom", attempt: 1, task: "boom", maxAttempts: 3));

        var retry = Assert.IsType<JobOutcome.Retry>(ExpectOutcome("q:boom"));
        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        // Attempt 1 with a 1 s base backoff: 50-100% of 1 s from the failure.
        Assert.InRange(retry.DueAtMs, before + 500, after + 1_000);
        Assert.Equal("System.InvalidOperationException", retry.Error.Type);
        Assert.Equal("boom", retry.Error.Message);
        Assert.Equal(1, retry.Error.Attempt);
        Assert.Equal(Node, retry.Error.Node);
        Assert.InRange(retry.Error.At, before, after);
        Assert.Contains(nameof(BoomHandler), retry.Error.StackTrace);
        ExpectFree();
    }

    [Fact]
    public void A_throwing_handler_on_its_last_attempt_is_dead_lettered()
    {
        Run(Jobs.Lease(Queue, "last", attempt: 3, task: "boom", maxAttempts: 3));

        var dead = Assert.IsType<JobOutcome.DeadLettered>(ExpectOutcome("q:last"));
        Assert.Equal("System.InvalidOperationException", dead.Error.Type);
        Assert.Equal(3, dead.Error.Attempt);
        ExpectFree();
    }

    [Fact]
    public void A_permanent_failure_is_dead_lettered_at_once()
    {
        Run(Jobs.Lease(Queue, "perm", attempt: 1, task: "permanent", maxAttempts: 5));

        var dead = Assert.IsType<JobOutcome.DeadLettered>(ExpectOutcome("q:perm"));
        Assert.Equal(typeof(PermanentJobFailureException).FullName, dead.Error.Type);
        Assert.Equal("this input can never work", dead.Error.Message);
        ExpectFree();
    }

    [Fact]
    public void Arguments_that_do_not_bind_are_dead_lettered_at_the_first_attempt_naming_the_argument_type()
    {
        Run(Jobs.Lease(Queue, "badargs", attempt: 1, args: """{"text":"hi","extra":1}""", maxAttempts: 3));

        var dead = Assert.IsType<JobOutcome.DeadLettered>(ExpectOutcome("q:badargs"));
        Assert.Equal(typeof(JobArgumentException).FullName, dead.Error.Type);
        Assert.Contains(nameof(EchoArgs), dead.Error.Message);
        Assert.Contains("'echo'", dead.Error.Message);
        Assert.Equal(1, dead.Error.Attempt);
        ExpectFree();
    }

    [Fact]
    public void An_unknown_task_is_dead_lettered_listing_the_registered_tasks()
    {
        Run(Jobs.Lease(Queue, "unknown", attempt: 1, task: "nope", maxAttempts: 3));

        var dead = Assert.IsType<JobOutcome.DeadLettered>(ExpectOutcome("q:unknown"));
        Assert.Equal(typeof(UnknownTaskException).FullName, dead.Error.Type);
        Assert.Contains("'nope'", dead.Error.Message);
        Assert.Contains("boom, echo, hang, late, no_result, permanent, soft", dead.Error.Message);
        ExpectFree();
    }

    [Fact]
    public void A_hung_handler_is_abandoned_at_the_hard_limit_and_the_worker_runs_the_next_job()
    {
        var clock = Stopwatch.StartNew();
        Run(Jobs.Lease(Queue, "hang", attempt: 1, task: "hang", hardTimeoutMs: 300));

        // About a second at most (the limit plus scheduling), with room for a loaded CI machine.
        var outcome = ExpectOutcome("q:hang", TimeSpan.FromSeconds(2));
        _pool.ExpectMsg<WorkerPool.RunawayStarted>(TimeSpan.FromSeconds(1)); // the handler still runs somewhere
        Assert.Equal("q:hang", ExpectFree(TimeSpan.FromSeconds(1)).JobId);
        Assert.InRange(clock.ElapsedMilliseconds, 250, 2_000);
        var retry = Assert.IsType<JobOutcome.Retry>(outcome);
        AssertTimeout(retry.Error, "hard time limit");

        Run(Jobs.Lease(Queue, "next", args: """{"text":"after"}"""));
        Assert.IsType<JobOutcome.Succeeded>(ExpectOutcome("q:next"));
        ExpectFree();
    }

    [Fact]
    public void A_hung_handler_on_its_last_attempt_is_dead_lettered_as_timed_out()
    {
        Run(Jobs.Lease(Queue, "hang-last", attempt: 2, task: "hang", maxAttempts: 2, hardTimeoutMs: 200));

        var dead = Assert.IsType<JobOutcome.DeadLettered>(ExpectOutcome("q:hang-last"));
        AssertTimeout(dead.Error, "hard time limit");
        ExpectFree();
    }

    [Fact]
    public void The_late_outcome_of_an_abandoned_run_is_ignored()
    {
        Run(Jobs.Lease(Queue, "late", task: "late", hardTimeoutMs: 200));
        Assert.IsType<JobOutcome.Retry>(ExpectOutcome("q:late"));
        ExpectFree();

        _signals.ReleaseLate.SetResult();
        _pool.ExpectMsg<WorkerPool.RunawayEnded>();
        _results.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        _pool.ExpectNoMsg(TimeSpan.FromMilliseconds(50));

        Run(Jobs.Lease(Queue, "after-late", args: """{"text":"x"}"""));
        Assert.IsType<JobOutcome.Succeeded>(ExpectOutcome("q:after-late"));
        ExpectFree();
    }

    [Fact]
    public void At_the_soft_limit_the_handlers_token_is_cancelled_and_the_attempt_fails_as_timed_out()
    {
        Run(Jobs.Lease(Queue, "soft", task: "soft", softTimeoutMs: 200));

        var retry = Assert.IsType<JobOutcome.Retry>(ExpectOutcome("q:soft"));
        Assert.True(_signals.Cancelled.Task.IsCompleted, "the handler did not see its token cancelled");
        AssertTimeout(retry.Error, "soft time limit");
        ExpectFree();
    }

    [Fact]
    public async Task Cancelling_the_running_job_cancels_its_token_and_records_it_as_Cancelled()
    {
        Run(Jobs.Lease(Queue, "cancel-me", task: "soft"));
        _results.ExpectNoMsg(TimeSpan.FromMilliseconds(100));

        _parent.Tell(new WorkerActor.CancelRunning("q:other")); // not the job running here: ignored
        _results.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        _parent.Tell(new WorkerActor.CancelRunning("q:cancel-me"));

        Assert.IsType<JobOutcome.Cancelled>(ExpectOutcome("q:cancel-me"));
        Assert.Equal("q:cancel-me", ExpectFree().JobId);
        await _signals.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(2)); // times out if the handler never saw its token cancelled
        _results.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // the handler's own end is not recorded again
    }

    [Fact]
    public void A_worker_that_crashes_on_a_fault_of_its_own_records_its_job_as_a_failed_attempt_and_is_restarted()
    {
        // A negative soft limit makes the worker itself throw while starting the job (an actor failure, not a handler's).
        var lease = Jobs.Lease(Queue, "crash", attempt: 1, args: """{"text":"hi"}""");
        Run(lease with { Envelope = lease.Envelope with { SoftTimeoutMs = -5 } });

        var retry = Assert.IsType<JobOutcome.Retry>(ExpectOutcome("q:crash"));
        Assert.Equal(typeof(ArgumentOutOfRangeException).FullName, retry.Error.Type);
        ExpectFree();

        Run(Jobs.Lease(Queue, "after", attempt: 1, args: """{"text":"again"}"""));
        Assert.IsType<JobOutcome.Succeeded>(ExpectOutcome("q:after"));
        ExpectFree();
    }

    [Theory]
    [InlineData(long.MaxValue, long.MaxValue)] // "no cap", as a producer in another language may write it
    [InlineData(300_000_000_000_000, long.MaxValue)] // a first delay past the year 9999
    public void A_backoff_past_any_date_retries_after_the_longest_delay_and_frees_the_worker(long backoffMs, long backoffMaxMs)
    {
        var lease = Jobs.Lease(Queue, "far", task: "boom");
        var now = DateTimeOffset.UtcNow;
        Run(lease with { Envelope = lease.Envelope with { BackoffMs = backoffMs, BackoffMaxMs = backoffMaxMs } });

        var retry = Assert.IsType<JobOutcome.Retry>(ExpectOutcome("q:far"));
        Assert.Equal("boom", retry.Error.Message); // the handler's failure, not one of the worker's
        Assert.InRange(retry.DueAtMs, now.Add(RetryPolicy.LongestDelay / 2).ToUnixTimeMilliseconds(),
            DateTimeOffset.UtcNow.Add(RetryPolicy.LongestDelay).ToUnixTimeMilliseconds()); // 50-100% of it: the jitter
        ExpectFree();
    }

    [Fact]
    public void A_soft_limit_timer_is_disarmed_when_its_job_ends_before_it()
    {
        // Each armed timer lives until its limit: jobs that end first must not leave theirs behind (an hour's limit at
        // hundreds of jobs a second held millions).
        const int jobs = 1500;
        var before = Timer.ActiveCount;
        for (var i = 0; i < jobs; i++)
        {
            Run(Jobs.Lease(Queue, $"quick{i}", args: """{"text":"x"}""", softTimeoutMs: 3_600_000));
            Assert.IsType<JobOutcome.Succeeded>(ExpectOutcome($"q:quick{i}"));
            ExpectFree();
        }

        var left = Timer.ActiveCount - before; // other specs' timers come and go meanwhile: far fewer than the jobs
        Assert.True(left < jobs / 3, $"{left} timers more than before {jobs} jobs with a soft limit");
    }

    [Fact]
    public void Runs_one_job_after_another()
    {
        for (var i = 0; i < 3; i++)
        {
            Run(Jobs.Lease(Queue, $"seq{i}", args: $$"""{"text":"{{i}}"}"""));
            Assert.Contains($"\"text\":\"{i}\"", Assert.IsType<JobOutcome.Succeeded>(ExpectOutcome($"q:seq{i}")).ResultJson);
            ExpectFree();
        }
    }
}
