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

    /// <summary>Starts the attempt's span and makes it current on the calling thread (the caller restores the one before).</summary>
    internal static Activity? StartProcess(JobLease job, string node)
    {
        if (!Source.HasListeners()) return null;
        var envelope = job.Envelope;
        // A missing or malformed traceparent leaves the default context: the run is a trace of its own.
        ActivityContext.TryParse(envelope.TraceParent, envelope.TraceState, isRemote: true, out var parent);
        var activity = Source.StartActivity($"process {envelope.Queue}", ActivityKind.Consumer, parent);
        if (activity is null) return null;
        activity.SetTag("messaging.system", ProducerTracing.MessagingSystem);
        activity.SetTag("messaging.operation.type", "process");
        activity.SetTag("messaging.destination.name", envelope.Queue);
        activity.SetTag("messaging.message.id", envelope.Id);
        activity.SetTag("clusterjobs.task", envelope.Task);
        activity.SetTag("clusterjobs.attempt", job.Attempt);
        activity.SetTag("clusterjobs.node", node);
        if (job.IsReduce) activity.SetTag("clusterjobs.phase", "reduce");
        return activity;
    }

    /// <summary>Ends the attempt's span with how it ended; a failed attempt (retrying or dead-lettered) is an error with its exception.</summary>
    internal static void End(Activity? activity, JobOutcome outcome)
    {
        if (activity is null) return;
        activity.SetTag("clusterjobs.outcome", JobMetrics.OutcomeName(outcome));
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
