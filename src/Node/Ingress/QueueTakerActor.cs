using Akka.Actor;
using Akka.Event;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Workers;
using static ClusterJobs.Node.Ingress.QueueTaker;

namespace ClusterJobs.Node.Ingress;

/// <summary>Messages between a worker pool and its taker for one queue (always on the same node).</summary>
public static class QueueTaker
{
    /// <summary>Pool to taker: lease up to <paramref name="Slots"/> jobs of the queue for this node (a router's grant).</summary>
    public sealed record Take(int Slots) : INoSerializationVerificationNeeded;

    /// <summary>
    /// Taker to pool: the jobs leased for part of a grant (<paramref name="Granted"/> slots of it). Exhausted: Redis had
    /// fewer than that, or could not be reached; either way the router stops granting until its own take finds a backlog.
    /// </summary>
    public sealed record Taken(string Queue, IReadOnlyList<JobLease> Jobs, int Granted, bool Exhausted) : INoSerializationVerificationNeeded;
}

/// <summary>
/// Takes a queue's jobs out of Redis for its own node's worker pool (its parent), under credit the queue's router
/// granted to that pool. While a queue has a backlog, nodes other than the router's lease their share themselves, so
/// the router's node neither takes and parses every envelope nor ships it over remoting (W4, docs/benchmarks.md).
/// Leases, checks and dead-lettering are the ingress's (<see cref="EnvelopeCheck"/>); retries after a Redis error are
/// left to the router's ingress, which the router falls back to.
/// </summary>
public sealed class QueueTakerActor : ReceiveActor
{
    private readonly QueueBroker _broker;
    private readonly QueueIngressSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public QueueTakerActor(QueueBroker broker, QueueIngressSettings settings)
    {
        _broker = broker;
        _settings = settings;

        Receive<Take>(t =>
        {
            // One script call leases at most a batch: a large grant goes out as several calls at once.
            var pool = Sender;
            for (var left = t.Slots; left > 0; left -= _settings.MaxBatch)
            {
                var chunk = Math.Min(left, _settings.MaxBatch);
                _broker.TakeAsync(chunk).PipeTo(Self, success: jobs => new ChunkTaken(jobs, chunk, pool),
                    failure: ex => new ChunkFailed(ex, chunk, pool));
            }
        });
        Receive<ChunkTaken>(OnChunkTaken);
        Receive<ChunkFailed>(f =>
        {
            _log.Warning(f.Error, "Taking jobs of queue {0} for this node failed; its router takes them instead", _broker.Keys.Name);
            f.Pool.Tell(new Taken(_broker.Keys.Name, [], f.Granted, Exhausted: true));
        });
        Receive<BackgroundFailed>(f => _log.Warning(f.Error, "Queue {0}: could not record bad or returned envelopes", _broker.Keys.Name));
        Receive<Done>(_ => { });
    }

    private void OnChunkTaken(ChunkTaken result)
    {
        EnvelopeCheck.WarnNotJobs(_log, result.Batch, _broker.Keys.Name);
        List<JobLease> leases;
        List<JobOutcome>? rejected;
        var failed = false;
        try
        {
            (leases, rejected) = EnvelopeCheck.CheckAll(result.Batch.Jobs, _broker.Keys.Name, _settings.MaxPayloadBytes);
        }
        catch (Exception ex)
        {
            // Never without an answer (the pool counts the grant until it hears): these jobs go back to the queue as
            // they were, and the router takes for everyone for now.
            _log.Error(ex, "Checking jobs of queue {0} taken for this node failed; returning them to the queue", _broker.Keys.Name);
            rejected = result.Batch.Jobs.Select(j => (JobOutcome)new JobOutcome.Returned(j.Id)).ToList();
            leases = [];
            failed = true;
        }
        if (rejected is not null)
            _broker.CompleteAsync(rejected).PipeTo(Self, success: _ => Done.Instance, failure: ex => new BackgroundFailed(ex));
        // Short only when the queue ran short: jobs the script ended (cancelled, no record) left room, not emptiness.
        var exhausted = failed || result.Batch.Popped < result.Granted;
        result.Pool.Tell(new Taken(_broker.Keys.Name, leases, result.Granted, exhausted));
    }

    private sealed record ChunkTaken(TakenBatch Batch, int Granted, IActorRef Pool) : INoSerializationVerificationNeeded;
    private sealed record ChunkFailed(Exception Error, int Granted, IActorRef Pool) : INoSerializationVerificationNeeded;
    private sealed record BackgroundFailed(Exception Error) : INoSerializationVerificationNeeded;
    private sealed class Done : INoSerializationVerificationNeeded { public static readonly Done Instance = new(); }
}

public static class QueueTakerActorExtensions
{
    /// <summary>Props of a node's taker for one queue (created by the worker pool, as its child).</summary>
    public static Props TakerProps(QueueBroker broker, QueueIngressSettings settings) =>
        Props.Create(() => new QueueTakerActor(broker, settings));
}
