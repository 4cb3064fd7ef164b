using System.Diagnostics.Metrics;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Workers;

namespace ClusterJobs.Node.Telemetry;

/// <summary>
/// The node's metrics (<see cref="MeterName"/>), read by OpenTelemetry, <c>dotnet-counters</c> or any
/// <see cref="MeterListener"/>: attempts by outcome, how long handlers ran, how long jobs waited for a slot, and how
/// many slots are busy. Tagged by queue and task; a task no handler is registered for is tagged <c>(unknown)</c>, so a
/// producer's typos cannot grow the number of series without bound.
/// </summary>
public sealed class JobMetrics
{
    public const string MeterName = "ClusterJobs.Node";
    public const string UnknownTask = "(unknown)";
    private readonly Counter<long> _attempts;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _wait;
    private readonly UpDownCounter<long> _busy;

    public JobMetrics(IMeterFactory? meters = null)
    {
        var meter = meters?.Create(MeterName) ?? new Meter(MeterName);
        _attempts = meter.CreateCounter<long>("clusterjobs.job.attempts", "{attempt}",
            "Attempts this node ran, by how each ended: succeeded, retrying, dead_lettered, cancelled, split, returned (handed back on shutdown)");
        _duration = meter.CreateHistogram<double>("clusterjobs.job.duration", "s", "How long an attempt's handler ran, by how it ended",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800] });
        _wait = meter.CreateHistogram<double>("clusterjobs.job.wait", "s",
            "From when a job could first run (enqueued, or its countdown's end) to its first attempt's start",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600] });
        _busy = meter.CreateUpDownCounter<long>("clusterjobs.workers.busy", "{job}", "Jobs this node runs now");
    }

    /// <summary>An attempt starts: a slot is busy, and for a first attempt, how long the job waited for it.</summary>
    public void Started(JobLease job, string task, long nowMs)
    {
        try { RecordStart(job, task, nowMs); }
        catch (Exception) { } // a listener's fault (a MeterListener callback throwing) must never touch the job
    }

    /// <summary>An attempt ended (or was abandoned): its outcome and how long its handler ran.</summary>
    public void Ended(JobLease job, string task, JobOutcome outcome, long startedAtMs, long nowMs)
    {
        try { RecordEnd(job, task, outcome, startedAtMs, nowMs); }
        catch (Exception) { } // as above
    }

    /// <summary>How an attempt ended, as metrics and spans name it.</summary>
    public static string OutcomeName(JobOutcome outcome) => outcome switch
    {
        JobOutcome.Succeeded => "succeeded",
        JobOutcome.Retry => "retrying",
        JobOutcome.DeadLettered => "dead_lettered",
        JobOutcome.Cancelled => "cancelled",
        JobOutcome.Split => "split",
        _ => "returned",
    };

    private void RecordStart(JobLease job, string task, long nowMs)
    {
        var envelope = job.Envelope;
        _busy.Add(1, new KeyValuePair<string, object?>("queue", envelope.Queue));
        if (job.Attempt != 1 || job.IsReduce) return;
        var couldRun = Math.Max(envelope.EnqueuedAt, envelope.NotBefore ?? 0);
        if (couldRun > 0 && nowMs >= couldRun)
            _wait.Record((nowMs - couldRun) / 1000.0, new("queue", envelope.Queue), new("task", task));
    }

    private void RecordEnd(JobLease job, string task, JobOutcome outcome, long startedAtMs, long nowMs)
    {
        var kind = OutcomeName(outcome);
        var queue = new KeyValuePair<string, object?>("queue", job.Envelope.Queue);
        _busy.Add(-1, queue);
        _attempts.Add(1, queue, new("task", task), new("outcome", kind));
        _duration.Record(Math.Max(0, nowMs - startedAtMs) / 1000.0, queue, new("task", task), new("outcome", kind));
    }
}
