using Akka.Actor;
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
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TimeProvider _clock;
    private bool _outage;

    public RecurringSchedulerActor(IReadOnlyList<RecurringFirer> firers, TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
        // Only one look at a time: the next tick is set when this one's answer is in.
        Receive<Tick>(_ => Task.WhenAll(firers.Select(f => f.FireDueAsync(_stopping.Token)))
            .PipeTo(Self, success: rounds => FireRound.Combine(rounds), failure: ex => new Failed(ex)));
        Receive<FireRound>(round =>
        {
            if (_outage) _log.Info("Recurring schedules: Redis answers again");
            _outage = false;
            foreach (var s in round.Stopped)
                _log.Error("Recurring job '{0}' of queue {1} is stopped: {2} Write it again with a producer to start it again.", s.Name, s.Queue, s.Error);
            var untilNext = round.NextRunMs is { } next ? TimeSpan.FromMilliseconds(next - _clock.GetUtcNow().ToUnixTimeMilliseconds()) : PollInterval;
            Next(round.MoreDue ? TimeSpan.Zero : untilNext);
        });
        Receive<Failed>(f =>
        {
            if (_stopping.IsCancellationRequested) return;
            if (!_outage)
                _log.Warning(f.Error is RedisException ? null : f.Error, "Recurring schedules could not be read or fired ({0}); trying again every {1} s",
                    f.Error.Message, PollInterval.TotalSeconds);
            _outage = true;
            Next(PollInterval);
        });
        Timers.StartSingleTimer("tick", Tick.Instance, TimeSpan.Zero);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private void Next(TimeSpan delay) =>
        Timers.StartSingleTimer("tick", Tick.Instance, delay < TimeSpan.Zero ? TimeSpan.Zero : delay > PollInterval ? PollInterval : delay);

    protected override void PostStop() => _stopping.Cancel();

    private sealed class Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
    private sealed record Failed(Exception Error) : INoSerializationVerificationNeeded;
}

public static class RecurringSchedulerActorExtensions
{
    /// <summary>Starts the node's recurring scheduler for <paramref name="queues"/> (registered as <see cref="RecurringSchedulerActor"/>).</summary>
    public static AkkaConfigurationBuilder AddRecurringScheduler(this AkkaConfigurationBuilder builder, IReadOnlyList<string> queues,
        Func<IConnectionMultiplexer> redis, RedisKeys keys) =>
        builder.WithActors((system, registry, _) =>
        {
            var firers = queues.Select(q => new RecurringFirer(redis, keys, q)).ToList();
            registry.Register<RecurringSchedulerActor>(system.ActorOf(Props.Create(() => new RecurringSchedulerActor(firers, null)), "recurring"));
        });
}
