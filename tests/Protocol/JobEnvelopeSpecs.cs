using System.Text.Json;

namespace ClusterJobs.Protocol.Tests;

/// <summary>The envelope's JSON is the wire format other producers (Python, Go, ...) write: docs/protocol.md.</summary>
public class JobEnvelopeSpecs
{
    private static JobEnvelope FullyPopulated() => new()
    {
        Version = 1,
        Id = "emails:0192f1c2a3b47c8d9e0f112233445566",
        Task = "send-welcome",
        Queue = "emails",
        Args = JsonDocument.Parse("""{"to":"ada@example.com","count":2}""").RootElement,
        Priority = 7,
        EnqueuedAt = 1_700_000_000_123,
        NotBefore = 1_700_000_060_000,
        MaxAttempts = 5,
        BackoffMs = 2_500,
        BackoffMaxMs = 60_000,
        SoftTimeoutMs = 10_000,
        HardTimeoutMs = 15_000,
        ParentId = "emails:parent",
        RootId = "emails:root",
        IdempotencyKey = "welcome-ada",
        Attempt = 2,
    };

    private static JsonElement Wire(JobEnvelope envelope) => JsonDocument.Parse(ProtocolJson.Serialize(envelope)).RootElement;

    [Fact]
    public void A_fully_populated_envelope_is_written_with_exactly_the_documented_wire_field_names()
    {
        var names = Wire(FullyPopulated()).EnumerateObject().Select(p => p.Name).ToHashSet();

        string[] documented =
        [
            "v", "id", "task", "queue", "args", "priority", "enqueued_at", "not_before", "max_attempts", "backoff_ms",
            "backoff_max_ms", "soft_timeout_ms", "hard_timeout_ms", "parent_id", "root_id", "idempotency_key", "attempt",
        ];
        Assert.Equal(documented.Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Each_wire_field_carries_the_value_of_its_property()
    {
        var json = Wire(FullyPopulated());

        Assert.Equal(1, json.GetProperty("v").GetInt32());
        Assert.Equal("emails:0192f1c2a3b47c8d9e0f112233445566", json.GetProperty("id").GetString());
        Assert.Equal("send-welcome", json.GetProperty("task").GetString());
        Assert.Equal("emails", json.GetProperty("queue").GetString());
        Assert.Equal("ada@example.com", json.GetProperty("args").GetProperty("to").GetString());
        Assert.Equal(7, json.GetProperty("priority").GetInt32());
        Assert.Equal(1_700_000_000_123, json.GetProperty("enqueued_at").GetInt64());
        Assert.Equal(1_700_000_060_000, json.GetProperty("not_before").GetInt64());
        Assert.Equal(5, json.GetProperty("max_attempts").GetInt32());
        Assert.Equal(2_500, json.GetProperty("backoff_ms").GetInt64());
        Assert.Equal(60_000, json.GetProperty("backoff_max_ms").GetInt64());
        Assert.Equal(10_000, json.GetProperty("soft_timeout_ms").GetInt64());
        Assert.Equal(15_000, json.GetProperty("hard_timeout_ms").GetInt64());
        Assert.Equal("emails:parent", json.GetProperty("parent_id").GetString());
        Assert.Equal("emails:root", json.GetProperty("root_id").GetString());
        Assert.Equal("welcome-ada", json.GetProperty("idempotency_key").GetString());
        Assert.Equal(2, json.GetProperty("attempt").GetInt32());
    }

    [Fact]
    public void An_envelope_survives_a_round_trip_through_its_json_unchanged()
    {
        var original = FullyPopulated();

        var back = ProtocolJson.DeserializeEnvelope(ProtocolJson.Serialize(original))!;

        Assert.Equal(original with { Args = default }, back with { Args = default });
        Assert.Equal(original.Args.GetRawText(), back.Args.GetRawText());
    }

    [Fact]
    public void Positional_array_args_survive_a_round_trip_as_an_array()
    {
        var original = FullyPopulated() with { Args = JsonDocument.Parse("""[1,"two",{"three":3}]""").RootElement };

        var back = ProtocolJson.DeserializeEnvelope(ProtocolJson.Serialize(original))!;

        Assert.Equal(JsonValueKind.Array, back.Args.ValueKind);
        Assert.Equal("""[1,"two",{"three":3}]""", back.Args.GetRawText());
    }

    [Fact]
    public void Null_optional_fields_are_left_out_of_the_json_rather_than_written_as_null()
    {
        var envelope = FullyPopulated() with
        {
            NotBefore = null, SoftTimeoutMs = null, HardTimeoutMs = null, ParentId = null, RootId = null, IdempotencyKey = null,
        };

        var json = ProtocolJson.Serialize(envelope);
        var names = JsonDocument.Parse(json).RootElement.EnumerateObject().Select(p => p.Name).ToList();

        Assert.DoesNotContain("null", json);
        foreach (var omitted in new[] { "not_before", "soft_timeout_ms", "hard_timeout_ms", "parent_id", "root_id", "idempotency_key" })
            Assert.DoesNotContain(omitted, names);
        Assert.Contains("max_attempts", names);
    }

    /// <summary>docs/protocol.md: v is 1 if missing.</summary>
    [Theory]
    [InlineData("v", 1)]
    public void A_field_left_out_of_the_json_reads_as_its_documented_default(string field, long expected)
    {
        var json = JsonDocument.Parse(ProtocolJson.Serialize(FullyPopulated())).RootElement;
        var without = "{" + string.Join(",", json.EnumerateObject().Where(p => p.Name != field).Select(p => p.ToString())) + "}";

        var envelope = ProtocolJson.DeserializeEnvelope(without)!;

        var written = JsonDocument.Parse(ProtocolJson.Serialize(envelope)).RootElement;
        Assert.Equal(expected, written.GetProperty(field).GetInt64());
    }

    [Fact]
    public void Retry_fields_left_out_mean_the_tasks_own_retry_policy_applies()
    {
        var envelope = ProtocolJson.DeserializeEnvelope("""{"id":"emails:1","task":"send","queue":"emails","args":[]}""")!;

        Assert.Equal(1, envelope.Version);
        Assert.Null(envelope.MaxAttempts);
        Assert.Null(envelope.BackoffMs);
        Assert.Null(envelope.BackoffMaxMs);
        Assert.DoesNotContain("max_attempts", ProtocolJson.Serialize(envelope));
    }

    [Fact]
    public void An_envelope_missing_the_optional_fields_runs_at_once_at_the_lowest_priority_with_no_timeouts_or_lineage()
    {
        var envelope = ProtocolJson.DeserializeEnvelope("""{"id":"emails:1","task":"send","queue":"emails","args":[]}""")!;

        Assert.Equal(0, envelope.Priority);
        Assert.Equal(0, envelope.Attempt);
        Assert.Null(envelope.NotBefore);
        Assert.Null(envelope.SoftTimeoutMs);
        Assert.Null(envelope.HardTimeoutMs);
        Assert.Null(envelope.ParentId);
        Assert.Null(envelope.RootId);
        Assert.Null(envelope.IdempotencyKey);
    }

    [Fact]
    public void Unknown_fields_from_a_newer_producer_are_ignored()
    {
        var envelope = ProtocolJson.DeserializeEnvelope(
            """{"id":"emails:1","task":"send","queue":"emails","args":{},"max_attempts":4,"shiny_new_field":{"x":1}}""")!;

        Assert.Equal("emails:1", envelope.Id);
        Assert.Equal(4, envelope.MaxAttempts);
    }

    [Theory]
    [InlineData("""{"task":"send","queue":"emails","args":[]}""")]
    [InlineData("""{"id":"emails:1","queue":"emails","args":[]}""")]
    [InlineData("""{"id":"emails:1","task":"send","args":[]}""")]
    public void An_envelope_without_its_id_task_or_queue_is_rejected_with_a_JsonException(string json) =>
        Assert.ThrowsAny<JsonException>(() => ProtocolJson.DeserializeEnvelope(json));

    [Theory]
    [InlineData("{")]
    [InlineData("not json at all")]
    [InlineData("""{"id":"emails:1","task":"send","queue":"emails","priority":"high"}""")]
    [InlineData("""{"id":"emails:1","task":"send","queue":"emails",}""")]
    [InlineData("""["emails:1","send","emails"]""")]
    [InlineData("""{"id":"emails:1","task":"send","queue":"emails","args":[],"priority":null}""")]
    [InlineData("""{"id":"emails:1","task":"send","queue":"emails","args":[],"max_attempts":"3"}""")]
    public void Malformed_envelope_json_is_rejected_with_a_JsonException(string json) =>
        Assert.ThrowsAny<JsonException>(() => ProtocolJson.DeserializeEnvelope(json));
}

public class JobErrorJsonSpecs
{
    [Fact]
    public void A_job_error_survives_a_round_trip_through_its_json_unchanged()
    {
        var error = new JobError
        {
            Type = "System.TimeoutException", Message = "SMTP did not answer", StackTrace = "at Send()\nat Run()",
            Node = "node-a", Attempt = 3, At = 1_700_000_000_999,
        };

        var back = ProtocolJson.DeserializeError(ProtocolJson.Serialize(error));

        Assert.Equal(error, back);
    }

    [Fact]
    public void A_job_error_is_written_with_the_documented_wire_field_names()
    {
        var error = new JobError { Type = "T", Message = "M", StackTrace = "S", Node = "N", Attempt = 1, At = 2 };

        var names = JsonDocument.Parse(ProtocolJson.Serialize(error)).RootElement.EnumerateObject().Select(p => p.Name);

        Assert.Equal(new[] { "at", "attempt", "message", "node", "stack", "type" }, names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_job_error_without_a_stack_or_node_leaves_them_out()
    {
        var json = ProtocolJson.Serialize(new JobError { Type = "T", Message = "M" });

        Assert.DoesNotContain("stack", json);
        Assert.DoesNotContain("node", json);
        Assert.DoesNotContain("null", json);
    }

    [Fact]
    public void Malformed_error_json_is_rejected_with_a_JsonException() =>
        Assert.ThrowsAny<JsonException>(() => ProtocolJson.DeserializeError("boom"));
}
