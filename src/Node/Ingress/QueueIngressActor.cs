using Akka.Actor;
using Akka.Event;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using StackExchange.Redis;
using static ClusterJobs.Node.Ingress.QueueIngress;

namespace ClusterJobs.Node.Ingress;

/// <summary>
/// Takes one queue's jobs out of Redis for its router (its parent), at-least-once: every job is leased in Redis when
/// taken (the node that runs it renews the lease, see LeaseKeeperActor); a job whose node dies returns to the queue
/// when its lease expires, which this actor checks for every second. Malformed or oversized envelopes are
/// dead-lettered here with the reason.
/// </summary>
public sealed class QueueIngressActor : ReceiveActor, IWithTimers
{
    private readonly QueueBroker _broker;
    private readonly BrokerSettings _brokerSettings;
    private readonly QueueIngressSettings _settings;
    private readonly IConnectionMultiplexer _redis;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _stopping = new();
    /// <summary>Takes in flight (the router asks for at most two at a time).</summary>
    private int _taking;
    private bool _exhausted;
    /// <summary>
    /// Jobs the router asked for that the queue did not have (the last take came back short). On a wake they are taken
    /// at once, without a round trip through the router; a new Fetch replaces them.
    /// </summary>
    private int _standing;
    private bool _wakeTakes = true;
    /// <summary>A wake message came while a take was in flight: that take may have missed the new job.</summary>
    private bool _wokenDuringTake;
    private bool _reclaiming;
    private int _failures;

    public QueueIngressActor(IConnectionMultiplexer redis, QueueBroker broker, BrokerSettings brokerSettings, QueueIngressSettings settings)
    {
        _redis = redis;
        _broker = broker;
        _brokerSettings = brokerSettings;
        _settings = settings;

        Receive<WakeTakes>(w =>
        {
            _wakeTakes = w.Allowed;
            if (!w.Allowed) _standing = 0;
        });
        Receive<Fetch>(f =>
        {
            _standing = 0;
            TakeNow(f.Max);
        });
        Receive<TakeResult>(OnTaken);
        Receive<TakeFailed>(f =>
        {
            _taking--;
            _failures++;
            var delay = TimeSpan.FromMilliseconds(Math.Min(5_000, 50 * Math.Pow(2, Math.Min(_failures, 7))));
            _log.Warning(f.Error, "Taking jobs from queue {0} failed ({1} in a row); retrying in {2}", _broker.Keys.Name, _failures, delay);
            // The router still waits for this take's answer: the same take is tried again until Redis answers.
            Timers.StartSingleTimer("retry-take-" + f.Seq, new RetryTake(f.Max, f.Woken), delay);
        });
        Receive<RetryTake>(r => TakeNow(r.Max, r.Woken));
        Receive<Wake>(_ =>
        {
            if (_taking > 0) _wokenDuringTake = true;
            else WakeRouter();
        });
        Receive<Poll>(_ => { if (_taking == 0) WakeRouter(); });
        Receive<Reclaim>(r => Run(_broker.ReclaimAsync(r.JobIds), "reclaim jobs of a lost node"));
        Receive<Return>(r =>
        {
            Run(_broker.CompleteAsync(r.JobIds.Select(id => (JobOutcome)new JobOutcome.Returned(id)).ToList()), "return unstarted jobs");
        });
        Receive<ReclaimExpired>(_ =>
        {
            if (_reclaiming) return;
            _reclaiming = true;
            _broker.ReclaimExpiredAsync().PipeTo(Self, success: n => new ReclaimDone(n), failure: ex => new ReclaimDone(0, ex));
        });
        Receive<ReclaimDone>(d =>
        {
            _reclaiming = false;
            if (d.Error is not null) _log.Warning(d.Error, "Reclaiming expired leases of queue {0} failed", _broker.Keys.Name);
            else if (d.Count > 0) _log.Info("Queue {0}: {1} job(s) whose node stopped renewing their lease are back in the queue", _broker.Keys.Name, d.Count);
        });
        Receive<Done>(_ => { });
        Receive<BackgroundFailed>(f => _log.Warning(f.Error, "Queue {0}: could not {1}", _broker.Keys.Name, f.What));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>This actor's handler of its queue's wake messages, to unsubscribe it alone.</summary>
    private Action<RedisChannel, RedisValue>? _onWake;

    protected override void PreStart()
    {
        var self = Self;
        _onWake = (_, _) => self.Tell(Wake.Instance);
        // Asynchronous on purpose: a Redis outage at start must not fail the actor (the poll timer covers the gap).
        _redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(_broker.Keys.WakeChannel), _onWake)
            .PipeTo(Self, success: () => Done.Instance, failure: ex => new BackgroundFailed("subscribe to wake messages", ex));
        Timers.StartPeriodicTimer("poll", Poll.Instance, _settings.PollInterval);
        Timers.StartPeriodicTimer("reclaim", ReclaimExpired.Instance, _settings.ReclaimInterval);
    }

    protected override void PostStop()
    {
        _stopping.Cancel();
        // Its own handler only (another subscriber of the connection keeps its own), and without waiting for the answer:
        // with Redis out of reach a plain call blocked the stopping actor's thread for the whole sync timeout.
        try { if (_onWake is not null) _redis.GetSubscriber().Unsubscribe(RedisChannel.Literal(_broker.Keys.WakeChannel), _onWake, CommandFlags.FireAndForget); }
        catch (Exception) { /* connection gone: nothing to unsubscribe */ }
    }

    /// <summary>One take answers one Fetch, with a Taken message, even when it leases nothing.</summary>
    private void TakeNow(int wanted, bool woken = false)
    {
        var max = Math.Clamp(wanted, 0, _settings.MaxBatch);
        _taking++;
        var seq = ++_takeSeq;
        _broker.TakeAsync(max).PipeTo(Self, success: jobs => new TakeResult(jobs, max, woken), failure: ex => new TakeFailed(ex, max, seq, woken));
    }

    private long _takeSeq;

    private void OnTaken(TakeResult result)
    {
        _taking--;
        _failures = 0;
        EnvelopeCheck.WarnNotJobs(_log, result.Batch, _broker.Keys.Name);
        var (leases, rejected) = EnvelopeCheck.CheckAll(result.Batch.Jobs, _broker.Keys.Name, _settings.MaxPayloadBytes);
        if (rejected is not null) Run(_broker.CompleteAsync(rejected), "dead-letter bad envelopes");
        // Exhausted only if no job arrived meanwhile; otherwise the router asks again at once instead of waiting for a wake.
        // (Popped, not leases: jobs the script ended, cancelled or without a record, leave room but not an empty queue.)
        _exhausted = result.Batch.Popped < result.Asked && !_wokenDuringTake;
        if (_taking == 0) _wokenDuringTake = false;
        _standing = _exhausted && _wakeTakes ? result.Asked - leases.Count : 0;
        Context.Parent.Tell(new Taken(leases, _exhausted) { Woken = result.Woken });
    }

    private void WakeRouter()
    {
        if (!_exhausted) return;
        _exhausted = false;
        if (_standing > 0) TakeNow(_standing, woken: true); // the router learns of the work with the jobs
        else Context.Parent.Tell(WorkMayBeAvailable.Instance);
        _standing = 0;
    }

    private void Run(Task task, string what) =>
        task.PipeTo(Self, success: () => Done.Instance, failure: ex => new BackgroundFailed(what, ex));

    private sealed record TakeResult(TakenBatch Batch, int Asked, bool Woken) : INoSerializationVerificationNeeded;
    private sealed record TakeFailed(Exception Error, int Max, long Seq, bool Woken) : INoSerializationVerificationNeeded;
    private sealed record ReclaimDone(int Count, Exception? Error = null) : INoSerializationVerificationNeeded;
    private sealed record BackgroundFailed(string What, Exception Error) : INoSerializationVerificationNeeded;
    private sealed record RetryTake(int Max, bool Woken) : INoSerializationVerificationNeeded;
    private sealed class Wake : INoSerializationVerificationNeeded { public static readonly Wake Instance = new(); }
    private sealed class Poll : INoSerializationVerificationNeeded { public static readonly Poll Instance = new(); }
    private sealed class ReclaimExpired : INoSerializationVerificationNeeded { public static readonly ReclaimExpired Instance = new(); }
    private sealed class Done : INoSerializationVerificationNeeded { public static readonly Done Instance = new(); }
}

public static class QueueIngressActorExtensions
{
    /// <summary>Props of a queue's ingress (created by its router, as its child).</summary>
    public static Props IngressProps(IConnectionMultiplexer redis, QueueBroker broker, BrokerSettings brokerSettings, QueueIngressSettings settings) =>
        Props.Create(() => new QueueIngressActor(redis, broker, brokerSettings, settings));
}
