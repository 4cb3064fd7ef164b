using ClusterJobs.Node.Workers;

namespace ClusterJobs.Node.Tests;

public sealed class RecentCancelsSpecs
{
    private static readonly DateTime T0 = new(2026, 11, 27, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void A_cancel_is_kept_for_a_while_and_taken_once()
    {
        var cancels = new RecentCancels(TimeSpan.FromMinutes(1));
        cancels.Add("q:a", T0);
        cancels.Add("q:b", T0);

        Assert.True(cancels.Take("q:a", T0.AddSeconds(30)));
        Assert.False(cancels.Take("q:a", T0.AddSeconds(31))); // taken: a later delivery of the job runs
        Assert.False(cancels.Take("q:b", T0.AddMinutes(1))); // expired
        Assert.Equal(0, cancels.Count);
    }

    [Fact]
    public void At_most_so_many_are_kept_the_oldest_dropped_first()
    {
        var cancels = new RecentCancels(TimeSpan.FromMinutes(1), maxIds: 2);
        cancels.Add("q:a", T0);
        cancels.Add("q:b", T0.AddSeconds(1));
        cancels.Add("q:c", T0.AddSeconds(2));

        Assert.Equal(2, cancels.Count);
        Assert.False(cancels.Take("q:a", T0.AddSeconds(3)));
        Assert.True(cancels.Take("q:b", T0.AddSeconds(3)));
        Assert.True(cancels.Take("q:c", T0.AddSeconds(3)));
    }

    [Fact]
    public void A_cancel_requested_again_is_kept_from_the_later_request()
    {
        var cancels = new RecentCancels(TimeSpan.FromMinutes(1));
        cancels.Add("q:a", T0);
        cancels.Add("q:a", T0.AddSeconds(50));

        Assert.True(cancels.Take("q:a", T0.AddSeconds(70)));
    }
}
