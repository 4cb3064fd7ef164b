using ClusterJobs.Node.WarmUp;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// The warm-up (CLUSTERJOBS_WARMUP_JOBS): throwaway jobs through the whole job path before the node joins its cluster,
/// in a private one-node cluster under keys of its own, which are gone afterwards; never a user job or handler.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class WarmUpSpecs(BrokerFixture brokers)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_node_warms_up_on_its_own_jobs_before_it_serves_and_leaves_no_key_behind(BrokerKind kind)
    {
        await using var producer = await JobClient.ConnectAsync(brokers.Url(kind), new JobClientOptions { KeyPrefix = _prefix });
        var waiting = await producer.EnqueueAsync("add", new[] { 2, 3 }); // queued before the node starts, as after a restart

        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix, o => o.WarmUpJobs = 300);

        var warmUp = node.Services.GetRequiredService<JobPathWarmUp>();
        Assert.Equal(300, warmUp.Report?.Jobs);
        var job = await producer.WaitAsync(waiting, Wait);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(5, job.ResultAs<long>());
        Assert.Contains($"{Node.Hosting.ClusterBootstrap.DefaultSystemName}@", job.Node); // the node's own system, not the warm-up's
        Assert.DoesNotContain(JobPathWarmUp.SystemName, job.Node);
        await warmUp.Cleanup.WaitAsync(Wait); // beside the node's start
        Assert.Empty(await KeysUnder(node.Redis, $"{_prefix}:warmup"));
        Assert.Equal(0, await node.Redis.GetDatabase().SortedSetLengthAsync($"{_prefix}:warmups"));
        Assert.Equal(0, await node.Redis.GetDatabase().SortedSetLengthAsync(node.Keys.Queue("default").Ready));
    }

    [Fact]
    public async Task A_finished_warm_up_deletes_its_keys_by_name_without_scanning_a_keyspace_of_user_jobs()
    {
        // A Redis of its own: the spec counts every SCAN the server runs.
        await using var redis = await RedisServer.StartBinaryAsync();
        using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redis.Url) + ",allowAdmin=true");
        var db = admin.GetDatabase();
        await Task.WhenAll(Enumerable.Range(0, 5_000).Select(i => db.StringSetAsync($"user:key:{i}", i)));
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        await server.ConfigResetStatisticsAsync();

        await using var node = await TestNode.StartAsync(redis.Url, _prefix, o => o.WarmUpJobs = 200);
        var warmUp = node.Services.GetRequiredService<JobPathWarmUp>();
        await warmUp.Cleanup.WaitAsync(Wait);

        var stats = (await server.InfoAsync("commandstats")).SelectMany(g => g).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.False(stats.ContainsKey("cmdstat_scan"), $"the warm-up scanned the keyspace: {stats.GetValueOrDefault("cmdstat_scan")}");
        Assert.Equal(200, warmUp.Report?.Jobs);
        // (the spec's own scans, after the count)
        Assert.Empty(await KeysUnder(admin, $"{_prefix}:warmup"));
        Assert.Equal(0, await db.SortedSetLengthAsync($"{_prefix}:warmups"));
        Assert.Equal(5_000, (await KeysUnder(admin, "user:key:")).Count);
    }

    [Fact]
    public async Task A_warm_up_deletes_the_keys_of_one_a_dead_node_left_long_ago_but_not_of_one_still_running()
    {
        var url = brokers.RealRedisUrl;
        using var redis = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(url));
        var db = redis.GetDatabase();
        var (stale, running) = ($"{_prefix}:warmup:{Guid.NewGuid():N}", $"{_prefix}:warmup:{Guid.NewGuid():N}");
        foreach (var prefix in new[] { stale, running })
        {
            await db.SortedSetAddAsync($"{prefix}:{{warmup}}:ready", "warmup:1", 1);
            await db.HashSetAsync($"{prefix}:{{warmup}}:job:warmup:1", "state", "ready");
        }
        var userKey = $"{_prefix}:{{default}}:ready";
        await db.SortedSetAddAsync(userKey, "default:1", 1);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var longAgo = now - (long)TimeSpan.FromMinutes(11).TotalMilliseconds;
        await db.SortedSetAddAsync($"{_prefix}:warmups", stale, longAgo);
        await db.SortedSetAddAsync($"{_prefix}:warmups", running, now);
        // A member that is no warm-up's prefix (it would match every key of the deployment) is never used as a pattern.
        await db.SortedSetAddAsync($"{_prefix}:warmups", _prefix, longAgo);

        await using var node = await TestNode.StartAsync(url, _prefix, o => o.WarmUpJobs = 20);
        await node.Services.GetRequiredService<JobPathWarmUp>().Cleanup.WaitAsync(Wait);

        Assert.Empty(await KeysUnder(redis, stale));
        Assert.Equal(2, (await KeysUnder(redis, running)).Count);
        Assert.True(await db.KeyExistsAsync(userKey));
        Assert.Equal([_prefix, running], (await db.SortedSetRangeByRankAsync($"{_prefix}:warmups")).Select(m => m.ToString()));
    }

    [Fact]
    public async Task A_warm_up_that_overruns_is_abandoned_and_the_node_starts_and_serves_anyway()
    {
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix, o =>
        {
            o.WarmUpJobs = 100_000; // more than its private node can even enqueue in a second
            o.WarmUpTimeout = TimeSpan.FromSeconds(1);
        });

        var warmUp = node.Services.GetRequiredService<JobPathWarmUp>();
        Assert.Null(warmUp.Report);
        var job = await node.Client.WaitAsync(await node.Client.EnqueueAsync("add", new[] { 1, 1 }), Wait);
        Assert.Equal(JobState.Succeeded, job.State);
        await warmUp.Cleanup.WaitAsync(Wait);
        Assert.Empty(await KeysUnder(node.Redis, $"{_prefix}:warmup"));
    }

    [Fact]
    public async Task A_node_started_while_Redis_still_loads_its_data_waits_for_it_then_warms_up_and_serves()
    {
        await using var loading = await RedisServer.StartLoadingAsync();
        Assert.True(await loading.IsLoadingAsync());

        await using var node = await TestNode.StartAsync(loading.Url, _prefix, o => o.WarmUpJobs = 100);

        Assert.Equal(100, node.Services.GetRequiredService<JobPathWarmUp>().Report?.Jobs);
        var job = await node.Client.WaitAsync(await node.Client.EnqueueAsync("add", new[] { 2, 2 }), Wait);
        Assert.Equal(JobState.Succeeded, job.State);
    }

    [Fact]
    public void A_key_prefix_with_glob_characters_matches_only_itself()
    {
        Assert.Equal(@"a\*b\?\[c\]\\d", WarmUpKeys.EscapeGlob(@"a*b?[c]\d"));
    }

    private static async Task<List<string>> KeysUnder(IConnectionMultiplexer redis, string prefix)
    {
        var keys = new List<string>();
        foreach (var endpoint in redis.GetEndPoints())
            await foreach (var key in redis.GetServer(endpoint).KeysAsync(redis.GetDatabase().Database, WarmUpKeys.EscapeGlob(prefix) + "*"))
                keys.Add(key!);
        return keys;
    }
}
