using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using System.Text;
using System.Text.Json;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Serialization;

/// <summary>
/// The bytes of a <see cref="WorkerPool.Dispatch"/> between nodes: a compact binary layout of each job's fields, with
/// only the handler arguments kept as the producer's JSON. Every job crossing nodes goes through this, so it must be
/// cheap: writing a Dispatch as JSON and parsing it again on the receiving node cost the pools there about a sixth of
/// their CPU in W4 (docs/benchmarks.md). No type names: a leading format byte, then fields in a fixed order.
/// </summary>
internal static class DispatchWireFormat
{
    /// <summary>
    /// 1: the fields of the first release. 2: and each job's trace context. A Dispatch with no trace context is written
    /// as 1, so nodes of releases before tracing still read it in a mixed-version cluster that does not trace.
    /// </summary>
    private const byte Format = 1;
    private const byte FormatWithTraceContext = 2;
    /// <summary>
    /// Reading: bytes that are not UTF-8 are corruption. Writing: a lone surrogate in a string becomes U+FFFD rather than
    /// failing the whole Dispatch. (Envelopes parsed by the ingress cannot hold one, System.Text.Json refuses it; this
    /// guards strings set in code.)
    /// </summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private static readonly UTF8Encoding LenientUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    public static byte[] Write(WorkerPool.Dispatch dispatch)
    {
        using var stream = new MemoryStream(64 + dispatch.Jobs.Count * 256);
        using (var w = new BinaryWriter(stream, LenientUtf8, leaveOpen: true))
        {
            var traced = dispatch.Jobs.Any(j => j.Envelope.TraceParent is not null || j.Envelope.TraceState is not null);
            w.Write(traced ? FormatWithTraceContext : Format);
            w.Write(dispatch.Queue);
            w.Write(dispatch.Jobs.Count);
            foreach (var job in dispatch.Jobs) WriteJob(w, job, traced);
        }
        return stream.ToArray();
    }

    public static WorkerPool.Dispatch Read(byte[] bytes)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, writable: false), StrictUtf8);
            var format = r.ReadByte();
            if (format is not (Format or FormatWithTraceContext))
                throw new SerializationException($"Dispatch format {format} is not one this node reads ({Format}, {FormatWithTraceContext}).");
            var traced = format == FormatWithTraceContext;
            var queue = r.ReadString();
            var count = r.ReadInt32();
            // Each job takes well over 8 bytes: a count the payload cannot hold is corrupt, not a reason to allocate.
            if (count < 0 || count > bytes.Length / 8) throw new SerializationException($"Dispatch claims {count} jobs in {bytes.Length} bytes.");
            var jobs = new JobLease[count];
            for (var i = 0; i < count; i++) jobs[i] = ReadJob(r, bytes, traced);
            if (r.BaseStream.Position != bytes.Length) throw new SerializationException("Dispatch has trailing bytes.");
            return new WorkerPool.Dispatch(queue, jobs);
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or DecoderFallbackException or FormatException
                                       or JsonException or ArgumentException or OverflowException)
        {
            throw new SerializationException($"ClusterJobs message 'pd' is malformed: {ex.Message}", ex);
        }
    }

    private static void WriteJob(BinaryWriter w, JobLease job, bool traced)
    {
        var e = job.Envelope;
        w.Write(job.Attempt);
        WriteOptional(w, job.Phase);
        w.Write(e.Version);
        w.Write(e.Id);
        w.Write(e.Task);
        w.Write(e.Queue);
        w.Write(e.Priority);
        w.Write(e.EnqueuedAt);
        WriteOptional(w, e.NotBefore);
        WriteOptional(w, e.MaxAttempts);
        WriteOptional(w, e.BackoffMs);
        WriteOptional(w, e.BackoffMaxMs);
        WriteOptional(w, e.SoftTimeoutMs);
        WriteOptional(w, e.HardTimeoutMs);
        WriteOptional(w, e.ParentId);
        WriteOptional(w, e.RootId);
        WriteOptional(w, e.IdempotencyKey);
        WriteOptional(w, e.ReplayOf);
        if (traced)
        {
            WriteOptional(w, e.TraceParent);
            WriteOptional(w, e.TraceState);
        }
        w.Write(e.Attempt);
        // The arguments stay JSON (the handler binds them): their bytes as parsed, without writing them anew.
        var args = e.Args.ValueKind == JsonValueKind.Undefined ? JobEnvelope.EmptyArgs : e.Args;
        var raw = JsonMarshal.GetRawUtf8Value(args);
        w.Write(raw.Length);
        w.Write(raw);
    }

    private static JobLease ReadJob(BinaryReader r, byte[] bytes, bool traced)
    {
        var attempt = r.ReadInt32();
        var phase = ReadOptionalString(r);
        var envelope = new JobEnvelope
        {
            Version = r.ReadInt32(),
            Id = r.ReadString(),
            Task = r.ReadString(),
            Queue = r.ReadString(),
            Priority = r.ReadInt32(),
            EnqueuedAt = r.ReadInt64(),
            NotBefore = ReadOptionalInt64(r),
            MaxAttempts = ReadOptionalInt32(r),
            BackoffMs = ReadOptionalInt64(r),
            BackoffMaxMs = ReadOptionalInt64(r),
            SoftTimeoutMs = ReadOptionalInt64(r),
            HardTimeoutMs = ReadOptionalInt64(r),
            ParentId = ReadOptionalString(r),
            RootId = ReadOptionalString(r),
            IdempotencyKey = ReadOptionalString(r),
            ReplayOf = ReadOptionalString(r),
            TraceParent = traced ? ReadOptionalString(r) : null,
            TraceState = traced ? ReadOptionalString(r) : null,
            Attempt = r.ReadInt32(),
            Args = ReadArgs(r, bytes),
        };
        return new JobLease(envelope, attempt, phase);
    }

    /// <summary>
    /// Parses the arguments where they lie in the message (ParseValue copies what it keeps), after checking their length
    /// against what is left: a corrupt length is a FormatException, not an allocation of that size.
    /// </summary>
    private static JsonElement ReadArgs(BinaryReader r, byte[] bytes)
    {
        var length = r.ReadInt32();
        var start = (int)r.BaseStream.Position;
        if (length < 0 || length > bytes.Length - start) throw new FormatException($"argument length {length} does not fit the message");
        var reader = new Utf8JsonReader(bytes.AsSpan(start, length));
        var args = JsonElement.ParseValue(ref reader);
        if (reader.BytesConsumed != length) throw new FormatException("trailing bytes after the arguments");
        r.BaseStream.Position = start + length;
        return args;
    }

    private static void WriteOptional(BinaryWriter w, string? value)
    {
        w.Write(value is not null);
        if (value is not null) w.Write(value);
    }

    private static void WriteOptional(BinaryWriter w, long? value)
    {
        w.Write(value.HasValue);
        if (value.HasValue) w.Write(value.Value);
    }

    private static void WriteOptional(BinaryWriter w, int? value)
    {
        w.Write(value.HasValue);
        if (value.HasValue) w.Write(value.Value);
    }

    private static string? ReadOptionalString(BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;
    private static long? ReadOptionalInt64(BinaryReader r) => r.ReadBoolean() ? r.ReadInt64() : null;
    private static int? ReadOptionalInt32(BinaryReader r) => r.ReadBoolean() ? r.ReadInt32() : null;
}
