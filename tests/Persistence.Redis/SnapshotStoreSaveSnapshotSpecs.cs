using Akka.Actor;
using Akka.Persistence;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// Akka's SnapshotStoreSaveSnapshotSpec: saves issued in a burst land in the order they were issued (this store
/// supports concurrent saves), and two saves at one sequence number both succeed.
/// </summary>
[Collection(SnapshotCollection.Name)]
public sealed class SnapshotStoreSaveSnapshotSpecs(RedisFixture redis, ITestOutputHelper output) : PluginSpec(redis, output)
{
    private const int Iterations = 25;

    [Fact]
    public async Task A_burst_of_saves_without_a_persist_before_it_recovers_the_last_snapshot()
    {
        for (var i = 0; i < Iterations; i++) await SnapshotBurstRecoversLastAsync(persistFirst: false);
    }

    [Fact]
    public async Task A_burst_of_saves_after_persisted_events_recovers_the_last_snapshot()
    {
        for (var i = 0; i < Iterations; i++) await SnapshotBurstRecoversLastAsync(persistFirst: true);
    }

    private async Task SnapshotBurstRecoversLastAsync(bool persistFirst)
    {
        var pid = $"{Pid}-{Guid.NewGuid():N}";
        var actor = Sys.ActorOf(Props.Create(() => new SnapshottingActor(pid)));
        if (persistFirst)
        {
            actor.Tell(1);
            await ExpectMsgAsync<Ack>();
            actor.Tell(2);
            await ExpectMsgAsync<Ack>();
        }
        actor.Tell(new TakeSnapshots([[0], [1], [2], [3]]));
        await ExpectMsgAsync<SnapshotsSaved>();
        await StopAsync(actor);

        actor = Sys.ActorOf(Props.Create(() => new SnapshottingActor(pid)));
        actor.Tell(GetState.Instance);
        var state = await ExpectMsgAsync<int[]>();
        await StopAsync(actor);
        Assert.Equal([3], state);
    }

    [Fact]
    public async Task Two_saves_at_the_same_sequence_number_both_succeed_and_echo_their_metadata()
    {
        var first = new SnapshotMetadata(Pid, 3, DateTime.UtcNow);
        SnapshotStore.Tell(new SaveSnapshot(first, new RefPayload(TestActor)));
        var success = await ExpectMsgAsync<SaveSnapshotSuccess>();
        Assert.Equal(first, success.Metadata);
        Assert.Equal(first.Timestamp, success.Metadata.Timestamp);

        var second = new SnapshotMetadata(Pid, 3, DateTime.UtcNow);
        SnapshotStore.Tell(new SaveSnapshot(second, 3));
        success = await ExpectMsgAsync<SaveSnapshotSuccess>();
        Assert.Equal(second, success.Metadata);
        Assert.Equal(second.Timestamp, success.Metadata.Timestamp);
    }

    private async Task StopAsync(IActorRef actor)
    {
        await WatchAsync(actor);
        actor.Tell(PoisonPill.Instance);
        await ExpectTerminatedAsync(actor);
        await UnwatchAsync(actor);
    }

    private sealed record TakeSnapshots(int[][] Values);
    private sealed class GetState { public static readonly GetState Instance = new(); }
    private sealed class Ack { public static readonly Ack Instance = new(); }
    private sealed class SnapshotsSaved { public static readonly SnapshotsSaved Instance = new(); }

    /// <summary>Keeps a list of ints; each snapshot of a burst replaces the whole list.</summary>
    private sealed class SnapshottingActor : ReceivePersistentActor
    {
        private List<int> _values = [];
        private IActorRef _replyTo = ActorRefs.Nobody;
        private int _pending;

        public SnapshottingActor(string persistenceId)
        {
            PersistenceId = persistenceId;
            Recover<SnapshotOffer>(offer => _values = ((IEnumerable<int>)offer.Snapshot).ToList());
            Recover<int>(_values.Add);
            Command<int>(i =>
            {
                var sender = Sender;
                Persist(i, _ => { _values.Add(i); sender.Tell(Ack.Instance); });
            });
            Command<TakeSnapshots>(m =>
            {
                _replyTo = Sender;
                _pending = m.Values.Length;
                foreach (var values in m.Values)
                {
                    _values = values.ToList();
                    SaveSnapshot(_values.ToArray());
                }
            });
            Command<SaveSnapshotSuccess>(_ =>
            {
                if (--_pending == 0) _replyTo.Tell(SnapshotsSaved.Instance);
            });
            Command<GetState>(_ => Sender.Tell(_values.ToArray()));
        }

        public override string PersistenceId { get; }
    }
}
