using Akka.Actor;
using Akka.Persistence;

namespace ClusterJobs.PersistenceBench;

public enum Mode { Persist, PersistAll, PersistAsync, PersistAllAsync, Recovery }

/// <summary>The persisted event. A plain class, so it goes through Akka's default (JSON) serializer, as the TCK's Cmd did.</summary>
public sealed record Evt(long Value);

/// <summary>Arms the actor: signal <paramref name="Latch"/> once the event with value <paramref name="Target"/> has been handled.</summary>
public sealed record Arm(long Target, Latch Latch);

/// <summary>One command: events <paramref name="From"/>.. (<paramref name="Count"/> of them), persisted the way <paramref name="Mode"/> says.</summary>
public sealed record Work(Mode Mode, long From, int Count);

public sealed class Ping
{
    public static readonly Ping Instance = new();
}

/// <summary>Completes when <c>Signal</c> has been called n times; fails on the first <c>Fail</c>.</summary>
public sealed class Latch(int count)
{
    private int _remaining = count;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Task => _done.Task;

    public void Signal()
    {
        if (Interlocked.Decrement(ref _remaining) == 0) _done.TrySetResult();
    }

    public void Fail(Exception error) => _done.TrySetException(error);
}

/// <summary>
/// The actor under test, modelled on the TCK's BenchActor: every handler checks that events arrive in order (value =
/// previous + 1), so a lost, duplicated or reordered event fails the run instead of inflating the figure. Values carry
/// on across repetitions, like the sequence numbers.
/// </summary>
public sealed class BenchActor : UntypedPersistentActor
{
    private readonly Latch? _recovered;
    private readonly long _expectRecovered;
    private readonly Action<Evt> _handle;
    private long _last;
    private long _target = -1;
    private Latch? _armed;

    public BenchActor(string persistenceId, Latch? recovered = null, long expectRecovered = 0)
    {
        PersistenceId = persistenceId;
        _recovered = recovered;
        _expectRecovered = expectRecovered;
        _handle = Handle;
    }

    public override string PersistenceId { get; }

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case Evt e:
                if (e.Value != _last + 1)
                    _recovered?.Fail(new InvalidOperationException($"{PersistenceId}: recovered event {e.Value} after {_last}."));
                _last = e.Value;
                break;
            case RecoveryCompleted:
                if (_recovered is null) break;
                if (_last == _expectRecovered) _recovered.Signal();
                else _recovered.Fail(new InvalidOperationException($"{PersistenceId}: recovered up to {_last}, expected {_expectRecovered}."));
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case Work { Mode: Mode.Persist } w:
                Persist(new Evt(w.From), _handle);
                break;
            case Work { Mode: Mode.PersistAsync } w:
                PersistAsync(new Evt(w.From), _handle);
                break;
            case Work { Mode: Mode.PersistAll } w:
                PersistAll(Events(w), _handle);
                break;
            case Work { Mode: Mode.PersistAllAsync } w:
                PersistAllAsync(Events(w), _handle);
                break;
            case Arm arm:
                _target = arm.Target;
                _armed = arm.Latch;
                if (_last >= _target) _armed.Signal();
                break;
            case Ping:
                Sender.Tell(_last);
                break;
        }
    }

    private static Evt[] Events(Work w)
    {
        var events = new Evt[w.Count];
        for (var i = 0; i < events.Length; i++) events[i] = new Evt(w.From + i);
        return events;
    }

    private void Handle(Evt e)
    {
        if (e.Value != _last + 1)
            _armed?.Fail(new InvalidOperationException($"{PersistenceId}: persisted event {e.Value} after {_last}."));
        _last = e.Value;
        if (_last == _target) _armed?.Signal();
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _armed?.Fail(new InvalidOperationException($"{PersistenceId}: persist failed at {sequenceNr}.", cause));
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        _armed?.Fail(new InvalidOperationException($"{PersistenceId}: persist rejected at {sequenceNr}.", cause));
        base.OnPersistRejected(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _recovered?.Fail(new InvalidOperationException($"{PersistenceId}: recovery failed.", reason));
        base.OnRecoveryFailure(reason, message);
    }
}
