using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Fsm;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// Akka's JournalSerializationSpec and SnapshotStoreSerializationSpec: what goes in comes back through the serializer
/// bound to its type, whatever kind of serializer that is, with the manifests that go with it.
/// </summary>
[Collection(JournalCollection.Name)]
public sealed class JournalSerializationSpecs(RedisFixture redis, ITestOutputHelper output) : PluginSpec(redis, output)
{
    private IPersistentRepresentation WriteAndReplay(object payload, string manifest = "")
    {
        var write = new AtomicWrite(new Persistent(payload, 1, Pid, manifest, false, null, WriterGuid));
        Journal.Tell(new WriteMessages([write], TestActor, ActorInstanceId));
        ExpectMsg<WriteMessagesSuccessful>();
        ExpectMsg<WriteMessageSuccess>(m => m.ActorInstanceId == ActorInstanceId && m.Persistent.PersistenceId == Pid);

        Journal.Tell(new ReplayMessages(0, 1, long.MaxValue, Pid, TestActor));
        var replayed = ExpectMsg<ReplayedMessage>().Persistent;
        ExpectMsg<RecoverySuccess>(m => m.HighestSequenceNr == 1);
        Assert.Equal(Pid, replayed.PersistenceId);
        Assert.Equal(1, replayed.SequenceNr);
        Assert.Equal(WriterGuid, replayed.WriterGuid);
        return replayed;
    }

    [Fact]
    public void A_string_event_round_trips() =>
        Assert.Equal("string payload", WriteAndReplay("string payload").Payload);

    [Fact]
    public void The_payload_serializer_bound_to_the_event_type_is_used() =>
        Assert.Equal(new Dotted(".a."), WriteAndReplay(new Dotted("a")).Payload);

    [Fact]
    public void An_event_of_a_serializer_with_string_manifest_round_trips() =>
        Assert.Equal(new WithManifest(".a."), WriteAndReplay(new WithManifest("a")).Payload);

    [Fact]
    public void The_event_adapter_manifest_is_kept_on_replay() =>
        Assert.Equal("adapter-manifest-v2", WriteAndReplay(new Dotted("a"), "adapter-manifest-v2").Manifest);

    [Fact]
    public void A_persistent_fsm_state_change_event_round_trips()
    {
        var replayed = (PersistentFSM.StateChangeEvent)WriteAndReplay(new PersistentFSM.StateChangeEvent("init", TimeSpan.FromSeconds(342))).Payload;
        Assert.Equal("init", replayed.StateIdentifier);
        Assert.Equal(TimeSpan.FromSeconds(342), replayed.Timeout);
    }
}

[Collection(SnapshotCollection.Name)]
public sealed class SnapshotStoreSerializationSpecs(RedisFixture redis, ITestOutputHelper output) : PluginSpec(redis, output)
{
    private object SaveAndLoad(object snapshot, long sequenceNr = 1)
    {
        SnapshotStore.Tell(new SaveSnapshot(new SnapshotMetadata(Pid, sequenceNr, DateTime.MinValue), snapshot), TestActor);
        ExpectMsg<SaveSnapshotSuccess>();
        SnapshotStore.Tell(new LoadSnapshot(Pid, SnapshotSelectionCriteria.Latest, long.MaxValue), TestActor);
        return ExpectMsg<LoadSnapshotResult>().Snapshot.Snapshot;
    }

    [Fact]
    public void The_payload_serializer_bound_to_the_snapshot_type_is_used() =>
        Assert.Equal(new Dotted(".a."), SaveAndLoad(new Dotted("a")));

    [Fact]
    public void A_snapshot_of_a_serializer_with_string_manifest_round_trips() =>
        Assert.Equal(new WithManifest(".a."), SaveAndLoad(new WithManifest("a")));

    [Fact]
    public void An_at_least_once_delivery_snapshot_with_unconfirmed_deliveries_round_trips()
    {
        var snapshot = new AtLeastOnceDeliverySnapshot(17,
        [
            new UnconfirmedDelivery(1, TestActor.Path, "a"),
            new UnconfirmedDelivery(2, TestActor.Path, "b"),
            new UnconfirmedDelivery(3, TestActor.Path, 42),
        ]);
        Assert.Equal(snapshot, SaveAndLoad(snapshot, 2));
    }

    [Fact]
    public void An_at_least_once_delivery_snapshot_without_unconfirmed_deliveries_round_trips()
    {
        var snapshot = new AtLeastOnceDeliverySnapshot(13, []);
        Assert.Equal(snapshot, SaveAndLoad(snapshot, 2));
    }

    [Fact]
    public void A_persistent_fsm_snapshot_round_trips()
    {
        var snapshot = new PersistentFSM.PersistentFSMSnapshot<string>("mystate", "mydata", TimeSpan.FromDays(4));
        Assert.Equal(snapshot, SaveAndLoad(snapshot, 2));
    }
}
