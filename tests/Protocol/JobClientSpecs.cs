using System.Reflection;
using System.Text.Json;
using StackExchange.Redis;

namespace ClusterJobs.Protocol.Tests;

/// <summary>
/// The producer client against a recording stand-in for Redis: what it sends, and what it refuses before sending.
/// (Its behaviour against a real Redis is covered by the integration tests.)
/// </summary>
public class JobClientSpecs
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2025-06-01T12:00:00Z");
    private static long NowMs => Now.ToUnixTimeMilliseconds();
    private static readonly int[] SomeArgs = [1, 2];

    private readonly FakeRedis _redis = FakeRedis.Create();

    private JobClient Client(JobClientOptions? options = null) =>
        new(_redis.Multiplexer, (options ?? new JobClientOptions()) with { Clock = new FixedClock(Now) });

    private static string HashTag(string key) => key[(key.IndexOf('{') + 1)..key.IndexOf('}')];

    [Fact]
    public async Task Enqueue_writes_the_job_hash_ready_set_and_scheduled_set_of_the_jobs_queue_in_one_script()
    {
        var id = await Client().EnqueueAsync("send-welcome", new { To = "ada" }, new EnqueueOptions { Queue = "emails" });

        var call = Assert.Single(_redis.Scripts);
        Assert.Equal(ProducerScripts.Enqueue, call.Script);
        Assert.Equal(["cj:{emails}:job:" + id, "cj:{emails}:ready", "cj:{emails}:scheduled", "cj:{emails}:job:" + id], call.Keys);
        Assert.All(call.Keys, key => Assert.Equal("emails", HashTag(key)));
        Assert.Equal("cj:{emails}:wake", call.Args[6]);
        Assert.Equal("cj:{emails}:events", call.Args[10]);
    }

    [Fact]
    public async Task Enqueue_returns_a_new_time_ordered_id_in_the_requested_queue()
    {
        var id = await Client().EnqueueAsync("send-welcome", SomeArgs, new EnqueueOptions { Queue = "emails" });

        Assert.StartsWith("emails:", id);
        Assert.True(JobIds.IsValid(id));
        Assert.Equal(id, _redis.Scripts[0].Args[0]);
    }

    [Fact]
    public async Task Enqueue_without_options_goes_to_the_default_queue()
    {
        var id = await Client().EnqueueAsync("ping", SomeArgs);

        Assert.Equal("default", JobIds.QueueOf(id));
        Assert.Equal("cj:{default}:ready", _redis.Scripts[0].Keys[1]);
    }

    [Fact]
    public async Task The_envelope_sent_carries_the_task_args_in_web_casing_and_the_documented_defaults()
    {
        var id = await Client().EnqueueAsync("send-welcome", new { To = "ada", Count = 2 }, new EnqueueOptions { Queue = "emails" });

        var envelope = ProtocolJson.DeserializeEnvelope(_redis.Scripts[0].Args[1])!;
        Assert.Equal(id, envelope.Id);
        Assert.Equal("send-welcome", envelope.Task);
        Assert.Equal("emails", envelope.Queue);
        Assert.Equal("""{"to":"ada","count":2}""", envelope.Args.GetRawText());
        Assert.Equal(NowMs, envelope.EnqueuedAt);
        Assert.Null(envelope.NotBefore);
        Assert.Equal(JobEnvelope.CurrentVersion, envelope.Version);
        Assert.Equal(3, envelope.MaxAttempts);
        Assert.Equal(1_000, envelope.BackoffMs);
        Assert.Equal(300_000, envelope.BackoffMaxMs);
        Assert.Equal(0, envelope.Attempt);
    }

    [Fact]
    public async Task No_args_are_sent_as_an_empty_positional_array()
    {
        await Client().EnqueueAsync("ping");

        Assert.Equal("[]", ProtocolJson.DeserializeEnvelope(_redis.Scripts[0].Args[1])!.Args.GetRawText());
    }

    [Fact]
    public async Task Every_option_is_carried_into_the_envelope()
    {
        await Client().EnqueueAsync("t", SomeArgs, new EnqueueOptions
        {
            Queue = "emails", Priority = 6, MaxAttempts = 9, Backoff = TimeSpan.FromSeconds(2), BackoffMax = TimeSpan.FromMinutes(1),
            SoftTimeout = TimeSpan.FromSeconds(5), HardTimeout = TimeSpan.FromSeconds(8), ParentId = "emails:parent",
            RootId = "reports:root", IdempotencyKey = "once", JobIdSuffix = "order-42",
        });

        var e = ProtocolJson.DeserializeEnvelope(_redis.Scripts[0].Args[1])!;
        Assert.Equal("emails:order-42", e.Id);
        Assert.Equal(6, e.Priority);
        Assert.Equal(9, e.MaxAttempts);
        Assert.Equal(2_000, e.BackoffMs);
        Assert.Equal(60_000, e.BackoffMaxMs);
        Assert.Equal(5_000, e.SoftTimeoutMs);
        Assert.Equal(8_000, e.HardTimeoutMs);
        Assert.Equal("emails:parent", e.ParentId);
        Assert.Equal("reports:root", e.RootId);
        Assert.Equal("once", e.IdempotencyKey);
    }

    [Fact]
    public async Task A_child_job_without_an_explicit_root_takes_its_parent_as_root()
    {
        await Client().EnqueueAsync("t", SomeArgs, new EnqueueOptions { ParentId = "default:parent" });

        Assert.Equal("default:parent", ProtocolJson.DeserializeEnvelope(_redis.Scripts[0].Args[1])!.RootId);
    }

    [Fact]
    public async Task The_ready_score_sent_ranks_the_job_by_its_priority_then_its_enqueue_time()
    {
        await Client().EnqueueAsync("t", SomeArgs, new EnqueueOptions { Priority = 4 });

        Assert.Equal(JobIds.ReadyScore(4, NowMs).ToString("R"), double.Parse(_redis.Scripts[0].Args[3]).ToString("R"));
        Assert.Equal(NowMs.ToString(), _redis.Scripts[0].Args[2]);
    }

    [Fact]
    public async Task A_job_with_no_delay_is_sent_with_not_before_0_so_it_is_ready_at_once()
    {
        await Client().EnqueueAsync("t", SomeArgs);

        Assert.Equal("0", _redis.Scripts[0].Args[4]);
    }

    [Fact]
    public async Task A_countdown_makes_the_job_not_start_before_now_plus_the_countdown()
    {
        await Client().EnqueueAsync("t", SomeArgs, new EnqueueOptions { Countdown = TimeSpan.FromSeconds(30) });

        Assert.Equal((NowMs + 30_000).ToString(), _redis.Scripts[0].Args[4]);
        Assert.Equal(NowMs + 30_000, ProtocolJson.DeserializeEnvelope(_redis.Scripts[0].Args[1])!.NotBefore);
    }

    [Fact]
    public async Task RunAt_makes_the_job_not_start_before_that_moment()
    {
        var at = Now.AddHours(2);

        await Client().EnqueueAsync("t", SomeArgs, new EnqueueOptions { RunAt = at });

        Assert.Equal(at.ToUnixTimeMilliseconds().ToString(), _redis.Scripts[0].Args[4]);
    }

    [Fact]
    public async Task An_idempotency_key_is_checked_under_the_queues_idem_key_for_the_configured_ttl()
    {
        await Client(new JobClientOptions { IdempotencyTtl = TimeSpan.FromHours(2) })
            .EnqueueAsync("t", SomeArgs, new EnqueueOptions { Queue = "emails", IdempotencyKey = "welcome-ada" });

        var call = _redis.Scripts[0];
        Assert.Equal("cj:{emails}:idem:welcome-ada", call.Keys[3]);
        Assert.Equal("1", call.Args[7]);
        Assert.Equal("7200000", call.Args[5]);
    }

    [Fact]
    public async Task Without_an_idempotency_key_the_script_is_told_there_is_none()
    {
        await Client().EnqueueAsync("t", SomeArgs);

        Assert.Equal("0", _redis.Scripts[0].Args[7]);
    }

    [Fact]
    public async Task When_the_idempotency_key_already_has_a_job_that_jobs_id_is_returned()
    {
        _redis.EnqueueReply = _ => RedisResult.Create([RedisResult.Create(0), RedisResult.Create((RedisValue)"emails:first")]);

        var id = await Client().EnqueueAsync("t", SomeArgs, new EnqueueOptions { Queue = "emails", IdempotencyKey = "k" });

        Assert.Equal("emails:first", id);
    }

    [Fact]
    public async Task A_custom_key_prefix_is_used_for_every_key_sent()
    {
        await Client(new JobClientOptions { KeyPrefix = "myapp" }).EnqueueAsync("t", SomeArgs, new EnqueueOptions { Queue = "emails" });

        Assert.All(_redis.Scripts[0].Keys, key => Assert.StartsWith("myapp:{emails}:", key));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public async Task An_empty_task_name_is_rejected_before_anything_is_sent(string task)
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Client().EnqueueAsync(task));

        Assert.Equal("task", ex.ParamName);
        Assert.Empty(_redis.Scripts);
    }

    [Fact]
    public async Task Invalid_options_are_rejected_before_anything_is_sent()
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Client().EnqueueAsync("t", SomeArgs, new EnqueueOptions { Priority = 12 }));

        Assert.Equal(nameof(EnqueueOptions.Priority), ex.ParamName);
        Assert.Empty(_redis.Scripts);
    }

    [Fact]
    public async Task A_payload_over_the_cap_is_rejected_with_its_size_and_the_cap_before_anything_is_sent()
    {
        var client = Client(new JobClientOptions { MaxPayloadBytes = 1_024 });

        var ex = await Assert.ThrowsAsync<PayloadTooLargeException>(() => client.EnqueueAsync("t", new { Blob = new string('x', 2_000) }));

        Assert.Equal(1_024, ex.Limit);
        Assert.True(ex.Size > 2_000);
        Assert.Empty(_redis.Scripts);
    }

    [Fact]
    public async Task A_payload_just_under_the_cap_is_sent()
    {
        await Client(new JobClientOptions { MaxPayloadBytes = 4_096 }).EnqueueAsync("t", new { Blob = new string('x', 2_000) });

        Assert.Single(_redis.Scripts);
    }

    [Fact]
    public async Task A_ready_made_envelope_whose_id_names_another_queue_is_rejected_before_anything_is_sent()
    {
        var envelope = new JobEnvelope
        {
            Id = "reports:1", Task = "t", Queue = "emails", Args = JsonDocument.Parse("[]").RootElement, EnqueuedAt = NowMs,
        };

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Client().EnqueueAsync(envelope));

        Assert.Contains("does not belong to queue 'emails'", ex.Message);
        Assert.Empty(_redis.Scripts);
    }

    [Fact]
    public async Task Get_reads_the_job_hash_under_the_jobs_queue_and_returns_null_when_there_is_none()
    {
        var info = await Client().GetAsync("emails:missing");

        Assert.Null(info);
        Assert.Equal(["cj:{emails}:job:emails:missing"], _redis.HashReads);
    }

    [Fact]
    public async Task Get_returns_the_job_as_read_from_its_hash()
    {
        _redis.Hash = [new HashEntry("state", "succeeded"), new HashEntry("result", "42"), new HashEntry("attempts", "1")];

        var info = await Client().GetAsync("emails:1");

        Assert.Equal(JobState.Succeeded, info!.State);
        Assert.Equal(42, info.ResultAs<int>());
        Assert.Equal(1, info.Attempts);
    }

    [Fact]
    public async Task Cancel_sends_the_cancel_script_with_the_jobs_queue_keys_and_the_record_ttl()
    {
        await Client(new JobClientOptions { RecordTtl = TimeSpan.FromMinutes(10) }).CancelAsync("emails:1");

        var call = Assert.Single(_redis.Scripts);
        Assert.Equal(ProducerScripts.Cancel, call.Script);
        Assert.Equal(["cj:{emails}:job:emails:1", "cj:{emails}:ready", "cj:{emails}:scheduled"], call.Keys);
        Assert.Equal(["emails:1", NowMs.ToString(), "600000", "cj:{emails}:events"], call.Args);
    }

    [Fact]
    public async Task Cancel_returns_true_when_the_script_answers_1_because_this_call_cancelled_the_job()
    {
        _redis.CancelReply = RedisResult.Create(1, ResultType.Integer);

        Assert.True(await Client().CancelAsync("emails:1"));
    }

    [Theory]
    [InlineData("running")]
    [InlineData("succeeded")]
    [InlineData("dead_lettered")]
    [InlineData("cancelled")]
    public async Task Cancel_returns_false_when_the_script_answers_a_state_because_the_job_was_past_cancelling(string state)
    {
        _redis.CancelReply = RedisResult.Create((RedisValue)state, ResultType.BulkString);

        Assert.False(await Client().CancelAsync("emails:1"));
    }

    [Fact]
    public async Task Cancel_of_a_job_that_does_not_exist_throws_KeyNotFoundException()
    {
        _redis.CancelReply = RedisResult.Create(RedisValue.Null);

        var ex = await Assert.ThrowsAsync<KeyNotFoundException>(() => Client().CancelAsync("emails:ghost"));
        Assert.Contains("emails:ghost", ex.Message);
    }

    [Fact]
    public void The_client_exposes_the_key_layout_it_writes_with() =>
        Assert.Equal("myapp", Client(new JobClientOptions { KeyPrefix = "myapp" }).Keys.Prefix);

    [Fact]
    public async Task Disposing_a_client_that_was_handed_a_connection_leaves_the_connection_open()
    {
        await Client().DisposeAsync();

        Assert.False(_redis.Disposed);
    }
}

internal sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}

/// <summary>Records the scripts and hash reads a <see cref="JobClient"/> sends; every other Redis call fails the test.</summary>
public sealed class FakeRedis
{
    public sealed record ScriptCall(string Script, string[] Keys, string[] Args);

    public List<ScriptCall> Scripts { get; } = [];
    public List<string> HashReads { get; } = [];
    public HashEntry[] Hash { get; set; } = [];
    public bool Disposed { get; private set; }
    public Func<ScriptCall, RedisResult> EnqueueReply { get; set; } =
        call => RedisResult.Create([RedisResult.Create(1), RedisResult.Create((RedisValue)call.Args[0])]);
    public RedisResult CancelReply { get; set; } = RedisResult.Create(1, ResultType.Integer);

    public IConnectionMultiplexer Multiplexer { get; private set; } = null!;

    public static FakeRedis Create()
    {
        var fake = new FakeRedis();
        var db = DispatchProxy.Create<IDatabase, Proxy>();
        ((Proxy)(object)db).Handler = (method, args) => fake.OnDatabase(method, args);
        var mux = DispatchProxy.Create<IConnectionMultiplexer, Proxy>();
        ((Proxy)(object)mux).Handler = (method, args) => method.Name switch
        {
            nameof(IConnectionMultiplexer.GetDatabase) => db,
            "add_ConnectionRestored" or "remove_ConnectionRestored" => null,
            nameof(IConnectionMultiplexer.Dispose) => fake.Disposed = true,
            nameof(IConnectionMultiplexer.DisposeAsync) => Dispose(fake),
            _ => throw new NotSupportedException($"The fake Redis does not do {method.Name}."),
        };
        fake.Multiplexer = mux;
        return fake;
    }

    private static ValueTask Dispose(FakeRedis fake)
    {
        fake.Disposed = true;
        return ValueTask.CompletedTask;
    }

    private object? OnDatabase(MethodInfo method, object?[] args)
    {
        switch (method.Name)
        {
            case nameof(IDatabase.ScriptEvaluateAsync) when args[0] is string script:
                var call = new ScriptCall(script,
                    ((RedisKey[]?)args[1] ?? []).Select(k => k.ToString()).ToArray(),
                    ((RedisValue[]?)args[2] ?? []).Select(v => v.ToString()).ToArray());
                Scripts.Add(call);
                return Task.FromResult(script == ProducerScripts.Cancel ? CancelReply : EnqueueReply(call));
            case nameof(IDatabase.HashGetAllAsync):
                HashReads.Add(((RedisKey)args[0]!).ToString());
                return Task.FromResult(Hash);
            default:
                throw new NotSupportedException($"The fake Redis does not do {method.Name}.");
        }
    }

    public class Proxy : DispatchProxy
    {
        public Func<MethodInfo, object?[], object?> Handler { get; set; } = null!;
        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) => Handler(targetMethod!, args ?? []);
    }
}
