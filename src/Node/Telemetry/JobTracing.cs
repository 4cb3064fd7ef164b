using System.Diagnostics;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Telemetry;

/// <summary>
/// Distributed tracing of job runs: a <c>process {queue}</c> span per attempt (ActivitySource <see cref="SourceName"/>),
/// the child of the producer's span named by the envelope's <c>traceparent</c>, current while the handler runs (so what
/// the handler calls, and the jobs it enqueues, join the trace) and ended with the attempt's outcome. With no listener,
/// nothing is started.
/// </summary>
public static class JobTracing
{
    public const string SourceName = "ClusterJobs.Node";

    private static readonly ActivitySource Source = new(SourceName, typeof(JobTracing).Assembly.GetName().Version?.ToString());

    /// <summary>
    /// Starts the attempt's span, current on the calling thread so that a task started next captures it; the caller
    /// puts back <see cref="Activity.Current"/> as it was. The span's parent is the envelope's context only: whatever was
    /// current on the calling thread (an actor's) has nothing to do with the job.
    /// </summary>
    internal static Activity? StartProcess(JobLease job, string node)
    {
        if (!Source.HasListeners()) return null;
        var envelope = job.Envelope;
        // A missing or malformed traceparent leaves the default context: the run is a trace of its own.
        ActivityContext.TryParse(envelope.TraceParent, envelope.TraceState, isRemote: true, out var parent);
        var tags = new ActivityTagsCollection // at the start, so a sampler sees them
        {
            ["messaging.system"] = ProducerTracing.MessagingSystem,
            ["messaging.operation.type"] = "process",
            ["messaging.operation.name"] = "process",
            ["messaging.destination.name"] = envelope.Queue,
            ["messaging.message.id"] = envelope.Id,
            ["clusterjobs.task"] = envelope.Task,
            ["clusterjobs.attempt"] = job.Attempt,
            ["clusterjobs.node"] = node,
        };
        if (job.IsReduce) tags["clusterjobs.phase"] = "reduce";
        Activity.Current = null; // else a default parent context would mean "the current activity"
        try { return Source.StartActivity($"process {envelope.Queue}", ActivityKind.Consumer, parent, tags); }
        catch (Exception) { return null; } // a listener's fault (its sampler or callback throwing) must never touch the job
    }

    /// <summary>Ends the attempt's span with how it ended; a failed attempt (retrying or dead-lettered) is an error with its exception.</summary>
    internal static void End(Activity? activity, JobOutcome outcome) => End(activity, JobMetrics.OutcomeName(outcome), outcome);

    /// <summary>Ends the span of an attempt its worker stopped with (the node shutting down): its lease brings the job back.</summary>
    internal static void Stopped(Activity? activity) => End(activity, "stopped", null);

    private static void End(Activity? activity, string outcomeName, JobOutcome? outcome)
    {
        if (activity is null) return;
        var current = Activity.Current;
        try { Stop(activity, outcomeName, outcome); }
        catch (Exception) { } // as above: a listener's ActivityStopped throwing is not the worker's failure
        // Stop sets Activity.Current to what was current when the span started, on whatever thread ends it: keep this one's.
        Activity.Current = current;
    }

    private static void Stop(Activity activity, string outcomeName, JobOutcome? outcome)
    {
        activity.SetTag("clusterjobs.outcome", outcomeName);
        var error = outcome switch
        {
            JobOutcome.Retry r => r.Error,
            JobOutcome.DeadLettered d => d.Error,
            _ => null,
        };
        if (error is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, error.Message);
            activity.SetTag("error.type", error.Type);
            activity.AddEvent(new ActivityEvent("exception", tags: new ActivityTagsCollection
            {
                ["exception.type"] = error.Type,
                ["exception.message"] = error.Message,
                ["exception.stacktrace"] = error.StackTrace,
            }));
        }
        activity.Dispose();
    }
}
