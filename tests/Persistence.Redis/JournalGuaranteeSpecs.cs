using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using ClusterJobs.Persistence.Redis.Journal;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// What this journal promises beyond the TCK: a sequence number is written once, the highest sequence number never
/// goes down, an AtomicWrite is all or nothing, a batch is one round trip of scripts, an entity's keys share a slot,
/// and entries keep their serializer id and manifest.
/// </summary>
[Collection(JournalCollection.Name)]
public sealed class JournalGuaranteeSpecs(RedisFixture redis, ITestOutputHelper output) : PluginSpec(redis, output)
{
    private Persistent Event(long seqNr, object? payload = null, string? pid = null) =>
        new(payload ?? "a-" + seqNr, seqNr, pid ?? Pid, string.Empty, false, ActorRefs.NoSender, WriterGuid);

    private void WriteOk(params AtomicWrite[] writes)
    {
        Journal.Tell(new WriteMessages(writes, TestActor, ActorInstanceId));
        ExpectMsg<WriteMessagesSuccessful>();
        foreach (var _ in writes.SelectMany(w => (IImmutableList<IPersistentRepresentation>)w.Payload))
            ExpectMsg<WriteMessageSuccess>();
    }

    private Exception WriteRefused(params AtomicWrite[] writes)
    {
        Journal.Tell(new WriteMessages(writes, TestActor, ActorInstanceId));
        var failed = ExpectMsg<WriteMessagesFailed>();
        foreach (var _ in writes.SelectMany(w => (IImmutableList<IPersistentRepresentation>)w.Payload))
            ExpectMsg<WriteMessageFailure>();
        return failed.Cause;
    }

    private (long[] SequenceNrs, object[] Payloads, long Highest) ReplayAll(string? pid = null)
    {
        Journal.Tell(new ReplayMessages(0, long.MaxValue, long.MaxValue, pid ?? Pid, TestActor));
        var seqs = new List<long>();
        var payloads = new List<object>();
        while (true)
        {
            var msg = ExpectMsg<object>();
            if (msg is RecoverySuccess done) return (seqs.ToArray(), payloads.ToArray(), done.HighestSequenceNr);
            var p = ((ReplayedMessage)msg).Persistent;
            seqs.Add(p.SequenceNr);
            payloads.Add(p.Payload);
        }
    }

    [Fact]
    public void A_sequence_number_already_written_is_refused_and_the_stored_event_is_kept()
    {
        WriteOk(new AtomicWrite(Event(1)), new AtomicWrite(Event(2)), new AtomicWrite(Event(3)));

        var cause = WriteRefused(new AtomicWrite(Event(3, "other writer")));

        var conflict = Assert.IsType<SequenceNumberConflictException>(cause);
        Assert.Equal((Pid, 3L, 3L), (conflict.PersistenceId, conflict.SequenceNr, conflict.StoredHighest));
        var replay = ReplayAll();
        Assert.Equal([1L, 2, 3], replay.SequenceNrs);
        Assert.Equal("a-3", replay.Payloads[2]);
        Assert.Equal(3, replay.Highest);
    }

    [Fact]
    public void A_sequence_number_below_the_highest_is_refused_even_after_its_event_was_deleted()
    {
        WriteOk(new AtomicWrite(Event(1)), new AtomicWrite(Event(2)), new AtomicWrite(Event(3)));
        Journal.Tell(new DeleteMessagesTo(Pid, 3, TestActor));
        ExpectMsg<DeleteMessagesSuccess>();

        Assert.IsType<SequenceNumberConflictException>(WriteRefused(new AtomicWrite(Event(2))));

        var replay = ReplayAll();
        Assert.Empty(replay.SequenceNrs);
        Assert.Equal(3, replay.Highest);
    }

    [Fact]
    public void Events_whose_highest_key_was_lost_are_still_replayed_and_the_next_write_follows_them()
    {
        // An evicting Redis (allkeys-lru, as a cache shared with other apps runs) can drop the small highest key and keep
        // the events: read as 0, recovery replayed nothing and the entity started over, its next write refused for ever.
        WriteOk(new AtomicWrite(Event(1)), new AtomicWrite(Event(2)), new AtomicWrite(Event(3)));
        Redis.Db.KeyDelete(Keys.Highest(Pid));

        var replay = ReplayAll();

        Assert.Equal([1L, 2, 3], replay.SequenceNrs);
        Assert.Equal(3, replay.Highest);
        WriteOk(new AtomicWrite(Event(4)));
        Assert.Equal("4", (string?)Redis.Db.StringGet(Keys.Highest(Pid)));
    }

    [Fact]
    public void An_atomic_write_is_stored_whole_or_not_at_all()
    {
        WriteOk(new AtomicWrite(Event(1)), new AtomicWrite(Event(2)));

        // 3 and 4 are new, 2 is taken: none of the three is stored.
        WriteRefused(new AtomicWrite(ImmutableList.Create<IPersistentRepresentation>(Event(3), Event(4), Event(2))));

        var replay = ReplayAll();
        Assert.Equal([1L, 2], replay.SequenceNrs);
        Assert.Equal(2, replay.Highest);
        WriteOk(new AtomicWrite(ImmutableList.Create<IPersistentRepresentation>(Event(3), Event(4))));
        Assert.Equal([1L, 2, 3, 4], ReplayAll().SequenceNrs);
    }

    [Fact]
    public void A_batch_of_several_entities_is_stored_in_order_for_each_of_them()
    {
        var other = Pid + "-other";
        WriteOk(
            new AtomicWrite(Event(1)), new AtomicWrite(Event(1, pid: other)),
            new AtomicWrite(ImmutableList.Create<IPersistentRepresentation>(Event(2), Event(3))),
            new AtomicWrite(Event(2, pid: other)), new AtomicWrite(Event(4)));

        Assert.Equal([1L, 2, 3, 4], ReplayAll().SequenceNrs);
        var replayOther = ReplayAll(other);
        Assert.Equal([1L, 2], replayOther.SequenceNrs);
        Assert.Equal(2, replayOther.Highest);
    }

    [Fact]
    public void A_batch_without_any_atomic_write_succeeds_and_writes_nothing()
    {
        Journal.Tell(new WriteMessages([], TestActor, ActorInstanceId));
        ExpectMsg<WriteMessagesSuccessful>();
        Assert.Equal(0, ReplayAll().Highest);
    }

    [Fact]
    public void DeferAsync_with_nothing_persisted_before_it_never_trips_the_circuit_breaker()
    {
        // More calls than the breaker's max-failures (10): each would count as a failure without the empty-batch guard.
        var actor = Sys.ActorOf(Props.Create(() => new DeferringActor(Pid)));
        for (var i = 0; i < 12; i++)
        {
            actor.Tell(i);
            ExpectMsg(i);
        }
        actor.Tell("persist");
        ExpectMsg("persisted");
    }

    [Fact]
    public void Replay_pages_through_a_long_journal_and_honours_the_count_limit()
    {
        var count = RedisJournal.ReplayPageSize * 2 + 100;
        WriteOk(new AtomicWrite(Enumerable.Range(1, count).Select(i => (IPersistentRepresentation)Event(i)).ToImmutableList()));

        var all = ReplayAll();
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), all.SequenceNrs);
        Assert.Equal(count, all.Highest);

        Journal.Tell(new ReplayMessages(10, long.MaxValue, RedisJournal.ReplayPageSize + 1, Pid, TestActor));
        var replayed = ReceiveN(RedisJournal.ReplayPageSize + 1).Cast<ReplayedMessage>().Select(m => m.Persistent.SequenceNr);
        Assert.Equal(Enumerable.Range(10, RedisJournal.ReplayPageSize + 1).Select(i => (long)i), replayed);
        ExpectMsg<RecoverySuccess>(m => m.HighestSequenceNr == count);
    }

    [Fact]
    public void Every_key_of_an_entity_carries_its_hash_tag_so_they_share_one_cluster_slot()
    {
        var pid = Pid + "/{odd}%id";
        WriteOk(new AtomicWrite(Event(1, pid: pid)));
        SnapshotStore.Tell(new SaveSnapshot(new SnapshotMetadata(pid, 1, DateTime.MinValue), "s"), TestActor);
        ExpectMsg<SaveSnapshotSuccess>();

        RedisKey[] keys = [Keys.Events(pid), Keys.Highest(pid), Keys.SnapshotIndex(pid), Keys.SnapshotData(pid)];
        foreach (var key in keys) Assert.True(Redis.Db.KeyExists(key), $"{key} was not written");
        var tag = "{" + Pid + "/%7Bodd%7D%25id}";
        Assert.All(keys, k => Assert.StartsWith($"{Redis.Prefix}:", (string)k!));
        Assert.All(keys, k => Assert.Contains(":" + tag + ":", (string)k!));
        Assert.Single(keys.Select(k => Redis.Redis.HashSlot(k)).Distinct());
        Assert.Equal(Redis.Redis.HashSlot(tag[1..^1]), Redis.Redis.HashSlot(keys[0]));
    }

    [Fact]
    public void An_entry_stores_the_serializer_id_and_manifest_next_to_the_payload_bytes()
    {
        WriteOk(new AtomicWrite(new Persistent(new WithManifest("a"), 1, Pid, "adapter-m", false, ActorRefs.NoSender, WriterGuid)));

        var raw = Redis.Db.SortedSetRangeByScoreWithScores(Keys.Events(Pid));
        var stored = Assert.Single(raw);
        Assert.Equal(1, stored.Score);
        var entry = EventEntry.Decode((byte[])stored.Element!);
        Assert.Equal(1, entry.SequenceNr);
        Assert.Equal(WriterGuid, entry.WriterGuid);
        Assert.Equal("adapter-m", entry.EventManifest);
        Assert.Equal(9303, entry.SerializerId);
        Assert.Equal("wm", entry.SerializerManifest);
        Assert.Equal(".a"u8.ToArray(), entry.Payload);
        Assert.Equal("1", (string?)Redis.Db.StringGet(Keys.Highest(Pid)));
    }

    [Fact]
    public void An_event_without_a_timestamp_is_stamped_with_the_time_of_the_write()
    {
        var before = DateTime.UtcNow.Ticks;
        WriteOk(new AtomicWrite(Event(1)));
        var entry = EventEntry.Decode((byte[])Redis.Db.SortedSetRangeByRank(Keys.Events(Pid))[0]!);
        Assert.InRange(entry.Timestamp, before, DateTime.UtcNow.Ticks);
    }

    private sealed class DeferringActor : ReceivePersistentActor
    {
        public DeferringActor(string persistenceId)
        {
            PersistenceId = persistenceId;
            Command<int>(i =>
            {
                var sender = Sender;
                DeferAsync(i, n => sender.Tell(n));
            });
            Command<string>(_ =>
            {
                var sender = Sender;
                Persist("event", _ => sender.Tell("persisted"));
            });
        }

        public override string PersistenceId { get; }
    }
}
