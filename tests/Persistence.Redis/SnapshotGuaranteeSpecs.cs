using Akka.Persistence;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// What this snapshot store promises beyond the TCK: a load picks its snapshot by metadata and deserializes that one
/// only; deletes remove payloads together with their metadata.
/// </summary>
[Collection(SnapshotCollection.Name)]
public sealed class SnapshotGuaranteeSpecs(RedisFixture redis, ITestOutputHelper output) : PluginSpec(redis, output)
{
    private SnapshotMetadata Save(long sequenceNr, object snapshot)
    {
        SnapshotStore.Tell(new SaveSnapshot(new SnapshotMetadata(Pid, sequenceNr, DateTime.MinValue), snapshot), TestActor);
        return ExpectMsg<SaveSnapshotSuccess>().Metadata;
    }

    private object? Load(SnapshotSelectionCriteria criteria)
    {
        SnapshotStore.Tell(new LoadSnapshot(Pid, criteria, long.MaxValue), TestActor);
        return ExpectMsg<LoadSnapshotResult>().Snapshot?.Snapshot;
    }

    [Fact]
    public void A_load_deserializes_only_the_snapshot_it_picks()
    {
        Save(10, "good");
        var unreadable = Save(20, new UnreadableOnLoad("newer, and its serializer throws on read"));

        // Above the sequence number bound, and newer than the timestamp bound: never read.
        Assert.Equal("good", Load(new SnapshotSelectionCriteria(15)));
        Assert.Equal("good", Load(new SnapshotSelectionCriteria(long.MaxValue, unreadable.Timestamp - TimeSpan.FromTicks(1))));

        // Picked: read, and its serializer fails, which shows it would have failed the loads above had they read it.
        SnapshotStore.Tell(new LoadSnapshot(Pid, SnapshotSelectionCriteria.Latest, long.MaxValue), TestActor);
        ExpectMsg<LoadSnapshotFailed>();
    }

    [Fact]
    public void A_load_honours_a_lower_sequence_number_and_timestamp_bound()
    {
        var first = Save(10, "s-10");
        Save(20, "s-20");

        Assert.Null(Load(new SnapshotSelectionCriteria(15, DateTime.MaxValue, minSequenceNr: 11)));
        Assert.Equal("s-10", Load(new SnapshotSelectionCriteria(15, DateTime.MaxValue, minSequenceNr: 10, minTimestamp: first.Timestamp)));
        Assert.Null(Load(new SnapshotSelectionCriteria(15, DateTime.MaxValue, minSequenceNr: 0, minTimestamp: first.Timestamp + TimeSpan.FromTicks(1))));
    }

    [Fact]
    public void Saving_again_at_a_sequence_number_keeps_one_snapshot_there()
    {
        Save(10, "first");
        Save(10, "second");

        Assert.Equal(1, Redis.Db.SortedSetLength(Keys.SnapshotIndex(Pid)));
        Assert.Equal(1, Redis.Db.HashLength(Keys.SnapshotData(Pid)));
        Assert.Equal("second", Load(SnapshotSelectionCriteria.Latest));
    }

    [Fact]
    public void Deleting_removes_the_payload_with_its_metadata()
    {
        var a = Save(10, "a");
        Save(20, "b");
        Save(30, "c");

        SnapshotStore.Tell(new DeleteSnapshot(a), TestActor);
        ExpectMsg<DeleteSnapshotSuccess>();
        SnapshotStore.Tell(new DeleteSnapshots(Pid, new SnapshotSelectionCriteria(20)), TestActor);
        ExpectMsg<DeleteSnapshotsSuccess>();

        var index = Redis.Db.SortedSetRangeByRank(Keys.SnapshotIndex(Pid)).Select(m => (string)m!).ToArray();
        var member = Assert.Single(index);
        Assert.StartsWith("30:", member);
        Assert.Equal(19, member.Length - 3);
        Assert.Equal(["30"], Redis.Db.HashKeys(Keys.SnapshotData(Pid)).Select(f => (string)f!));
    }

    [Fact]
    public void A_snapshot_entry_stores_the_serializer_id_and_manifest_next_to_the_payload_bytes()
    {
        var saved = Save(7, new WithManifest("x"));

        var index = (string)Redis.Db.SortedSetRangeByRank(Keys.SnapshotIndex(Pid))[0]!;
        Assert.Equal($"7:{saved.Timestamp.Ticks:D19}", index);
        var entry = SnapshotEntry.Decode((byte[])Redis.Db.HashGet(Keys.SnapshotData(Pid), "7")!);
        Assert.Equal((9303, "wm"), (entry.SerializerId, entry.SerializerManifest));
        Assert.Equal(".x"u8.ToArray(), entry.Payload);
    }
}
