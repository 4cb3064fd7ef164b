using System.Text.Json;
using Akka.Event;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Ingress;

/// <summary>
/// What a node checks in an envelope it took from Redis before any handler sees it (the queue's ingress and every
/// node's taker alike): size, JSON, id, queue, version and options. A bad one is dead-lettered with the reason.
/// </summary>
public static class EnvelopeCheck
{
    /// <summary>The jobs of a take split into those to run and the dead-letter outcomes of those refused (null if none).</summary>
    public static (List<JobLease> Leases, List<JobOutcome>? Rejected) CheckAll(IReadOnlyList<TakenJob> jobs, string queue, int maxPayloadBytes)
    {
        var leases = new List<JobLease>(jobs.Count);
        List<JobOutcome>? rejected = null;
        foreach (var job in jobs)
        {
            if (Parse(job, queue, maxPayloadBytes) is { } lease) leases.Add(lease);
            else (rejected ??= []).Add(Reject(job, queue, maxPayloadBytes));
        }
        return (leases, rejected);
    }

    /// <summary>
    /// Says which ids a take found with a key that is not a job hash (written by hand): there is no record to mark, so
    /// they left the queue without a dead letter, and this warning is all an operator gets of them.
    /// </summary>
    public static void WarnNotJobs(ILoggingAdapter log, TakenBatch batch, string queue)
    {
        if (batch.NotJobs is not { Count: > 0 } ids) return;
        log.Warning("Queue {0}: {1} id(s) in its ready or scheduled set had a key that is not a job hash (written by hand?); " +
            "they left the queue and their keys were left as they are: {2}", queue, ids.Count, string.Join(", ", ids.Take(20)));
    }

    /// <summary>The job to run, or null when the envelope must be dead-lettered (see <see cref="Reject"/>).</summary>
    public static JobLease? Parse(TakenJob job, string queue, int maxPayloadBytes)
    {
        if (job.Envelope.Length > maxPayloadBytes) return null;
        try
        {
            var envelope = ProtocolJson.DeserializeEnvelope(job.Envelope);
            if (envelope is null || envelope.Id != job.Id || envelope.Queue != queue || string.IsNullOrEmpty(envelope.Task)) return null;
            if (envelope.Version > JobEnvelope.CurrentVersion || InvalidOption(envelope) is not null) return null;
            // No args means no arguments (as an empty positional list), so the job can cross the wire.
            if (envelope.Args.ValueKind == JsonValueKind.Undefined) envelope = envelope with { Args = JobEnvelope.EmptyArgs };
            return new JobLease(envelope with { Attempt = job.Attempt }, job.Attempt, job.Phase);
        }
        catch (JsonException) { return null; }
    }

    /// <summary>The dead-letter outcome of an envelope <see cref="Parse"/> refused, with why.</summary>
    public static JobOutcome Reject(TakenJob job, string queue, int maxPayloadBytes)
    {
        var size = job.Envelope.Length;
        string type, message;
        if (size > maxPayloadBytes)
            (type, message) = ("PayloadTooLarge", $"The envelope is {size} bytes, over this node's limit of {maxPayloadBytes} bytes.");
        else
        {
            type = "MalformedEnvelope";
            message = Describe(job, queue);
        }
        return new JobOutcome.DeadLettered(job.Id, new JobError
        {
            Type = type, Message = message, Attempt = job.Attempt, At = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        });
    }

    private static string Describe(TakenJob job, string queue)
    {
        try
        {
            var envelope = ProtocolJson.DeserializeEnvelope(job.Envelope);
            if (envelope is null) return "The envelope is JSON null.";
            if (envelope.Version > JobEnvelope.CurrentVersion)
                return $"Envelope format v{envelope.Version} is newer than this node understands (v{JobEnvelope.CurrentVersion}).";
            if (envelope.Id != job.Id) return $"The envelope's id '{envelope.Id}' is not the queued id '{job.Id}'.";
            if (envelope.Queue != queue) return $"The envelope names queue '{envelope.Queue}' but sits in '{queue}'.";
            if (InvalidOption(envelope) is { } invalid) return invalid;
            return "The envelope has no task name.";
        }
        catch (JsonException ex) { return $"The envelope is not valid job JSON: {ex.Message}"; }
    }

    /// <summary>Options a producer's client would have refused (docs/protocol.md), written with plain commands.</summary>
    private static string? InvalidOption(JobEnvelope e) => JobEnvelopeRules.InvalidOption(e);
}
