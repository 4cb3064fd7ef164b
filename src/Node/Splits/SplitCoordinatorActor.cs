using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using static ClusterJobs.Node.Splits.SplitCoordinator;

namespace ClusterJobs.Node.Splits;

/// <summary>
/// Coordinates one split parent while it waits (persistence id <c>split-&lt;parent id&gt;</c>, in the Redis journal): it
/// records each child's outcome as it ends, and when the last one is in (or one fails a parent that does not collect
/// failures) it ends the wait in Redis: the parent is queued for its reduce step with every outcome, or fails. It
/// lives under the queue's router singleton; when that node dies, the router starts again elsewhere and so does this
/// actor, recovering the outcomes it had recorded.
/// Notifications of ended children are hints: Redis holds each child's state, and the coordinator reads it there.
/// When no notification came for a while, it reads every pending child (children that ended without one: cancelled
/// before they ran, dead-lettered by a lost node, notifications lost with a node).
/// </summary>
public sealed class SplitCoordinatorActor : ReceivePersistentActor, IWithTimers
{
    private static readonly string UnknownError = ProtocolJson.Serialize(new JobError { Type = "Unknown", Message = "The child job failed." });
    private static readonly string CancelledError = ProtocolJson.Serialize(new JobError { Type = "Cancelled", Message = "The child job was cancelled." });
    private readonly string _parentId;
    private readonly QueueBroker _broker;
    private readonly TimeSpan _reconcileEvery;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, RecordedChild> _recorded = new();
    private readonly HashSet<string> _toCheck = [];
    private Tracked? _tracked;
    private bool _reading;
    private bool _finishing;
    private bool _recordedSinceTick;
    private bool _verified;
    private bool _done;

    public SplitCoordinatorActor(string parentId, QueueBroker broker, TimeSpan reconcileEvery)
    {
        _parentId = parentId;
        _broker = broker;
        _reconcileEvery = reconcileEvery;
        PersistenceId = "split-" + parentId;

        Recover<Tracked>(t => _tracked = t);
        Recover<ChildrenRecorded>(Apply);
        Recover<RecoveryCompleted>(_ =>
        {
            Timers.StartPeriodicTimer("reconcile", Reconcile.Instance, reconcileEvery);
            ReadParent(); // the parent decides: still waiting (and the same split), or done
        });

        Command<ParentRead>(p =>
        {
            if (_done) return;
            _verified = true;
            if (!JobStates.TryFromWire(p.Parent.State, out var state) || state != JobState.Waiting || p.Parent.ChildrenTotal <= 0)
            {
                _broker.ForgetWaitingAsync(parentId).PipeTo(Self, success: () => Ignored.Instance, failure: _ => Ignored.Instance);
                Done();
                return;
            }
            if (_tracked is not null && _tracked.SplitAt == p.Parent.SplitAt)
            {
                if (_recorded.Count > 0) _log.Info("Split {0}: recovered {1} of {2} child outcomes", parentId, _recorded.Count, _tracked.ChildrenTotal);
                CheckAllPending();
                return;
            }
            if (_tracked is not null)
            {
                // Left by an earlier job with this id (its coordinator died before deleting it): not this split's.
                _log.Warning("Split {0}: discarding a journal of an earlier split of the same id", parentId);
                _tracked = null;
                _recorded.Clear();
                DeleteMessages(LastSequenceNr);
            }
            Persist(new Tracked(p.Parent.ChildrenTotal, p.Parent.CollectFailures, p.Parent.SplitAt), t =>
            {
                _tracked = t;
                CheckAllPending();
            });
        });
        Command<ChildrenEnded>(e =>
        {
            if (_done) return;
            foreach (var id in e.ChildIds) if (!_recorded.ContainsKey(id)) _toCheck.Add(id);
            Check();
        });
        Command<Reconcile>(_ =>
        {
            if (!_verified) ReadParent();
            else if (!_recordedSinceTick) CheckAllPending();
            _recordedSinceTick = false;
        });
        Command<ChildStatesRead>(OnChildStates);
        Command<ReadFailed>(f =>
        {
            _reading = false;
            _log.Warning(f.Error, "Split {0}: reading from Redis failed; retrying at the next reconcile", parentId);
        });
        Command<Finished>(f =>
        {
            if (f.Outcome.Failed && f.Outcome.GrandparentId is { } grandparent)
                Context.Parent.Tell(new SplitTracker.ChildrenFinished([new FinishedChild(grandparent, parentId)]));
            _log.Info("Split {0}: {1}", parentId, !f.Outcome.WasWaiting ? "the parent no longer waited" : f.Outcome.Failed ? "a child failed, so the parent failed" : "all children done, the parent is queued for its reduce step");
            Done();
        });
        Command<FinishFailed>(f =>
        {
            _finishing = false;
            _log.Warning(f.Error, "Split {0}: ending the wait failed; retrying", parentId);
            Timers.StartSingleTimer("finish", RetryFinish.Instance, TimeSpan.FromSeconds(1));
        });
        Command<RetryFinish>(_ => MaybeFinish());
        Command<DeleteMessagesSuccess>(_ => { if (_done) Context.Stop(Self); });
        Command<DeleteMessagesFailure>(f =>
        {
            // Harmless: a later coordinator of this id compares the split time and throws such a journal away.
            _log.Warning(f.Cause, "Split {0}: deleting its journal failed", parentId);
            if (_done) Context.Stop(Self);
        });
        Command<Ignored>(_ => { });
    }

    public override string PersistenceId { get; }
    public ITimerScheduler Timers { get; set; } = null!;

    private void ReadParent() =>
        _broker.ReadSplitParentAsync(_parentId).PipeTo(Self, success: p => new ParentRead(p), failure: ex => new ReadFailed(ex));

    private IEnumerable<string> Pending()
    {
        for (var i = 0; i < _tracked!.ChildrenTotal; i++)
        {
            var id = _parentId + "." + i;
            if (!_recorded.ContainsKey(id)) yield return id;
        }
    }

    private void CheckAllPending()
    {
        if (_tracked is null || _done) return;
        MaybeFinish(); // a recovered failure (or a last outcome recorded before a crash) ends the wait without more news
        if (_finishing) return;
        _toCheck.UnionWith(Pending());
        if (_toCheck.Count == 0) MaybeFinish();
        else Check();
    }

    private void Check()
    {
        if (_tracked is null || _reading || _finishing || _toCheck.Count == 0) return;
        _reading = true;
        var ids = _toCheck.Take(2_000).ToList();
        _toCheck.ExceptWith(ids);
        _broker.ReadChildStatesAsync(ids).PipeTo(Self, success: s => new ChildStatesRead(s), failure: ex => new ReadFailed(ex));
    }

    private void OnChildStates(ChildStatesRead read)
    {
        _reading = false;
        if (_done || _finishing) return;
        var ended = new List<RecordedChild>();
        foreach (var child in read.States)
        {
            if (_recorded.ContainsKey(child.ChildId)) continue;
            if (!JobStates.TryFromWire(child.State, out var state) || !state.IsTerminal()) continue;
            ended.Add(state switch
            {
                JobState.Succeeded => new RecordedChild(child.ChildId, child.State!, child.ResultJson ?? "null"),
                JobState.Cancelled => new RecordedChild(child.ChildId, child.State!, CancelledError), // not an earlier attempt's error
                _ => new RecordedChild(child.ChildId, child.State!, child.ErrorJson ?? UnknownError),
            });
        }
        if (ended.Count == 0)
        {
            Check();
            return;
        }
        Persist(new ChildrenRecorded(ended), e =>
        {
            Apply(e);
            _recordedSinceTick = true;
            _broker.SetChildrenPendingAsync(_parentId, _tracked!.ChildrenTotal - _recorded.Count)
                .PipeTo(Self, success: () => Ignored.Instance, failure: _ => Ignored.Instance);
            MaybeFinish();
            Check();
        });
    }

    private void Apply(ChildrenRecorded e)
    {
        foreach (var child in e.Children) _recorded[child.ChildId] = child;
    }

    private void MaybeFinish()
    {
        if (_tracked is null || _finishing) return;
        var failure = _tracked.CollectFailures ? null : _recorded.Values.FirstOrDefault(c => !c.Succeeded);
        if (failure is null && _recorded.Count < _tracked.ChildrenTotal) return;
        _finishing = true;
        var error = failure is null ? null : new JobError
        {
            Type = "ChildJobFailed",
            Message = $"Child job {failure.ChildId} ended {failure.State}.",
            At = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        var outcomes = _recorded.Values
            .OrderBy(c => int.TryParse(c.ChildId.AsSpan(c.ChildId.LastIndexOf('.') + 1), out var n) ? n : int.MaxValue)
            .Select(c => new ChildResult(c.ChildId, c.Succeeded, c.Json)).ToList();
        _broker.FinishSplitAsync(_parentId, outcomes, error).PipeTo(Self, success: r => new Finished(r), failure: ex => new FinishFailed(ex));
    }

    /// <summary>The parent no longer waits: forget the journal (the highest sequence number stays) and stop.</summary>
    private void Done()
    {
        Timers.CancelAll();
        _finishing = true;
        _done = true;
        if (LastSequenceNr > 0) DeleteMessages(LastSequenceNr);
        else Context.Stop(Self);
    }

    private sealed record ParentRead(SplitParent Parent) : INoSerializationVerificationNeeded;
    private sealed record ChildStatesRead(IReadOnlyList<ChildState> States) : INoSerializationVerificationNeeded;
    private sealed record ReadFailed(Exception Error) : INoSerializationVerificationNeeded;
    private sealed record Finished(SplitFinish Outcome) : INoSerializationVerificationNeeded;
    private sealed record FinishFailed(Exception Error) : INoSerializationVerificationNeeded;
    private sealed class Reconcile : INoSerializationVerificationNeeded { public static readonly Reconcile Instance = new(); }
    private sealed class RetryFinish : INoSerializationVerificationNeeded { public static readonly RetryFinish Instance = new(); }
    private sealed class Ignored : INoSerializationVerificationNeeded { public static readonly Ignored Instance = new(); }
}
