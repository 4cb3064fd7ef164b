using System.Collections.Immutable;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using StackExchange.Redis;

namespace ClusterJobs.Persistence.Redis.Journal;

/// <summary>
/// Akka.Persistence journal on Redis. Per persistence id: a sorted set of events (score = sequence number) and the
/// highest sequence number ever written; both keys carry the <c>{pid}</c> hash tag. Each write call runs one Lua
/// script per persistence id in the batch, pipelined, so a batch costs one round trip. Format and guarantees:
/// docs/persistence.md.
/// </summary>
public sealed class RedisJournal : AsyncWriteJournal, IWithUnboundedStash
{
    /// <summary>Sequence numbers are sorted-set scores (doubles): exact up to 2^53.</summary>
    public const long MaxSequenceNr = 1L << 53;

    /// <summary>Events fetched per replay round trip.</summary>
    internal const int ReplayPageSize = 512;

    private const CommandFlags WriteFlags = CommandFlags.DemandMaster | CommandFlags.NoScriptCache;

    private readonly PluginConnection _connection;
    private readonly RedisKeys _keys;
    private readonly PayloadSerialization _serialization;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public RedisJournal(Config config)
    {
        RedisPersistence.Get(Context.System);
        var settings = RedisPluginSettings.Create(config, RedisPersistence.DefaultJournalConfig());
        _keys = new RedisKeys(settings.KeyPrefix);
        _connection = new PluginConnection(settings, $"{Context.System.Name}-journal");
        _serialization = new PayloadSerialization((ExtendedActorSystem)Context.System);
    }

    public IStash Stash { get; set; } = null!;

    protected override void PreStart()
    {
        base.PreStart();
        _connection.Start(Self);
    }

    /// <summary>Until the connect attempt finished, every request waits in the stash, so requests reach Redis in the order they came.</summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (_connection.IsReady) return base.AroundReceive(receive, message);
        if (_connection.TryComplete(message, _log)) Stash.UnstashAll();
        else Stash.Stash();
        return true;
    }

    protected override void PostStop()
    {
        _connection.Dispose();
        base.PostStop();
    }

    protected override Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages as IReadOnlyList<AtomicWrite> ?? messages.ToList();
        // DeferAsync with nothing persisted before it sends a batch without any AtomicWrite (akkadotnet/Akka.Persistence.Redis#455).
        if (writes.Count == 0) return Task.FromResult<IImmutableList<Exception>>(null!);

        Exception[]? rejections = null;
        var groups = new Dictionary<string, List<RedisValue>>();
        var order = new List<string>();
        for (var i = 0; i < writes.Count; i++)
        {
            var write = writes[i];
            List<RedisValue> encoded;
            try { encoded = Encode(write); }
            catch (Exception ex)
            {
                // Rejected: not stored, and the persistent actor carries on (OnPersistRejected).
                (rejections ??= new Exception[writes.Count])[i] = ex;
                continue;
            }
            if (!groups.TryGetValue(write.PersistenceId, out var group))
            {
                groups[write.PersistenceId] = group = [RedisValue.Null];
                order.Add(write.PersistenceId);
            }
            group.AddRange(encoded);
        }

        // Every script is issued here, synchronously and in order, before anything is awaited: requests that reach
        // this actor later (a highest-sequence-number read of a recovering entity) are queued behind them.
        var calls = new (string Pid, Task<RedisResult> Reply)[order.Count];
        try
        {
            var db = _connection.Database;
            for (var g = 0; g < order.Count; g++)
            {
                var pid = order[g];
                var args = groups[pid];
                args[0] = args[^2]; // the new highest: the last sequence number of this persistence id in the batch
                calls[g] = (pid, db.ScriptEvaluateAsync(JournalScripts.Append, [_keys.Events(pid), _keys.Highest(pid)], args.ToArray(), WriteFlags));
            }
        }
        catch (Exception ex)
        {
            // No connection, or the client refused the command at once: the batch fails (never a rejection).
            return Task.FromException<IImmutableList<Exception>>(ex);
        }
        return Complete(calls, rejections);
    }

    private static async Task<IImmutableList<Exception>> Complete((string Pid, Task<RedisResult> Reply)[] calls, Exception[]? rejections)
    {
        if (calls.Length > 0) await Task.WhenAll(calls.Select(c => c.Reply)).ConfigureAwait(false);
        foreach (var (pid, call) in calls)
        {
            var reply = (RedisResult[])(await call.ConfigureAwait(false))!; // already complete: no wait
            if ((long)reply[0] != 1)
                throw new SequenceNumberConflictException(pid, (long)reply[1], (long)reply[2]);
        }
        return rejections is null ? null! : rejections.ToImmutableList();
    }

    /// <summary>The (sequence number, entry) pairs of one AtomicWrite; throws (a rejection) when a payload cannot be serialized.</summary>
    private List<RedisValue> Encode(AtomicWrite write)
    {
        var events = (IImmutableList<IPersistentRepresentation>)write.Payload;
        var result = new List<RedisValue>(events.Count * 2);
        var now = DateTime.UtcNow.Ticks;
        foreach (var persistent in events)
        {
            if (persistent.SequenceNr is < 1 or > MaxSequenceNr)
                throw new NotSupportedException($"Sequence number {persistent.SequenceNr} of '{persistent.PersistenceId}' is outside 1..2^53, which this journal stores exactly.");
            var payload = persistent.Payload;
            IReadOnlyList<string> tags = [];
            if (payload is Tagged tagged)
            {
                payload = tagged.Payload;
                tags = tagged.Tags.ToArray();
            }
            var (serializerId, manifest, bytes) = _serialization.Serialize(payload);
            var entry = new EventEntry(persistent.SequenceNr, persistent.Timestamp == 0 ? now : persistent.Timestamp,
                persistent.WriterGuid ?? "", persistent.Manifest ?? "", serializerId, manifest, tags, bytes);
            result.Add(persistent.SequenceNr);
            result.Add(entry.Encode());
        }
        return result;
    }

    public override async Task ReplayMessagesAsync(IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max,
        Action<IPersistentRepresentation> recoveryCallback)
    {
        if (max <= 0 || toSequenceNr < fromSequenceNr) return;
        var db = _connection.Database;
        var key = _keys.Events(persistenceId);
        var next = Math.Max(fromSequenceNr, 0);
        var remaining = max;
        while (remaining > 0)
        {
            // Paged by sequence number (not by offset), so a concurrent delete cannot shift a page.
            var take = (int)Math.Min(remaining, ReplayPageSize);
            var page = await db.SortedSetRangeByScoreAsync(key, next, toSequenceNr, Exclude.None, Order.Ascending, 0, take).ConfigureAwait(false);
            foreach (var member in page)
            {
                var entry = EventEntry.Decode((byte[])member!);
                var payload = _serialization.Deserialize(entry.SerializerId, entry.SerializerManifest, entry.Payload);
                recoveryCallback(new Persistent(payload, entry.SequenceNr, persistenceId, entry.EventManifest, isDeleted: false,
                    sender: ActorRefs.NoSender, writerGuid: entry.WriterGuid, timestamp: entry.Timestamp));
                next = entry.SequenceNr + 1;
            }
            remaining -= page.Length;
            if (page.Length < take || next > toSequenceNr) break;
        }
    }

    /// <summary>
    /// The highest sequence number ever written (0 for an unknown id): the highest key, or the last event's when that is
    /// higher (an evicting Redis may drop the key and keep the events; read as 0, recovery replayed nothing). A failed
    /// read fails; it never reads as 0.
    /// </summary>
    public override async Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken)
    {
        var batch = _connection.Database.CreateBatch();
        var stored = batch.StringGetAsync(_keys.Highest(persistenceId));
        var last = batch.SortedSetRangeByRankWithScoresAsync(_keys.Events(persistenceId), -1, -1);
        batch.Execute();
        var value = await stored.ConfigureAwait(false);
        var events = await last.ConfigureAwait(false);
        return Math.Max(value.IsNull ? 0 : (long)value, events.Length == 1 ? (long)events[0].Score : 0);
    }

    /// <summary>Removes events up to <paramref name="toSequenceNr"/>; the highest sequence number stays where it is.</summary>
    protected override async Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken)
    {
        if (toSequenceNr < 1) return;
        await _connection.Database.SortedSetRemoveRangeByScoreAsync(_keys.Events(persistenceId), double.NegativeInfinity, toSequenceNr,
            Exclude.None, CommandFlags.DemandMaster).ConfigureAwait(false);
    }
}
