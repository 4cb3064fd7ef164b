using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using static ClusterJobs.Node.Queues.QueueSettings;

namespace ClusterJobs.Node.Queues;

/// <summary>
/// Keeps one queue's runtime settings, event-sourced in the Redis journal (persistence id <c>queue-settings-&lt;queue&gt;</c>).
/// It is a child of the queue's router singleton: wherever the router runs, the settings are recovered there, so a
/// pause or a rate limit survives the death of the node that had it. Every change is told to the router (its parent).
/// </summary>
public sealed class QueueSettingsActor : ReceivePersistentActor
{
    private const int SnapshotEvery = 100;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private QueueSettingsState _state = QueueSettingsState.Default;

    public QueueSettingsActor(string queue)
    {
        PersistenceId = "queue-settings-" + queue;

        Recover<Changed>(e => _state = e.Settings);
        Recover<SnapshotOffer>(o => { if (o.Snapshot is QueueSettingsState s) _state = s; });
        Recover<RecoveryCompleted>(_ =>
        {
            if (_state != QueueSettingsState.Default) _log.Info("Queue {0}: settings recovered: {1}", queue, _state);
            Context.Parent.Tell(_state);
        });

        Command<Change>(change =>
        {
            var next = _state with
            {
                Paused = change.Paused ?? _state.Paused,
                MaxRunning = change.ClearMaxRunning ? null : change.MaxRunning ?? _state.MaxRunning,
                RateLimitPerSecond = change.ClearRateLimit ? null : change.RateLimitPerSecond ?? _state.RateLimitPerSecond,
            };
            if (next.MaxRunning is < 0 || next.RateLimitPerSecond is <= 0)
            {
                Sender.Tell(new Status.Failure(new ArgumentException("MaxRunning must be >= 0 and RateLimitPerSecond > 0.")));
                return;
            }
            Persist(new Changed(next), e =>
            {
                _state = e.Settings;
                if (LastSequenceNr % SnapshotEvery == 0) SaveSnapshot(_state);
                Context.Parent.Tell(_state);
                Sender.Tell(_state);
            });
        });
        Command<Get>(_ => Sender.Tell(_state));
        Command<SaveSnapshotSuccess>(s => DeleteMessages(s.Metadata.SequenceNr));
        Command<SaveSnapshotFailure>(f => _log.Warning(f.Cause, "Queue {0}: saving a settings snapshot failed", queue));
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(f => _log.Warning(f.Cause, "Queue {0}: trimming the settings journal failed", queue));
    }

    public override string PersistenceId { get; }
}
