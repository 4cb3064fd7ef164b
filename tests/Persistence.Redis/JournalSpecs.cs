using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using Akka.TestKit;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// The journal compliance suite, case by case as Akka's JournalSpec (TCK) states it. Every test starts from events
/// 1..5 of a fresh persistence id, written as 1, 2, 3 (one AtomicWrite each) and 4+5 (one AtomicWrite), payloads
/// "a-1".."a-5". Unless a case says otherwise a replay ends with RecoverySuccess(highest = 5).
/// </summary>
[Collection(JournalCollection.Name)]
public sealed class JournalSpecs : PluginSpec
{
    private readonly TestProbe _receiver;

    public JournalSpecs(RedisFixture redis, ITestOutputHelper output) : base(redis, output)
    {
        _receiver = CreateTestProbe();
        WriteInitialEvents();
    }

    private void WriteInitialEvents()
    {
        Persistent Event(long n) => new("a-" + n, n, Pid, string.Empty, false, ActorRefs.NoSender, WriterGuid);
        var writes = new[]
        {
            new AtomicWrite(Event(1)), new AtomicWrite(Event(2)), new AtomicWrite(Event(3)),
            new AtomicWrite(ImmutableList.Create<IPersistentRepresentation>(Event(4), Event(5))),
        };
        var probe = CreateTestProbe();
        Journal.Tell(new WriteMessages(writes, probe.Ref, ActorInstanceId));
        probe.ExpectMsg<WriteMessagesSuccessful>();
        for (var n = 1; n <= 5; n++)
        {
            var expected = n;
            probe.ExpectMsg<WriteMessageSuccess>(m =>
                m.Persistent.Payload.Equals("a-" + expected) && m.Persistent.SequenceNr == expected && m.Persistent.PersistenceId == Pid);
        }
    }

    private void Replay(long from, long to, long max) =>
        Journal.Tell(new ReplayMessages(from, to, max, Pid, _receiver.Ref));

    private void ExpectReplayed(params long[] sequenceNrs)
    {
        foreach (var n in sequenceNrs)
            _receiver.ExpectMsg<ReplayedMessage>(m =>
                m.Persistent.SequenceNr == n && m.Persistent.Payload.Equals("a-" + n) &&
                m.Persistent.PersistenceId == Pid && !m.Persistent.IsDeleted);
    }

    private void ExpectRecovered(long highest) =>
        _receiver.ExpectMsg<RecoverySuccess>(m => m.HighestSequenceNr == highest);

    [Fact]
    public void Replays_all_messages()
    {
        Replay(1, long.MaxValue, long.MaxValue);
        ExpectReplayed(1, 2, 3, 4, 5);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_from_a_lower_sequence_number_bound()
    {
        Replay(3, long.MaxValue, long.MaxValue);
        ExpectReplayed(3, 4, 5);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_up_to_an_upper_sequence_number_bound_and_still_reports_the_true_highest()
    {
        Replay(1, 3, long.MaxValue);
        ExpectReplayed(1, 2, 3);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_no_more_than_the_count_limit()
    {
        Replay(1, long.MaxValue, 3);
        ExpectReplayed(1, 2, 3);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_between_a_lower_and_an_upper_bound()
    {
        Replay(2, 3, long.MaxValue);
        ExpectReplayed(2, 3);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_between_bounds_and_within_the_count_limit()
    {
        Replay(2, 5, 2);
        ExpectReplayed(2, 3);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_a_single_message_when_the_lower_bound_equals_the_upper_bound()
    {
        Replay(2, 2, long.MaxValue);
        ExpectReplayed(2);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_a_single_message_when_the_count_limit_is_one()
    {
        Replay(2, 4, 1);
        ExpectReplayed(2);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_nothing_when_the_count_limit_is_zero()
    {
        Replay(2, 4, 0);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_nothing_when_the_lower_bound_is_above_the_upper_bound()
    {
        Replay(3, 2, long.MaxValue);
        ExpectRecovered(5);
    }

    [Fact]
    public void Replays_nothing_and_reports_highest_zero_for_a_persistence_id_that_never_wrote()
    {
        Journal.Tell(new ReplayMessages(0, long.MaxValue, long.MaxValue, "never-written-" + Pid, _receiver.Ref));
        ExpectRecovered(0);
    }

    [Fact]
    public void Does_not_replay_messages_deleted_by_range_and_publishes_the_delete_command()
    {
        var deleter = CreateTestProbe();
        var subscriber = CreateTestProbe();
        Subscribe<DeleteMessagesTo>(subscriber.Ref);

        Journal.Tell(new DeleteMessagesTo(Pid, 3, deleter.Ref));
        subscriber.ExpectMsg<DeleteMessagesTo>(c => c.PersistenceId == Pid && c.ToSequenceNr == 3);
        deleter.ExpectMsg<DeleteMessagesSuccess>(m => m.ToSequenceNr == 3);

        Replay(1, long.MaxValue, long.MaxValue);
        ExpectReplayed(4, 5);
        ExpectRecovered(5);
        deleter.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void Keeps_the_highest_sequence_number_after_deleting_some_messages()
    {
        Replay(0, long.MaxValue, long.MaxValue);
        ExpectReplayed(1, 2, 3, 4, 5);
        ExpectRecovered(5);

        Journal.Tell(new DeleteMessagesTo(Pid, 3, _receiver.Ref));
        _receiver.ExpectMsg<DeleteMessagesSuccess>(m => m.ToSequenceNr == 3);

        Replay(0, long.MaxValue, long.MaxValue);
        ExpectReplayed(4, 5);
        ExpectRecovered(5);
    }

    [Fact]
    public void Keeps_the_highest_sequence_number_after_deleting_every_message()
    {
        Replay(0, long.MaxValue, long.MaxValue);
        ExpectReplayed(1, 2, 3, 4, 5);
        ExpectRecovered(5);

        Journal.Tell(new DeleteMessagesTo(Pid, long.MaxValue, _receiver.Ref));
        _receiver.ExpectMsg<DeleteMessagesSuccess>(m => m.ToSequenceNr == long.MaxValue);

        Replay(0, long.MaxValue, long.MaxValue);
        ExpectRecovered(5);
    }

    [Fact]
    public void Serializes_events_through_the_serializer_bound_to_their_type_and_round_trips_an_actor_reference()
    {
        var probe = CreateTestProbe();
        var payload = new RefPayload(probe.Ref);
        var write = new AtomicWrite(new Persistent(payload, 6, Pid, sender: ActorRefs.NoSender, writerGuid: WriterGuid));

        Journal.Tell(new WriteMessages([write], probe.Ref, ActorInstanceId));
        probe.ExpectMsg<WriteMessagesSuccessful>();
        probe.ExpectMsg<WriteMessageSuccess>(m => IsEventSix(m.Persistent, payload));

        Journal.Tell(new ReplayMessages(6, long.MaxValue, long.MaxValue, Pid, _receiver.Ref));
        _receiver.ExpectMsg<ReplayedMessage>(m => IsEventSix(m.Persistent, payload));
        ExpectRecovered(6);
    }

    private bool IsEventSix(IPersistentRepresentation p, RefPayload payload)
    {
        Assert.Equal(WriterGuid, p.WriterGuid);
        Assert.Equal(Pid, p.PersistenceId);
        Assert.Equal(6L, p.SequenceNr);
        Assert.True(p.Sender is null || p.Sender.IsNobody() || p.Sender.Equals(Sys.DeadLetters), $"unexpected sender {p.Sender}");
        Assert.Equal(payload, p.Payload);
        return true;
    }

    [Fact]
    public void Rejects_an_event_that_cannot_be_serialized_and_stores_the_others_of_the_batch()
    {
        var writes = Enumerable.Range(6, 3).Select(i => new AtomicWrite(new Persistent(
            i == 7 ? new NotSerializable("x") : "b-" + i, i, Pid, sender: ActorRefs.NoSender, writerGuid: WriterGuid))).ToArray();
        var probe = CreateTestProbe();

        Journal.Tell(new WriteMessages(writes, probe.Ref, ActorInstanceId));
        probe.ExpectMsg<WriteMessagesSuccessful>();
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 6 && m.Persistent.Payload.Equals("b-6") && m.Persistent.WriterGuid == WriterGuid);
        probe.ExpectMsg<WriteMessageRejected>(m => m.Persistent.SequenceNr == 7 && m.Persistent.Payload is NotSerializable);
        probe.ExpectMsg<WriteMessageSuccess>(m => m.Persistent.SequenceNr == 8 && m.Persistent.Payload.Equals("b-8"));

        Journal.Tell(new ReplayMessages(6, long.MaxValue, long.MaxValue, Pid, _receiver.Ref));
        _receiver.ExpectMsg<ReplayedMessage>(m => m.Persistent.SequenceNr == 6);
        _receiver.ExpectMsg<ReplayedMessage>(m => m.Persistent.SequenceNr == 8);
        ExpectRecovered(8);
    }
}
