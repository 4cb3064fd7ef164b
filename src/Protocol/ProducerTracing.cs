using System.Diagnostics;

namespace ClusterJobs.Protocol;

/// <summary>
/// Distributed tracing of enqueues: a <c>send</c> span per enqueue call (ActivitySource <see cref="SourceName"/>), whose
/// W3C trace context goes into each envelope's <c>traceparent</c> and <c>tracestate</c>, so the node's <c>process</c>
/// span of the job joins the producer's trace. With no listener on the source and no ambient activity, nothing is
/// started and nothing written: an untraced app pays nothing.
/// </summary>
public static class ProducerTracing
{
    public const string SourceName = "ClusterJobs.Producer";
    /// <summary>The <c>messaging.system</c> of every ClusterJobs span (OpenTelemetry messaging conventions).</summary>
    public const string MessagingSystem = "clusterjobs";

    private static readonly ActivitySource Source = new(SourceName, typeof(ProducerTracing).Assembly.GetName().Version?.ToString());

    /// <summary>
    /// Starts the <c>send</c> span of one enqueue call, when something listens; named after the queue when all its jobs
    /// go to one.
    /// </summary>
    internal static Activity? StartSend(JobEnvelope envelope) => Source.HasListeners() ? StartSend([envelope]) : null;

    /// <inheritdoc cref="StartSend(JobEnvelope)"/>
    internal static Activity? StartSend(IReadOnlyList<JobEnvelope> envelopes)
    {
        if (!Source.HasListeners() || envelopes.Count == 0) return null;
        var queue = envelopes[0].Queue;
        var oneQueue = envelopes.All(e => e.Queue == queue);
        // The tags go in at the start, so a sampler sees them.
        var tags = new ActivityTagsCollection
        {
            ["messaging.system"] = MessagingSystem,
            ["messaging.operation.type"] = "send",
            ["messaging.operation.name"] = "send",
        };
        if (oneQueue) tags["messaging.destination.name"] = queue;
        if (envelopes.Count == 1)
        {
            tags["messaging.message.id"] = envelopes[0].Id;
            tags["clusterjobs.task"] = envelopes[0].Task;
        }
        else tags["messaging.batch.message_count"] = envelopes.Count;
        try { return Source.StartActivity(oneQueue ? $"send {queue}" : "send", ActivityKind.Producer, parentContext: default, tags); }
        catch (Exception) { return null; } // a listener's fault (its sampler or callback throwing) must not fail the enqueue
    }

    /// <summary>Ends the send span; a listener's callback throwing is not the enqueue's failure.</summary>
    internal static void End(Activity? send)
    {
        try { send?.Dispose(); }
        catch (Exception) { }
    }

    /// <summary>
    /// <paramref name="envelope"/> carrying the trace context of <paramref name="send"/>, or, when our source has no
    /// listener, of the ambient activity if it is recorded (an app that traces: the job still joins its trace). An
    /// unrecorded ambient activity, such as the one ASP.NET Core starts for every request with no tracing set up, is
    /// not written: a node sampling by its parent would drop the job's span. An envelope that names its own context (a
    /// producer that set it) keeps it.
    /// </summary>
    internal static JobEnvelope Stamped(JobEnvelope envelope, Activity? send)
    {
        if (envelope.TraceParent is not null) return envelope;
        var context = send ?? (Activity.Current is { Recorded: true } current ? current : null);
        if (context is not { IdFormat: ActivityIdFormat.W3C }) return envelope;
        return envelope with { TraceParent = context.Id, TraceState = context.TraceStateString };
    }

    /// <summary>Marks the send span failed with the exception's type (the enqueue threw).</summary>
    internal static void Failed(Activity? send, Exception ex)
    {
        if (send is null) return;
        send.SetStatus(ActivityStatusCode.Error, ex.Message);
        send.SetTag("error.type", ex.GetType().FullName);
    }
}
