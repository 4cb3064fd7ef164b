using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterJobs.Protocol;

/// <summary>Source-generated (reflection-free) JSON for everything the protocol stores in Redis.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(JobEnvelope))]
[JsonSerializable(typeof(JobError))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
public sealed partial class ProtocolJson : JsonSerializerContext
{
    public static string Serialize(JobEnvelope envelope) => JsonSerializer.Serialize(envelope, Default.JobEnvelope);
    public static JobEnvelope? DeserializeEnvelope(string json) => JsonSerializer.Deserialize(json, Default.JobEnvelope);
    public static JobEnvelope? DeserializeEnvelope(ReadOnlySpan<byte> utf8Json) => JsonSerializer.Deserialize(utf8Json, Default.JobEnvelope);
    public static string Serialize(JobError error) => JsonSerializer.Serialize(error, Default.JobError);
    public static JobError? DeserializeError(string json) => JsonSerializer.Deserialize(json, Default.JobError);
}
