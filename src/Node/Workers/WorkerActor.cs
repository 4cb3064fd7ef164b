using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Results;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Node.Telemetry;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterJobs.Node.Workers;

/// <summary>
/// Runs one job at a time. The handler runs as a task on the thread pool, never on the actor's thread; its outcome is
/// piped back. At the soft limit the handler's token is cancelled; at the hard limit the worker abandons the attempt,
/// records it as timed out and is free again at once (a late outcome of an abandoned run is ignored).
/// </summary>
public sealed class WorkerActor : ReceiveActor, IWithTimers
{
    private readonly TaskRegistry _tasks;
    private readonly IServiceProvider _services;
    private readonly IActorRef _results;
    private readonly string _node;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<long> _abandoned = [];
    private JobLease? _current;
    private CancellationTokenSource? _cts;
    private Task? _running;
    private long _run;
    /// <summary>When the running attempt's handler was started (unix ms), recorded with its outcome.</summary>
    private long _startedAt;
    /// <summary>The running attempt's task as metrics name it (<see cref="TaskTag"/>), looked up once per attempt.</summary>
    private string _taskTag = JobMetrics.UnknownTask;
    /// <summary>The running attempt's span (null when nothing traces), ended by this actor with the attempt's outcome.</summary>
    private Activity? _span;

    private readonly Func<string, QueueBroker> _brokers;
    private readonly JobMetrics _metrics;

    public WorkerActor(TaskRegistry tasks, IServiceProvider services, IActorRef results, string node, Func<string, QueueBroker> brokers)
    {
        _brokers = brokers;
        _tasks = tasks;
        _services = services;
        _results = results;
        _node = node;
        _metrics = services.GetService<JobMetrics>() ?? Unregistered;

        Receive<Run>(r => Start(r.Job));
        Receive<Finished>(f =>
        {
            // The job too, not only the run: after a restart the run count starts again, and a handler of the instance
            // before it may still finish.
            if (f.Run == _run && _current is not null && f.Outcome.JobId == _current.Envelope.Id) Complete(f.Outcome);
            else if (_abandoned.Remove(f.Run)) Context.Parent.Tell(WorkerPool.RunawayEnded.Instance);
        });
        Receive<HardTimeout>(t =>
        {
            if (t.Run != _run || _current is not { } job || HandlerDone) return;
            var limit = TimeSpan.FromMilliseconds(job.Envelope.HardTimeoutMs ?? 0);
            _log.Warning("Job {0} passed its hard time limit of {1}; abandoning it", job.Envelope.Id, limit);
            var failed = Outcomes.Failed(job, new JobTimeoutException($"The job exceeded its hard time limit of {limit}.", hard: true), _node, PolicyFor(job));
            // Split children are its retry (docs/supervision.md): a job its policy would not retry (its last attempt, or
            // a timeout it never retries) is dead-lettered, not run again in pieces.
            Abandon(failed is JobOutcome.Retry ? SplitAfterTimeout(job) ?? failed : failed);
        });
        Receive<HandBack>(_ =>
        {
            if (_current is not { } job || HandlerDone) return;
            _log.Info("Handing job {0} back to its queue (node leaving)", job.Envelope.Id);
            Abandon(new JobOutcome.Returned(job.Envelope.Id));
        });
        Receive<CancelRunning>(c =>
        {
            if (_current is not { } job || job.Envelope.Id != c.JobId || HandlerDone) return;
            _log.Info("Job {0} cancelled while running", c.JobId);
            Abandon(new JobOutcome.Cancelled(job.Envelope.Id));
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// The handler has returned and its outcome is on its way (<see cref="Finished"/>): a hard limit, a cancel or a hand-back
    /// that comes now is too late, and the outcome, whose side effects happened, is what is recorded.
    /// </summary>
    private bool HandlerDone => _running is { IsCompleted: true };

    private void Start(JobLease job)
    {
        _current = job;
        _startedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _taskTag = TaskTag(job);
        _metrics.Started(job, _taskTag, _startedAt);
        var run = ++_run;
        _cts = new CancellationTokenSource();
        if (job.Envelope.SoftTimeoutMs is { } soft) _cts.CancelAfter(TimeSpan.FromMilliseconds(soft));
        var token = _cts.Token;
        // Task.Run: even a handler that blocks before its first await never runs on this actor's thread.
        var policy = PolicyFor(job);
        // The span is current for the handler's task (Task.Run captures it) but not left current on this actor's thread.
        var outer = Activity.Current;
        _span = JobTracing.StartProcess(job, _node);
        var running = Task.Run(() => Execute(job, policy, token), CancellationToken.None);
        if (Activity.Current != outer) Activity.Current = outer;
        _running = running;
        // Armed once the handler is on its way, so the limit never ends an attempt before its span has run that long.
        if (job.Envelope.HardTimeoutMs is { } hard)
            Timers.StartSingleTimer("hard", new HardTimeout(run), TimeSpan.FromMilliseconds(hard));
        running.PipeTo(Self, success: outcome => new Finished(run, outcome),
            failure: ex => new Finished(run, Outcomes.Failed(job, ex, _node, policy)));
    }

    /// <summary>For a host that registered no <see cref="JobMetrics"/> (a test's bare service provider): measured, read by nobody.</summary>
    private static readonly JobMetrics Unregistered = new();

    /// <summary>The task as metrics name it: registered names only, so the series stay as few as the handlers.</summary>
    private string TaskTag(JobLease job) => _tasks.TryGet(job.Envelope.Task) is { } task ? task.Name : JobMetrics.UnknownTask;

    private RetryPolicy PolicyFor(JobLease job) =>
        (_tasks.TryGet(job.Envelope.Task)?.Retry ?? RetryPolicy.Default).For(job.Envelope);

    private async Task<JobOutcome> Execute(JobLease job, RetryPolicy policy, CancellationToken ct)
    {
        try
        {
            var envelope = job.Envelope;
            var task = _tasks.Get(envelope.Task);
            var broker = _brokers(envelope.Queue);
            await using var scope = _services.CreateAsyncScope();
            var sp = scope.ServiceProvider;
            var context = new JobContext(envelope, job.Attempt, _node, sp, policy)
            {
                ProgressSink = (percent, message) => broker.ReportProgressAsync(envelope.Id, percent, message),
            };
            if (job.IsReduce)
            {
                var children = await broker.ReadChildrenAsync(envelope.Id).ConfigureAwait(false);
                var reduced = task.Reduce is { } reduce
                    ? await reduce(sp, children, context, ct).ConfigureAwait(false)
                    : "[" + string.Join(',', children.Select(c => c.Succeeded ? c.Json : "null")) + "]";
                return new JobOutcome.Succeeded(envelope.Id, reduced);
            }
            if (task.Splitting.ChunkSize is { } chunk && task.SizeOf!(sp, envelope.Args) > chunk)
                return Splitting.Children(job, task, task.SplitArgs!(sp, envelope.Args, chunk).Select(a => new ChildJob(task.Name, a)), Activity.Current);
            var result = await task.InvokeAsync(sp, envelope.Args, context, ct).ConfigureAwait(false);
            if (context.RequestedChildren is { } requested) return Splitting.Children(job, task, requested, Activity.Current);
            return new JobOutcome.Succeeded(envelope.Id, result);
        }
        catch (OperationCanceledException ex) when (ct.IsCancellationRequested)
        {
            var limit = TimeSpan.FromMilliseconds(job.Envelope.SoftTimeoutMs ?? 0);
            return Outcomes.Failed(job, new JobTimeoutException($"The job exceeded its soft time limit of {limit}.", hard: false, ex), _node, policy);
        }
        catch (Exception ex)
        {
            return Outcomes.Failed(job, ex, _node, policy);
        }
    }

    /// <summary>A task with a splitter retries a hard-timed-out attempt as split children instead of the whole again.</summary>
    private JobOutcome? SplitAfterTimeout(JobLease job)
    {
        if (job.IsReduce || _tasks.TryGet(job.Envelope.Task) is not { CanSplit: true } task) return null;
        try
        {
            using var scope = _services.CreateScope();
            var size = task.SizeOf!(scope.ServiceProvider, job.Envelope.Args);
            if (size < 2) return null;
            var chunk = Math.Max(1, Math.Min(task.Splitting.ChunkSize ?? int.MaxValue, (size + 1) / 2));
            return Splitting.Children(job, task, task.SplitArgs!(scope.ServiceProvider, job.Envelope.Args, chunk).Select(a => new ChildJob(task.Name, a)), _span);
        }
        catch (Exception ex)
        {
            _log.Warning(ex, "Job {0} timed out and could not be split; retrying it whole", job.Envelope.Id);
            return null;
        }
    }

    /// <summary>Gives up on the running handler (hard limit or cancel): its token is cancelled and the slot is free now.</summary>
    private void Abandon(JobOutcome outcome)
    {
        _cts?.Cancel();
        if (_running is { IsCompleted: false })
        {
            _abandoned.Add(_run);
            Context.Parent.Tell(WorkerPool.RunawayStarted.Instance);
        }
        Complete(outcome);
    }

    private void Complete(JobOutcome outcome)
    {
        var job = _current!;
        Timers.Cancel("hard");
        // Not disposed (an abandoned handler may still hold its token), but its soft-limit timer disarmed: else every
        // job that ended before its limit would keep a live timer until then (a million of them for an hour's limit
        // at 300 jobs/s).
        _cts?.CancelAfter(Timeout.InfiniteTimeSpan);
        _cts = null;
        _current = null;
        _running = null;
        _run++;
        Report(job, outcome);
    }

    /// <summary>The attempt's outcome (with when its handler started) to the result writer; the slot is free again.</summary>
    private void Report(JobLease job, JobOutcome outcome)
    {
        _metrics.Ended(job, _taskTag, outcome, _startedAt, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        JobTracing.End(_span, outcome);
        _span = null;
        _results.Tell(new ResultWriter.Record(job.Envelope.Queue, outcome with { StartedAt = _startedAt }, Context.Parent));
        Context.Parent.Tell(new WorkerPool.WorkerFree(Self, job.Envelope.Queue, job.Envelope.Id));
    }

    /// <summary>A crash of ours (not the handler's) restarts this actor; its job is recorded as a failed attempt, never lost.</summary>
    protected override void PreRestart(Exception reason, object message)
    {
        if (_current is { } job)
        {
            _cts?.Cancel();
            Report(job, Outcomes.Failed(job, reason, _node, PolicyFor(job)));
        }
        base.PreRestart(reason, message);
    }

    protected override void PostStop()
    {
        _cts?.Cancel();
        JobTracing.Stopped(_span);
    }

    /// <summary>From the pool: run this job.</summary>
    public sealed record Run(JobLease Job) : INoSerializationVerificationNeeded;

    /// <summary>From the pool, at the end of a drain: stop the running job and return it to its queue (no attempt used).</summary>
    public sealed class HandBack : INoSerializationVerificationNeeded
    {
        public static readonly HandBack Instance = new();
        private HandBack() { }
    }

    /// <summary>From the pool: cancel this job if it is the one running here (its token is cancelled, it ends Cancelled).</summary>
    public sealed record CancelRunning(string JobId) : INoSerializationVerificationNeeded;

    private sealed record Finished(long Run, JobOutcome Outcome) : INoSerializationVerificationNeeded;
    private sealed record HardTimeout(long Run) : INoSerializationVerificationNeeded;
}

/// <summary>Turns a failed attempt into a retry or a dead letter by the job's retry policy.</summary>
public static class Outcomes
{
    public static JobOutcome Failed(JobLease job, Exception ex, string node, RetryPolicy policy, DateTimeOffset? now = null)
    {
        var at = now ?? DateTimeOffset.UtcNow;
        var error = new JobError
        {
            Type = ex.GetType().FullName ?? ex.GetType().Name,
            Message = ex.Message,
            StackTrace = ex.StackTrace,
            Node = node,
            Attempt = job.Attempt,
            At = at.ToUnixTimeMilliseconds(),
        };
        if (IsPermanent(ex) || !policy.Retries(ex) || job.Attempt >= policy.MaxAttempts)
            return new JobOutcome.DeadLettered(job.Envelope.Id, error);
        return new JobOutcome.Retry(job.Envelope.Id, error, (at + policy.DelayAfter(job.Attempt)).ToUnixTimeMilliseconds());
    }

    /// <summary>Failures that would fail the same way again: retrying them only wastes attempts.</summary>
    public static bool IsPermanent(Exception ex) =>
        ex is JobArgumentException or UnknownTaskException or PermanentJobFailureException;
}

/// <summary>Turns a split into child envelopes: ids <c>parent.0</c>, <c>parent.1</c>... in the parent's queue.</summary>
public static class Splitting
{
    /// <param name="span">The span of the attempt that split (its context goes to the children); null: the parent's own context.</param>
    public static JobOutcome.Split Children(JobLease parent, TaskRegistration task, IEnumerable<ChildJob> children, Activity? span = null,
        DateTimeOffset? now = null)
    {
        if (span is not { IdFormat: ActivityIdFormat.W3C }) span = null;
        var at = (now ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds();
        var p = parent.Envelope;
        var envelopes = children.Select((child, i) =>
        {
            var envelope = new JobEnvelope
            {
                Id = $"{p.Id}.{i}",
                Task = child.Task,
                Queue = p.Queue,
                Args = child.Args is System.Text.Json.JsonElement e ? e : System.Text.Json.JsonSerializer.SerializeToElement(child.Args, System.Text.Json.JsonSerializerOptions.Web),
                Priority = p.Priority,
                EnqueuedAt = at,
                SoftTimeoutMs = p.SoftTimeoutMs,
                HardTimeoutMs = p.HardTimeoutMs,
                ParentId = p.Id,
                RootId = p.RootId ?? p.Id,
                TraceParent = span is null ? p.TraceParent : span.Id,
                TraceState = span is null ? p.TraceState : span.TraceStateString,
            };
            return new ChildEnvelope(envelope.Id, ProtocolJson.Serialize(envelope), JobIds.ReadyScore(p.Priority, at));
        }).ToList();
        if (envelopes.Count == 0) throw new InvalidOperationException($"Task '{task.Name}' split job {p.Id} into no children.");
        return new JobOutcome.Split(p.Id, envelopes, task.Splitting.OnChildFailure == ChildFailurePolicy.Collect);
    }
}

public static class WorkerActorExtensions
{
    public static Props WorkerProps(TaskRegistry tasks, IServiceProvider services, IActorRef results, string node, Func<string, QueueBroker> brokers) =>
        Props.Create(() => new WorkerActor(tasks, services, results, node, brokers));
}
