using Akka.Actor;

namespace ClusterJobs.Persistence.Redis;

/// <summary>
/// One stored event: the member of the events sorted set (its score is <see cref="SequenceNr"/>). Binary, little-endian,
/// strings as a 7-bit encoded byte length followed by UTF-8 (as <see cref="BinaryWriter"/> writes them):
/// <code>
/// u8      format version (1)
/// i64     sequence number
/// i64     timestamp (UTC ticks; stamped at write when the Persistent carries none)
/// string  writer guid
/// string  event manifest (the event adapter's, "" for none)
/// i32     serializer id
/// string  serializer manifest
/// varint  tag count, then each tag as a string (from a Tagged payload; kept for a future query side)
/// varint  payload length, then the payload bytes (what the serializer produced)
/// </code>
/// The sequence number inside the entry makes the member unique, so two equal events never collapse into one.
/// </summary>
public sealed record EventEntry(
    long SequenceNr,
    long Timestamp,
    string WriterGuid,
    string EventManifest,
    int SerializerId,
    string SerializerManifest,
    IReadOnlyList<string> Tags,
    byte[] Payload)
{
    public const byte FormatVersion = 1;

    public byte[] Encode()
    {
        using var stream = new MemoryStream(64 + Payload.Length);
        using (var w = new BinaryWriter(stream))
        {
            w.Write(FormatVersion);
            w.Write(SequenceNr);
            w.Write(Timestamp);
            w.Write(WriterGuid);
            w.Write(EventManifest);
            w.Write(SerializerId);
            w.Write(SerializerManifest);
            w.Write7BitEncodedInt(Tags.Count);
            foreach (var tag in Tags) w.Write(tag);
            w.Write7BitEncodedInt(Payload.Length);
            w.Write(Payload);
        }
        return stream.ToArray();
    }

    public static EventEntry Decode(byte[] bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false));
        var version = r.ReadByte();
        if (version != FormatVersion)
            throw new InvalidDataException($"Unknown journal entry format version {version} (this plugin reads {FormatVersion}).");
        var seqNr = r.ReadInt64();
        var timestamp = r.ReadInt64();
        var writer = r.ReadString();
        var eventManifest = r.ReadString();
        var serializerId = r.ReadInt32();
        var serializerManifest = r.ReadString();
        var tagCount = r.Read7BitEncodedInt();
        var tags = tagCount == 0 ? Array.Empty<string>() : new string[tagCount];
        for (var i = 0; i < tagCount; i++) tags[i] = r.ReadString();
        var length = r.Read7BitEncodedInt();
        var payload = r.ReadBytes(length);
        if (payload.Length != length) throw new InvalidDataException("Truncated journal entry payload.");
        return new EventEntry(seqNr, timestamp, writer, eventManifest, serializerId, serializerManifest, tags, payload);
    }
}

/// <summary>
/// One stored snapshot payload: the value in the snapshot data hash (its metadata lives in the index sorted set).
/// <code>
/// u8      format version (1)
/// i32     serializer id
/// string  serializer manifest
/// varint  payload length, then the payload bytes
/// </code>
/// </summary>
public sealed record SnapshotEntry(int SerializerId, string SerializerManifest, byte[] Payload)
{
    public const byte FormatVersion = 1;

    public byte[] Encode()
    {
        using var stream = new MemoryStream(32 + Payload.Length);
        using (var w = new BinaryWriter(stream))
        {
            w.Write(FormatVersion);
            w.Write(SerializerId);
            w.Write(SerializerManifest);
            w.Write7BitEncodedInt(Payload.Length);
            w.Write(Payload);
        }
        return stream.ToArray();
    }

    public static SnapshotEntry Decode(byte[] bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false));
        var version = r.ReadByte();
        if (version != FormatVersion)
            throw new InvalidDataException($"Unknown snapshot entry format version {version} (this plugin reads {FormatVersion}).");
        var serializerId = r.ReadInt32();
        var manifest = r.ReadString();
        var length = r.Read7BitEncodedInt();
        var payload = r.ReadBytes(length);
        if (payload.Length != length) throw new InvalidDataException("Truncated snapshot entry payload.");
        return new SnapshotEntry(serializerId, manifest, payload);
    }
}

/// <summary>Akka serialization of payloads: the serializer bound to the payload's type, inside the system's transport scope (so IActorRefs round-trip).</summary>
internal sealed class PayloadSerialization(ExtendedActorSystem system)
{
    public (int SerializerId, string Manifest, byte[] Bytes) Serialize(object payload)
    {
        var serializer = system.Serialization.FindSerializerFor(payload);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, payload) ?? "";
        var bytes = Akka.Serialization.Serialization.WithTransport(system, (serializer, payload), s => s.serializer.ToBinary(s.payload));
        return (serializer.Identifier, manifest, bytes);
    }

    public object Deserialize(int serializerId, string manifest, byte[] bytes) =>
        Akka.Serialization.Serialization.WithTransport(system, (system, serializerId, manifest, bytes),
            s => s.system.Serialization.Deserialize(s.bytes, s.serializerId, s.manifest));
}
