using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>Where nodes say that they run, for a seed that starts again (README, "Running a cluster").</summary>
[Collection(BrokerCollection.Name)]
public sealed class ClusterMemberRegistrySpecs(BrokerFixture brokers)
{
    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task Members_heard_of_lately_are_running_most_recent_first_and_one_silent_too_long_is_dropped_by_the_next_beat(BrokerKind kind)
    {
        await using var redis = await RedisConnection.ConnectAsync(brokers.Url(kind));
        var db = redis.GetDatabase();
        var members = (RedisKey)new RedisKeys(BrokerFixture.NewPrefix()).ClusterMembers("clusterjobs");
        var now = DateTimeOffset.UtcNow;
        await ClusterMemberRegistry.BeatAsync(db, members, "akka.tcp://clusterjobs@10.0.0.1:4055", now - TimeSpan.FromSeconds(60)); // died a minute ago
        await ClusterMemberRegistry.BeatAsync(db, members, "akka.tcp://clusterjobs@10.0.0.2:4055", now - TimeSpan.FromSeconds(2));
        Assert.Equal(1, await db.HashLengthAsync(members)); // the second beat dropped the first, silent past Stale

        await ClusterMemberRegistry.BeatAsync(db, members, "akka.tcp://clusterjobs@10.0.0.3:4055", now);
        Assert.Equal(["akka.tcp://clusterjobs@10.0.0.3:4055", "akka.tcp://clusterjobs@10.0.0.2:4055"],
            await ClusterMemberRegistry.RunningAsync(db, members, now));
        Assert.Equal(["akka.tcp://clusterjobs@10.0.0.3:4055"], await ClusterMemberRegistry.RunningAsync(db, members, now + ClusterMemberRegistry.Stale - TimeSpan.FromSeconds(1)));

        ClusterMemberRegistry.Leave(db, members, "akka.tcp://clusterjobs@10.0.0.3:4055");
        Assert.Equal(["akka.tcp://clusterjobs@10.0.0.2:4055"], await ClusterMemberRegistry.RunningAsync(db, members, now));
        Assert.True(await db.KeyTimeToLiveAsync(members) > TimeSpan.Zero); // the hash of a cluster long gone expires
    }
}
