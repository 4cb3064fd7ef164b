using System.Text.Json;
using StackExchange.Redis;

namespace ClusterJobs.Protocol.Tests;

public class JobRecordSpecs
{
    private const string Id = "emails:0192f1c2a3b47c8d9e0f112233445566";

    private static readonly JobEnvelope Envelope = new()
    {
        Id = Id, Task = "send-welcome", Queue = "emails", Args = JsonDocument.Parse("""{"to":"ada"}""").RootElement,
        MaxAttempts = 7, EnqueuedAt = 1_700_000_000_000,
    };

    private static readonly JobError Error = new()
    {
        Type = "System.TimeoutException", Message = "SMTP did not answer", StackTrace = "at Send()", Node = "node-a",
        Attempt = 2, At = 1_700_000_000_900,
    };

    private static HashEntry[] Hash(params (string Name, string Value)[] fields) =>
        fields.Select(f => new HashEntry(f.Name, f.Value)).ToArray();

    [Fact]
    public void Every_field_of_the_job_hash_is_read_into_the_job_info()
    {
        var info = JobRecord.Read(Id, Hash(
            (JobHashFields.Envelope, ProtocolJson.Serialize(Envelope)),
            (JobHashFields.State, "retrying"),
            (JobHashFields.Task, "send-welcome"),
            (JobHashFields.Attempts, "2"),
            (JobHashFields.MaxAttempts, "5"),
            (JobHashFields.ReadyScore, "90001700000000000"),
            (JobHashFields.EnqueuedAt, "1700000000000"),
            (JobHashFields.StartedAt, "1700000000500"),
            (JobHashFields.FinishedAt, "1700000000900"),
            (JobHashFields.Node, "node-a"),
            (JobHashFields.Result, """{"sent":true,"count":3}"""),
            (JobHashFields.Error, ProtocolJson.Serialize(Error))));

        Assert.Equal(Id, info.Id);
        Assert.Equal("emails", info.Queue);
        Assert.Equal(JobState.Retrying, info.State);
        Assert.Equal("send-welcome", info.Task);
        Assert.Equal(2, info.Attempts);
        Assert.Equal(5, info.MaxAttempts);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), info.EnqueuedAt);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_500), info.StartedAt);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_900), info.FinishedAt);
        Assert.Equal("node-a", info.Node);
        Assert.True(info.Result!.Value.GetProperty("sent").GetBoolean());
        Assert.Equal(3, info.Result.Value.GetProperty("count").GetInt32());
        Assert.Equal(Error, info.Error);
        Assert.Equal(Envelope with { Args = default }, info.Envelope! with { Args = default });
        Assert.Equal("ada", info.Envelope!.Args.GetProperty("to").GetString());
    }

    [Theory]
    [MemberData(nameof(JobStatesSpecs.WireNames), MemberType = typeof(JobStatesSpecs))]
    public void The_state_field_is_read_by_its_wire_name(JobState state, string wire) =>
        Assert.Equal(state, JobRecord.Read(Id, Hash((JobHashFields.State, wire))).State);

    [Theory]
    [InlineData("42", JsonValueKind.Number)]
    [InlineData("\"done\"", JsonValueKind.String)]
    [InlineData("[1,2]", JsonValueKind.Array)]
    [InlineData("null", JsonValueKind.Null)]
    public void The_result_is_read_as_json_of_any_kind(string result, JsonValueKind kind)
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.State, "succeeded"), (JobHashFields.Result, result)));

        Assert.Equal(kind, info.Result!.Value.ValueKind);
        Assert.Equal(result, info.Result.Value.GetRawText());
    }

    [Fact]
    public void The_result_can_be_read_as_a_dotnet_type_with_web_naming()
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.Result, """{"sent":true,"count":3}""")));

        Assert.Equal(new Receipt(true, 3), info.ResultAs<Receipt>());
    }

    private sealed record Receipt(bool Sent, int Count);

    [Fact]
    public void A_job_without_a_result_or_error_has_neither()
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.State, "queued")));

        Assert.Null(info.Result);
        Assert.Null(info.Error);
        Assert.Null(info.ResultAs<Receipt>());
    }

    [Theory]
    [InlineData("boom")]
    [InlineData("{\"type\":")]
    [InlineData("{}")]
    public void An_error_that_is_not_a_job_error_json_becomes_an_Unknown_error_carrying_the_raw_text(string raw)
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.State, "failed"), (JobHashFields.Error, raw)));

        Assert.Equal("Unknown", info.Error!.Type);
        Assert.Equal(raw, info.Error.Message);
    }

    [Fact]
    public void Timestamps_missing_from_the_hash_are_null()
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.State, "queued")));

        Assert.Null(info.EnqueuedAt);
        Assert.Null(info.StartedAt);
        Assert.Null(info.FinishedAt);
        Assert.Null(info.Node);
    }

    [Fact]
    public void A_job_not_yet_started_has_an_enqueue_time_but_no_start_or_finish_time()
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.State, "queued"), (JobHashFields.EnqueuedAt, "1700000000000")));

        Assert.NotNull(info.EnqueuedAt);
        Assert.Null(info.StartedAt);
        Assert.Null(info.FinishedAt);
    }

    [Fact]
    public void Without_task_or_max_attempts_fields_they_come_from_the_envelope()
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.Envelope, ProtocolJson.Serialize(Envelope)), (JobHashFields.State, "queued")));

        Assert.Equal("send-welcome", info.Task);
        Assert.Equal(7, info.MaxAttempts);
        Assert.Equal(0, info.Attempts);
    }

    [Fact]
    public void Without_a_max_attempts_field_or_an_envelope_override_the_attempts_are_the_tasks_policy_so_unknown_here() =>
        Assert.Null(JobRecord.Read(Id, Hash((JobHashFields.State, "queued"), (JobHashFields.MaxAttempts, ""))).MaxAttempts);

    [Fact]
    public void A_malformed_envelope_leaves_the_envelope_null_instead_of_failing_the_read()
    {
        var info = JobRecord.Read(Id, Hash((JobHashFields.Envelope, "{not json"), (JobHashFields.State, "failed"), (JobHashFields.Task, "t")));

        Assert.Null(info.Envelope);
        Assert.Equal(JobState.Failed, info.State);
        Assert.Equal("t", info.Task);
    }
}
