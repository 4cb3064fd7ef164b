namespace ClusterJobs.Protocol.Tests;

public class EnqueueOptionsSpecs
{
    private static ArgumentException Invalid(EnqueueOptions options) =>
        Assert.Throws<ArgumentException>(options.Validate);

    [Fact]
    public void The_defaults_are_valid_and_target_the_default_queue_at_priority_0()
    {
        var options = new EnqueueOptions();

        options.Validate();
        Assert.Equal("default", options.Queue);
        Assert.Equal(0, options.Priority);
    }

    [Fact]
    public void Every_option_set_to_a_sensible_value_is_valid() =>
        new EnqueueOptions
        {
            Queue = "emails", Priority = 9, Countdown = TimeSpan.FromSeconds(30), MaxAttempts = 1,
            Backoff = TimeSpan.Zero, BackoffMax = TimeSpan.FromMinutes(5), SoftTimeout = TimeSpan.FromSeconds(10),
            HardTimeout = TimeSpan.FromSeconds(10), IdempotencyKey = new string('k', 200), JobIdSuffix = "order-42:retry.1",
            ParentId = "emails:parent", RootId = "reports:root",
        }.Validate();

    [Fact]
    public void RunAt_alone_is_valid() => new EnqueueOptions { RunAt = DateTimeOffset.UtcNow.AddMinutes(1) }.Validate();

    [Fact]
    public void A_zero_countdown_is_valid() => new EnqueueOptions { Countdown = TimeSpan.Zero }.Validate();

    [Theory]
    [InlineData(-1)]
    [InlineData(10)]
    [InlineData(int.MaxValue)]
    public void A_priority_outside_0_to_9_is_rejected_naming_Priority(int priority)
    {
        var ex = Invalid(new EnqueueOptions { Priority = priority });
        Assert.Equal(nameof(EnqueueOptions.Priority), ex.ParamName);
        Assert.Contains("between 0 and 9", ex.Message);
    }

    [Fact]
    public void A_negative_countdown_is_rejected_naming_Countdown() =>
        Assert.Equal(nameof(EnqueueOptions.Countdown),
            Invalid(new EnqueueOptions { Countdown = TimeSpan.FromMilliseconds(-1) }).ParamName);

    [Fact]
    public void Giving_both_a_countdown_and_RunAt_is_rejected_naming_RunAt()
    {
        var ex = Invalid(new EnqueueOptions { Countdown = TimeSpan.FromSeconds(1), RunAt = DateTimeOffset.UtcNow });
        Assert.Equal(nameof(EnqueueOptions.RunAt), ex.ParamName);
        Assert.Contains("not both", ex.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Fewer_than_one_attempt_is_rejected_naming_MaxAttempts(int attempts) =>
        Assert.Equal(nameof(EnqueueOptions.MaxAttempts), Invalid(new EnqueueOptions { MaxAttempts = attempts }).ParamName);

    [Fact]
    public void A_negative_backoff_is_rejected_naming_Backoff() =>
        Assert.Equal(nameof(EnqueueOptions.Backoff),
            Invalid(new EnqueueOptions { Backoff = TimeSpan.FromMilliseconds(-1) }).ParamName);

    [Fact]
    public void A_negative_maximum_backoff_is_rejected_naming_BackoffMax() =>
        Assert.Equal(nameof(EnqueueOptions.BackoffMax),
            Invalid(new EnqueueOptions { BackoffMax = TimeSpan.FromMilliseconds(-1) }).ParamName);

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void A_soft_timeout_that_is_not_positive_is_rejected_naming_SoftTimeout(int ms)
    {
        var ex = Invalid(new EnqueueOptions { SoftTimeout = TimeSpan.FromMilliseconds(ms) });
        Assert.Equal(nameof(EnqueueOptions.SoftTimeout), ex.ParamName);
        Assert.Contains("positive", ex.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void A_hard_timeout_that_is_not_positive_is_rejected_naming_HardTimeout(int ms) =>
        Assert.Equal(nameof(EnqueueOptions.HardTimeout),
            Invalid(new EnqueueOptions { HardTimeout = TimeSpan.FromMilliseconds(ms) }).ParamName);

    [Fact]
    public void A_time_limit_under_a_millisecond_is_rejected_it_would_be_sent_as_0() =>
        Assert.Contains("at least 1 ms", Invalid(new EnqueueOptions { HardTimeout = TimeSpan.FromTicks(5_000) }).Message);

    [Fact]
    public void A_time_limit_past_30_days_is_rejected_naming_it_and_30_days_is_valid()
    {
        var ex = Invalid(new EnqueueOptions { SoftTimeout = TimeSpan.FromDays(60) });
        Assert.Equal(nameof(EnqueueOptions.SoftTimeout), ex.ParamName);
        Assert.Contains("at most 30 days", ex.Message);
        Assert.Equal(nameof(EnqueueOptions.HardTimeout), Invalid(new EnqueueOptions { HardTimeout = TimeSpan.MaxValue }).ParamName);
        new EnqueueOptions { SoftTimeout = TimeSpan.FromDays(30), HardTimeout = TimeSpan.FromDays(30) }.Validate();
    }

    [Fact]
    public void A_soft_timeout_longer_than_the_hard_timeout_is_rejected_naming_SoftTimeout() =>
        Assert.Equal(nameof(EnqueueOptions.SoftTimeout),
            Invalid(new EnqueueOptions { SoftTimeout = TimeSpan.FromSeconds(11), HardTimeout = TimeSpan.FromSeconds(10) }).ParamName);

    [Fact]
    public void A_soft_timeout_equal_to_the_hard_timeout_is_valid() =>
        new EnqueueOptions { SoftTimeout = TimeSpan.FromSeconds(10), HardTimeout = TimeSpan.FromSeconds(10) }.Validate();

    [Theory]
    [InlineData(0)]
    [InlineData(201)]
    [InlineData(5_000)]
    public void An_idempotency_key_that_is_empty_or_over_200_characters_is_rejected_naming_IdempotencyKey(int length)
    {
        var ex = Invalid(new EnqueueOptions { IdempotencyKey = new string('k', length) });
        Assert.Equal(nameof(EnqueueOptions.IdempotencyKey), ex.ParamName);
        Assert.Contains("1-200", ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("{tag}")]
    [InlineData("slash/not-allowed")]
    public void A_job_id_suffix_outside_the_id_alphabet_is_rejected_naming_JobIdSuffix(string suffix)
    {
        var ex = Invalid(new EnqueueOptions { JobIdSuffix = suffix });
        Assert.Equal(nameof(EnqueueOptions.JobIdSuffix), ex.ParamName);
        Assert.Contains($"'{suffix}'", ex.Message);
    }

    [Fact]
    public void A_job_id_suffix_over_200_characters_is_rejected_naming_JobIdSuffix() =>
        Assert.Equal(nameof(EnqueueOptions.JobIdSuffix),
            Invalid(new EnqueueOptions { JobIdSuffix = new string('s', 201) }).ParamName);

    [Theory]
    [InlineData("no-queue-part")]
    [InlineData(":x")]
    [InlineData("emails:")]
    [InlineData("bad queue:1")]
    public void A_parent_id_that_is_not_a_job_id_is_rejected_naming_ParentId(string parentId)
    {
        var ex = Invalid(new EnqueueOptions { ParentId = parentId });
        Assert.Equal(nameof(EnqueueOptions.ParentId), ex.ParamName);
        Assert.Contains("not a job id", ex.Message);
    }

    [Fact]
    public void A_root_id_that_is_not_a_job_id_is_rejected_naming_RootId() =>
        Assert.Equal(nameof(EnqueueOptions.RootId), Invalid(new EnqueueOptions { RootId = "nope" }).ParamName);

    [Theory]
    [InlineData("bad queue")]
    [InlineData("")]
    [InlineData("{emails}")]
    public void An_invalid_queue_name_is_rejected_naming_the_queue(string queue)
    {
        var ex = Invalid(new EnqueueOptions { Queue = queue });
        Assert.Equal("queue", ex.ParamName, ignoreCase: true);
        Assert.Contains("Invalid queue name", ex.Message);
    }
}
