using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.Recurring;

/// <summary>
/// Fires the recurring schedules of the queues this node serves. Every node serving a queue does so: a schedule keeps
/// firing while any of them lives, and the Fire script lets one of them fire each run. It looks again when the soonest
/// run is due, and at least every <see cref="PollInterval"/> for schedules written meanwhile.
/// </summary>
public sealed class RecurringSchedulerActor : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);
    /// <summary>The least time between two looks unless more runs were due than one look fires: a run due now that
    /// another node is firing, or one this node could not stop, must not make it look again and again at once.</summary>
    private static readonly TimeSpan LeastInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan ErrorLogInterval = TimeSpan.FromMinutes(1);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TimeProvider _clock;
    private bool _outage;
    private DateTimeOffset _lastErrorLogged = DateTimeOffset.MinValue;

    public RecurringSchedulerActor(IReadOnlyList<RecurringFirer> firers, TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
        // One look at a time: the next tick is set when this one's answer is in. Each queue's failure is its own.
        Receive<Tick>(_ => Task.WhenAll(firers.Select(LookAsync))
            .PipeTo(Self, success: looks => new Looked(looks), failure: ex => new Looked([new Look(null, ex)])));
        Receive<Looked>(looked =>
        {
            var failed = looked.Looks.Where(l => l.Error is not null).ToList();
            var rounds = looked.Looks.Where(l => l.Round is not null).Select(l => l.Round!).ToList();
            foreach (var s in rounds.SelectMany(r => r.Stopped))
                _log.Error("Recurring job '{0}' of queue {1} is stopped: {2} Write it again with a producer to start it again.", s.Name, s.Queue, s.Error);
            Report(failed.Select(f => f.Error!).ToList());
            var round = FireRound.Combine(rounds);
            // In whole ms, clamped before it becomes a TimeSpan: a score written far in the future (in µs, say) must not overflow one.
            var untilNext = round.NextRunMs is { } next
                ? TimeSpan.FromMilliseconds(Math.Clamp(next - _clock.GetUtcNow().ToUnixTimeMilliseconds(), 0, (long)PollInterval.TotalMilliseconds))
                : PollInterval;
            Next(failed.Count > 0 ? PollInterval : round.MoreDue ? TimeSpan.Zero : untilNext < LeastInterval ? LeastInterval : untilNext);
        });
        Timers.StartSingleTimer("tick", Tick.Instance, TimeSpan.Zero);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private async Task<Look> LookAsync(RecurringFirer firer)
    {
        try { return new Look(await firer.FireDueAsync(_stopping.Token).ConfigureAwait(false), null); }
        catch (Exception ex) { return new Look(null, ex); }
    }

    /// <summary>An outage once when it starts and once when it ends; anything else with its stack trace, at most once a minute.</summary>
    private void Report(IReadOnlyList<Exception> errors)
    {
        if (_stopping.IsCancellationRequested) return;
        var unreachable = errors.FirstOrDefault(RedisConnection.IsUnreachable);
        if (unreachable is not null && !_outage)
            _log.Warning("Recurring schedules cannot be fired: Redis cannot be reached ({0}); trying again every {1} s", unreachable.Message, PollInterval.TotalSeconds);
        else if (unreachable is null && _outage)
            _log.Info("Recurring schedules: Redis answers again");
        _outage = unreachable is not null;
        var other = errors.FirstOrDefault(e => !RedisConnection.IsUnreachable(e));
        if (other is not null && _clock.GetUtcNow() - _lastErrorLogged >= ErrorLogInterval)
        {
            _lastErrorLogged = _clock.GetUtcNow();
            _log.Error(other, "Recurring schedules could not be fired; trying again every {0} s", PollInterval.TotalSeconds);
        }
    }

    private void Next(TimeSpan delay) =>
        Timers.StartSingleTimer("tick", Tick.Instance, delay < TimeSpan.Zero ? TimeSpan.Zero : delay > PollInterval ? PollInterval : delay);

    protected override void PostStop()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }

    private sealed class Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
    private sealed record Look(FireRound? Round, Exception? Error);
    private sealed record Looked(IReadOnlyList<Look> Looks) : INoSerializationVerificationNeeded;
}

public static class RecurringSchedulerActorExtensions
{
    /// <summary>Starts the node's recurring scheduler for <paramref name="queues"/> (registered as <see cref="RecurringSchedulerActor"/>).</summary>
    public static AkkaConfigurationBuilder AddRecurringScheduler(this AkkaConfigurationBuilder builder, IReadOnlyList<string> queues,
        Func<IConnectionMultiplexer> redis, RedisKeys keys, int maxPayloadBytes) =>
        builder.WithActors((system, registry, _) =>
        {
            var node = Cluster.Get(system).SelfAddress.ToString();
            var firers = queues.Select(q => new RecurringFirer(redis, keys, q, node, maxPayloadBytes)).ToList();
            registry.Register<RecurringSchedulerActor>(system.ActorOf(Props.Create(() => new RecurringSchedulerActor(firers, null)), "recurring"));
        });
}
