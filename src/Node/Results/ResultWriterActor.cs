using Akka.Actor;
using Akka.Hosting;
using Akka.Event;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Workers;
using static ClusterJobs.Node.Results.ResultWriter;

namespace ClusterJobs.Node.Results;

/// <summary>
/// Writes outcomes to Redis for every worker of its node, in batches: while one write of a queue is in flight the next
/// outcomes gather, then go in one script call, so a busy node pays one round trip for many jobs. A failed write
/// (Redis down) is retried with backoff until it succeeds; until then the jobs stay leased and nothing is lost.
/// </summary>
public sealed class ResultWriterActor : ReceiveActor, IWithTimers
{
    private const int MaxBatch = 512;
    private readonly Func<string, QueueBroker> _brokers;
    private readonly Func<string, IActorRef?> _routers;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, QueueState> _queues = new();

    /// <param name="routers">Each queue's router, told of splits and ended children for the split coordinators.</param>
    public ResultWriterActor(Func<string, QueueBroker> brokers, Func<string, IActorRef?>? routers = null)
    {
        _brokers = brokers;
        _routers = routers ?? (_ => null);
        Receive<Record>(r => r.Outcome is JobOutcome.Split, r =>
        {
            var split = (JobOutcome.Split)r.Outcome;
            var q = State(r.Queue);
            q.Broker.SplitAsync(split.JobId, split.Children, split.CollectFailures)
                .PipeTo(Self, success: n => new Written(r.Queue, [r], Batch: false, SplitInto: n), failure: ex => new WriteFailed(r.Queue, [r], ex));
        });
        Receive<Record>(r =>
        {
            var q = State(r.Queue);
            q.Pending.Add(r);
            if (!q.Writing) Flush(r.Queue, q);
        });
        Receive<Written>(w =>
        {
            var q = State(w.Queue);
            if (w.Batch is false)
            {
                foreach (var r in w.Records) r.NotifyWhenRecorded.Tell(new WorkerPool.Recorded(w.Queue, [r.Outcome.JobId]));
                if (w.SplitInto > 0) _routers(w.Queue)?.Tell(new Splits.SplitTracker.SplitStarted(w.Records[0].Outcome.JobId));
                return;
            }
            if (w.FinishedChildren is { Count: > 0 } children) _routers(w.Queue)?.Tell(new Splits.SplitTracker.ChildrenFinished(children));
            q.Writing = false;
            q.Failures = 0;
            foreach (var group in w.Records.GroupBy(r => r.NotifyWhenRecorded))
                group.Key.Tell(new WorkerPool.Recorded(w.Queue, group.Select(r => r.Outcome.JobId).ToList()));
            if (q.Pending.Count > 0) Flush(w.Queue, q);
        });
        Receive<WriteFailed>(f =>
        {
            var q = State(f.Queue);
            if (f.Batch.Count == 1 && f.Batch[0].Outcome is JobOutcome.Split)
            {
                _log.Warning(f.Error, "Splitting job {0} failed; retrying", f.Batch[0].Outcome.JobId);
                Timers.StartSingleTimer("split-" + f.Batch[0].Outcome.JobId, f.Batch[0], TimeSpan.FromMilliseconds(500));
                return;
            }
            q.Writing = false;
            q.Failures++;
            q.Pending.InsertRange(0, f.Batch);
            var delay = TimeSpan.FromMilliseconds(Math.Min(5_000, 50 * Math.Pow(2, Math.Min(q.Failures, 7))));
            _log.Warning(f.Error, "Recording {0} outcome(s) of queue {1} failed ({2} in a row); retrying in {3}",
                f.Batch.Count, f.Queue, q.Failures, delay);
            Timers.StartSingleTimer("retry-" + f.Queue, new RetryWrite(f.Queue), delay);
        });
        Receive<RetryWrite>(r =>
        {
            var q = State(r.Queue);
            if (!q.Writing && q.Pending.Count > 0) Flush(r.Queue, q);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private QueueState State(string queue)
    {
        if (!_queues.TryGetValue(queue, out var state)) _queues[queue] = state = new QueueState(_brokers(queue));
        return state;
    }

    private void Flush(string queue, QueueState q)
    {
        var count = Math.Min(MaxBatch, q.Pending.Count);
        var batch = q.Pending.GetRange(0, count);
        q.Pending.RemoveRange(0, count);
        q.Writing = true;
        q.Broker.CompleteAsync(batch.Select(r => r.Outcome).ToList())
            .PipeTo(Self, success: r => new Written(queue, batch, FinishedChildren: r.FinishedChildren), failure: ex => new WriteFailed(queue, batch, ex));
    }

    private sealed class QueueState(QueueBroker broker)
    {
        public QueueBroker Broker { get; } = broker;
        public List<Record> Pending { get; } = [];
        public bool Writing { get; set; }
        public int Failures { get; set; }
    }

    private sealed record Written(string Queue, List<Record> Records, bool Batch = true, int SplitInto = 0,
        IReadOnlyList<FinishedChild>? FinishedChildren = null) : INoSerializationVerificationNeeded;
    private sealed record WriteFailed(string Queue, List<Record> Batch, Exception Error) : INoSerializationVerificationNeeded;
    private sealed record RetryWrite(string Queue) : INoSerializationVerificationNeeded;
}

public static class ResultWriterActorExtensions
{
    /// <summary>Starts the node's result writer (registered as <see cref="ResultWriterActor"/>).</summary>
    public static AkkaConfigurationBuilder AddResultWriter(this AkkaConfigurationBuilder builder, Func<string, QueueBroker> brokers,
        Func<string, IActorRef?>? routers = null) =>
        builder.WithActors((system, registry, _) =>
            registry.Register<ResultWriterActor>(system.ActorOf(Props.Create(() => new ResultWriterActor(brokers, routers)), "results")));
}
