using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.Persistence;
using StackExchange.Redis;

namespace ClusterJobs.Persistence.Redis.Snapshot;

/// <summary>
/// Akka.Persistence snapshot store on Redis. Per persistence id: an index sorted set of metadata (score = sequence
/// number, member = <c>seqNr:timestamp</c>) and a hash of payloads by sequence number, both under the <c>{pid}</c> hash
/// tag. A load picks its snapshot by metadata inside one Lua script and deserializes only that one. One snapshot per
/// sequence number: saving again at the same sequence number replaces it. Format: docs/persistence.md.
/// </summary>
public sealed class RedisSnapshotStore : Akka.Persistence.Snapshot.SnapshotStore, IWithUnboundedStash
{
    private const CommandFlags WriteFlags = CommandFlags.DemandMaster | CommandFlags.NoScriptCache;
    private const CommandFlags ReadFlags = CommandFlags.NoScriptCache;

    private readonly PluginConnection _connection;
    private readonly RedisKeys _keys;
    private readonly PayloadSerialization _serialization;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public RedisSnapshotStore(Config config)
    {
        RedisPersistence.Get(Context.System);
        var settings = RedisPluginSettings.Create(config, RedisPersistence.DefaultSnapshotStoreConfig());
        _keys = new RedisKeys(settings.KeyPrefix);
        _connection = new PluginConnection(settings, $"{Context.System.Name}-snapshots");
        _serialization = new PayloadSerialization((ExtendedActorSystem)Context.System);
    }

    public IStash Stash { get; set; } = null!;

    protected override void PreStart()
    {
        base.PreStart();
        _connection.Start(Self);
    }

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

    /// <summary>A timestamp as the scripts compare it: ticks, zero-padded to 19 digits (DateTime.MaxValue has 19).</summary>
    internal static string Ticks(DateTime time) => time.Ticks.ToString("D19", CultureInfo.InvariantCulture);

    private static string Seq(long sequenceNr) => sequenceNr.ToString(CultureInfo.InvariantCulture);

    private RedisKey[] Keys(string persistenceId) => [_keys.SnapshotIndex(persistenceId), _keys.SnapshotData(persistenceId)];

    protected override async Task<SelectedSnapshot> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        if (criteria.MaxSequenceNr < criteria.MinSequenceNr) return null!;
        var result = await _connection.Database.ScriptEvaluateAsync(SnapshotScripts.Load, Keys(persistenceId),
            [Seq(criteria.MaxSequenceNr), Seq(criteria.MinSequenceNr), Ticks(criteria.MaxTimeStamp), Ticks(criteria.MinTimestamp ?? DateTime.MinValue)],
            ReadFlags).ConfigureAwait(false);
        if (result.IsNull) return null!;
        var reply = (RedisResult[])result!;
        var sequenceNr = long.Parse((string)reply[0]!, CultureInfo.InvariantCulture);
        var timestamp = new DateTime(long.Parse((string)reply[1]!, CultureInfo.InvariantCulture), DateTimeKind.Utc);
        var entry = SnapshotEntry.Decode((byte[])reply[2]!);
        var snapshot = _serialization.Deserialize(entry.SerializerId, entry.SerializerManifest, entry.Payload);
        return new SelectedSnapshot(new SnapshotMetadata(persistenceId, sequenceNr, timestamp), snapshot);
    }

    protected override async Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken)
    {
        var (serializerId, manifest, bytes) = _serialization.Serialize(snapshot);
        var entry = new SnapshotEntry(serializerId, manifest, bytes).Encode();
        await _connection.Database.ScriptEvaluateAsync(SnapshotScripts.Save, Keys(metadata.PersistenceId),
            [Seq(metadata.SequenceNr), Ticks(metadata.Timestamp), entry], WriteFlags).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes the snapshot at the metadata's sequence number when it is no newer than the metadata's timestamp;
    /// <see cref="DateTime.MinValue"/> (no timestamp) deletes it whatever its timestamp.
    /// </summary>
    protected override async Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken)
    {
        var upTo = metadata.Timestamp == DateTime.MinValue ? DateTime.MaxValue : metadata.Timestamp;
        var seq = Seq(metadata.SequenceNr);
        await _connection.Database.ScriptEvaluateAsync(SnapshotScripts.Delete, Keys(metadata.PersistenceId),
            [seq, seq, Ticks(DateTime.MinValue), Ticks(upTo)], WriteFlags).ConfigureAwait(false);
    }

    protected override async Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        if (criteria.MaxSequenceNr < criteria.MinSequenceNr) return;
        await _connection.Database.ScriptEvaluateAsync(SnapshotScripts.Delete, Keys(persistenceId),
            [Seq(criteria.MinSequenceNr), Seq(criteria.MaxSequenceNr), Ticks(criteria.MinTimestamp ?? DateTime.MinValue), Ticks(criteria.MaxTimeStamp)],
            WriteFlags).ConfigureAwait(false);
    }
}
