namespace ClusterJobs.Protocol.Tests;

public class RedisKeysSpecs
{
    /// <summary>Redis Cluster's hash tag: what lies between the first '{' and the first '}' after it.</summary>
    private static string HashTag(string key)
    {
        var open = key.IndexOf('{');
        Assert.True(open >= 0, $"'{key}' has no hash tag");
        var close = key.IndexOf('}', open + 1);
        Assert.True(close > open + 1, $"'{key}' has no hash tag");
        return key[(open + 1)..close];
    }

    private static IEnumerable<string> EveryKeyAndChannel(QueueKeys q, string jobId, string idempotencyKey) =>
        [q.Ready, q.Scheduled, q.Leased, q.Dead, q.Job(jobId), q.Idempotency(idempotencyKey), q.WakeChannel, q.EventsChannel];

    [Theory]
    [InlineData("emails")]
    [InlineData("default")]
    [InlineData("reports.v2-eu_west")]
    public void Every_key_and_channel_of_a_queue_carries_the_queue_name_as_its_hash_tag(string queue)
    {
        var q = new RedisKeys().Queue(queue);

        Assert.All(EveryKeyAndChannel(q, JobIds.New(queue), "order-42"), key => Assert.Equal(queue, HashTag(key)));
    }

    [Fact]
    public void Braces_inside_an_idempotency_key_do_not_move_the_hash_tag()
    {
        var q = new RedisKeys().Queue("emails");

        Assert.Equal("emails", HashTag(q.Idempotency("{other}")));
        Assert.Equal("emails", HashTag(q.Idempotency("}{")));
    }

    [Fact]
    public void A_queue_has_exactly_the_documented_key_and_channel_names()
    {
        var q = new RedisKeys().Queue("emails");

        Assert.Equal("emails", q.Name);
        Assert.Equal("cj:{emails}:", q.Base);
        Assert.Equal("cj:{emails}:ready", q.Ready);
        Assert.Equal("cj:{emails}:scheduled", q.Scheduled);
        Assert.Equal("cj:{emails}:leased", q.Leased);
        Assert.Equal("cj:{emails}:dead", q.Dead);
        Assert.Equal("cj:{emails}:job:", q.JobPrefix);
        Assert.Equal("cj:{emails}:job:emails:123", q.Job("emails:123"));
        Assert.Equal("cj:{emails}:idem:welcome-ada", q.Idempotency("welcome-ada"));
        Assert.Equal("cj:{emails}:wake", q.WakeChannel);
        Assert.Equal("cj:{emails}:events", q.EventsChannel);
    }

    [Fact]
    public void The_default_prefix_is_cj()
    {
        Assert.Equal("cj", RedisKeys.DefaultPrefix);
        Assert.Equal("cj", new RedisKeys().Prefix);
    }

    [Fact]
    public void A_custom_prefix_replaces_cj_in_every_key()
    {
        var q = new RedisKeys("myapp").Queue("emails");

        Assert.Equal("myapp:{emails}:ready", q.Ready);
        Assert.Equal("myapp:{emails}:job:emails:1", q.Job("emails:1"));
        Assert.Equal("myapp:{emails}:events", q.EventsChannel);
        Assert.All(EveryKeyAndChannel(q, "emails:1", "k"), key => Assert.StartsWith("myapp:{emails}:", key));
    }

    [Theory]
    [InlineData("{cj}")]
    [InlineData("cj{")]
    [InlineData("c}j")]
    [InlineData("")]
    [InlineData("   ")]
    public void A_prefix_that_is_empty_or_holds_a_brace_is_rejected(string prefix)
    {
        var ex = Assert.Throws<ArgumentException>(() => new RedisKeys(prefix));
        Assert.Equal("prefix", ex.ParamName);
        Assert.Contains("no braces", ex.Message);
    }

    [Theory]
    [InlineData("bad queue")]
    [InlineData("{emails}")]
    [InlineData("")]
    public void Keys_are_not_made_for_an_invalid_queue_name(string queue) =>
        Assert.Throws<ArgumentException>(() => new RedisKeys().Queue(queue));

    [Theory]
    [InlineData("emails:123", "emails")]
    [InlineData("emails:a:b", "emails")]
    [InlineData("reports.v2:x", "reports.v2")]
    public void The_keys_for_a_job_are_the_keys_of_the_queue_its_id_names(string jobId, string queue)
    {
        var keys = new RedisKeys("app");
        var forJob = keys.ForJob(jobId);
        var forQueue = keys.Queue(queue);

        Assert.Equal(queue, forJob.Name);
        Assert.Equal(forQueue.Base, forJob.Base);
        Assert.Equal(forQueue.Job(jobId), forJob.Job(jobId));
        Assert.Equal(forQueue.EventsChannel, forJob.EventsChannel);
        Assert.Equal($"app:{{{queue}}}:job:{jobId}", forJob.Job(jobId));
    }

    [Theory]
    [InlineData("no-colon")]
    [InlineData(":x")]
    [InlineData("emails:")]
    public void There_are_no_keys_for_an_invalid_job_id(string jobId)
    {
        var ex = Assert.Throws<ArgumentException>(() => new RedisKeys().ForJob(jobId));
        Assert.Equal("jobId", ex.ParamName);
    }
}
