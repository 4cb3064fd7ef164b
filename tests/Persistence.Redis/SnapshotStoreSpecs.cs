using Akka.Persistence;
using Akka.TestKit;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// The snapshot store compliance suite, case by case as Akka's SnapshotStoreSpec (TCK) states it. Every test starts
/// from five snapshots "s-1".."s-5" of a fresh persistence id at sequence numbers 11..15; <see cref="_metadata"/>[i]
/// is what SaveSnapshotSuccess returned for "s-(i+1)".
/// </summary>
[Collection(SnapshotCollection.Name)]
public sealed class SnapshotStoreSpecs : PluginSpec
{
    private readonly TestProbe _sender;
    private readonly List<SnapshotMetadata> _metadata = [];

    public SnapshotStoreSpecs(RedisFixture redis, ITestOutputHelper output) : base(redis, output)
    {
        _sender = CreateTestProbe();
        for (var i = 1; i <= 5; i++)
        {
            SnapshotStore.Tell(new SaveSnapshot(new SnapshotMetadata(Pid, i + 10, DateTime.MinValue), $"s-{i}"), _sender.Ref);
            _metadata.Add(_sender.ExpectMsg<SaveSnapshotSuccess>().Metadata);
        }
    }

    private void Load(SnapshotSelectionCriteria criteria, long toSequenceNr = long.MaxValue, string? pid = null) =>
        SnapshotStore.Tell(new LoadSnapshot(pid ?? Pid, criteria, toSequenceNr), _sender.Ref);

    private void ExpectNothingLoaded(long toSequenceNr = long.MaxValue) =>
        _sender.ExpectMsg<LoadSnapshotResult>(r => r.Snapshot is null && r.ToSequenceNr == toSequenceNr);

    private void ExpectLoaded(int index, long toSequenceNr = long.MaxValue) =>
        _sender.ExpectMsg<LoadSnapshotResult>(r =>
            r.ToSequenceNr == toSequenceNr && r.Snapshot is not null &&
            r.Snapshot.Metadata.Equals(_metadata[index]) && r.Snapshot.Snapshot.Equals($"s-{index + 1}"));

    [Fact]
    public void Loads_nothing_for_an_unknown_persistence_id()
    {
        Load(SnapshotSelectionCriteria.Latest, pid: "unknown-" + Pid);
        ExpectNothingLoaded();
    }

    [Fact]
    public void Loads_nothing_when_no_snapshot_is_old_enough_for_the_timestamp_criterion()
    {
        Load(new SnapshotSelectionCriteria(long.MaxValue, new DateTime(100000)));
        ExpectNothingLoaded();
    }

    [Fact]
    public void Loads_nothing_when_no_snapshot_is_low_enough_for_the_sequence_number_criterion()
    {
        Load(new SnapshotSelectionCriteria(7));
        ExpectNothingLoaded();

        Load(SnapshotSelectionCriteria.Latest, toSequenceNr: 7);
        ExpectNothingLoaded(toSequenceNr: 7);
    }

    [Fact]
    public void Loads_the_most_recent_snapshot()
    {
        Load(SnapshotSelectionCriteria.Latest);
        ExpectLoaded(4);
    }

    [Fact]
    public void Loads_the_most_recent_snapshot_at_or_below_an_upper_sequence_number_bound()
    {
        Load(new SnapshotSelectionCriteria(13));
        ExpectLoaded(2);

        Load(SnapshotSelectionCriteria.Latest, toSequenceNr: 13);
        ExpectLoaded(2, toSequenceNr: 13);
    }

    [Fact]
    public void Loads_the_most_recent_snapshot_within_an_upper_sequence_number_and_timestamp_bound()
    {
        Load(new SnapshotSelectionCriteria(13, _metadata[2].Timestamp));
        ExpectLoaded(2);

        Load(new SnapshotSelectionCriteria(long.MaxValue, _metadata[2].Timestamp), toSequenceNr: 13);
        ExpectLoaded(2, toSequenceNr: 13);
    }

    [Fact]
    public void Deletes_one_snapshot_identified_by_its_metadata_and_publishes_the_command()
    {
        var command = new DeleteSnapshot(_metadata[2]);
        var subscriber = CreateTestProbe();
        Subscribe<DeleteSnapshot>(subscriber.Ref);

        SnapshotStore.Tell(command, _sender.Ref);
        subscriber.ExpectMsg(command);
        _sender.ExpectMsg<DeleteSnapshotSuccess>();

        Load(new SnapshotSelectionCriteria(_metadata[2].SequenceNr));
        ExpectLoaded(1);
    }

    [Fact]
    public void Deletes_one_snapshot_by_sequence_number_alone_when_the_metadata_has_no_timestamp()
    {
        var command = new DeleteSnapshot(new SnapshotMetadata(Pid, _metadata[2].SequenceNr, DateTime.MinValue)); // no timestamp
        var subscriber = CreateTestProbe();
        Subscribe<DeleteSnapshot>(subscriber.Ref);

        SnapshotStore.Tell(command, _sender.Ref);
        subscriber.ExpectMsg(command);
        _sender.ExpectMsg<DeleteSnapshotSuccess>();

        Load(new SnapshotSelectionCriteria(_metadata[2].SequenceNr));
        ExpectLoaded(1);
    }

    [Fact]
    public void Does_not_delete_a_snapshot_newer_than_the_timestamp_of_the_delete_command()
    {
        var older = new SnapshotMetadata(Pid, _metadata[2].SequenceNr, _metadata[2].Timestamp - TimeSpan.FromSeconds(2));

        SnapshotStore.Tell(new DeleteSnapshot(older), _sender.Ref);
        _sender.ExpectMsg<DeleteSnapshotSuccess>();

        Load(new SnapshotSelectionCriteria(_metadata[2].SequenceNr));
        ExpectLoaded(2);
    }

    [Fact]
    public void Deletes_every_snapshot_within_an_upper_sequence_number_and_timestamp_bound()
    {
        var criteria = new SnapshotSelectionCriteria(_metadata[2].SequenceNr, _metadata[2].Timestamp);
        var command = new DeleteSnapshots(Pid, criteria);
        var subscriber = CreateTestProbe();
        Subscribe<DeleteSnapshots>(subscriber.Ref);

        SnapshotStore.Tell(command, _sender.Ref);
        subscriber.ExpectMsg(command);
        _sender.ExpectMsg<DeleteSnapshotsSuccess>();

        Load(criteria);
        ExpectNothingLoaded();
        Load(new SnapshotSelectionCriteria(_metadata[3].SequenceNr, _metadata[3].Timestamp));
        ExpectLoaded(3);
    }

    [Fact]
    public void Does_not_delete_a_snapshot_one_tick_newer_than_the_timestamp_bound()
    {
        var criteria = new SnapshotSelectionCriteria(_metadata[3].SequenceNr, _metadata[3].Timestamp - TimeSpan.FromTicks(1));
        var command = new DeleteSnapshots(Pid, criteria);
        var subscriber = CreateTestProbe();
        Subscribe<DeleteSnapshots>(subscriber.Ref);

        SnapshotStore.Tell(command, _sender.Ref);
        subscriber.ExpectMsg(command);
        _sender.ExpectMsg<DeleteSnapshotsSuccess>(m => m.Criteria.Equals(criteria));

        Load(new SnapshotSelectionCriteria(_metadata[3].SequenceNr, _metadata[3].Timestamp));
        ExpectLoaded(3);
    }

    [Fact]
    public void Saving_again_at_the_same_sequence_number_replaces_the_snapshot()
    {
        SnapshotStore.Tell(new SaveSnapshot(_metadata[4], "s-5-modified"), _sender.Ref);
        var saved = _sender.ExpectMsg<SaveSnapshotSuccess>().Metadata;
        Assert.Equal(_metadata[4].SequenceNr, saved.SequenceNr);

        Load(new SnapshotSelectionCriteria(_metadata[4].SequenceNr));
        var result = _sender.ExpectMsg<LoadSnapshotResult>();
        Assert.Equal("s-5-modified", result.Snapshot.Snapshot);
        Assert.Equal(_metadata[4].SequenceNr, result.Snapshot.Metadata.SequenceNr);
    }

    [Fact]
    public void Saves_a_snapshot_of_10000_bytes()
    {
        var big = new byte[10_000];
        Random.Shared.NextBytes(big);

        SnapshotStore.Tell(new SaveSnapshot(new SnapshotMetadata(Pid, 100, DateTime.MinValue), big), _sender.Ref);
        _sender.ExpectMsg<SaveSnapshotSuccess>();

        Load(SnapshotSelectionCriteria.Latest);
        var loaded = _sender.ExpectMsg<LoadSnapshotResult>();
        Assert.Equal(big, (byte[])loaded.Snapshot.Snapshot);
    }

    [Fact]
    public void Serializes_snapshots_through_the_serializer_bound_to_their_type_and_round_trips_an_actor_reference()
    {
        var probe = CreateTestProbe();
        var snapshot = new RefPayload(probe.Ref);

        SnapshotStore.Tell(new SaveSnapshot(new SnapshotMetadata(Pid, 100, DateTime.MinValue), snapshot), _sender.Ref);
        _sender.ExpectMsg<SaveSnapshotSuccess>(m => m.Metadata.PersistenceId == Pid && m.Metadata.SequenceNr == 100);

        Load(SnapshotSelectionCriteria.Latest);
        _sender.ExpectMsg<LoadSnapshotResult>(r =>
            r.Snapshot.Metadata.PersistenceId == Pid && r.Snapshot.Metadata.SequenceNr == 100 && r.Snapshot.Snapshot.Equals(snapshot));
    }
}
