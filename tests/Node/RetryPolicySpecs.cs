using ClusterJobs.Node.Tasks;

namespace ClusterJobs.Node.Tests;

public sealed class RetryPolicySpecs
{
    [Fact]
    public void Exponential_delays_double_per_attempt_up_to_the_cap()
    {
        var policy = new RetryPolicy { DefaultRetryDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(5), Jitter = 0 };

        Assert.Equal([1, 2, 4, 5, 5], Enumerable.Range(1, 5).Select(attempt => policy.DelayAfter(attempt).TotalSeconds));
    }

    [Fact]
    public void A_first_delay_over_the_cap_is_the_cap()
    {
        var policy = new RetryPolicy { DefaultRetryDelay = TimeSpan.FromMinutes(10), MaxDelay = TimeSpan.FromMinutes(5), Jitter = 0 };

        Assert.Equal(TimeSpan.FromMinutes(10), policy.DelayAfter(3)); // docs/supervision.md: the larger of the two caps
    }

    [Fact]
    public void The_jitter_takes_a_random_share_off_each_delay()
    {
        var policy = new RetryPolicy { DefaultRetryDelay = TimeSpan.FromSeconds(10), Backoff = BackoffKind.Constant, Jitter = 0.5 };
        var random = new Random(7);

        Assert.All(Enumerable.Range(0, 200).Select(_ => policy.DelayAfter(1, random).TotalSeconds), s => Assert.InRange(s, 5, 10));
    }

    [Fact]
    public void No_delay_is_longer_than_the_longest_so_a_retry_always_has_a_date()
    {
        // Registered by a hand that meant "a long time": its due time must still be a DateTimeOffset.
        var policy = new RetryPolicy { DefaultRetryDelay = TimeSpan.FromDays(100_000), MaxDelay = TimeSpan.MaxValue, Jitter = 0 };

        Assert.Equal(RetryPolicy.LongestDelay, policy.DelayAfter(30));
        Assert.True(DateTimeOffset.UtcNow.Add(policy.DelayAfter(1)).Year < 9999);
    }
}
