using ClusterJobs.Node.Broker;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.Tests;

/// <summary>A producer client and a node-side connection to one broker, under a key prefix of the spec's own.</summary>
public sealed class RedisSpecEnv : IAsyncDisposable
{
    private RedisSpecEnv(IConnectionMultiplexer redis, JobClient client, string prefix)
    {
        Redis = redis;
        Client = client;
        Prefix = prefix;
        Keys = new RedisKeys(prefix);
    }

    public IConnectionMultiplexer Redis { get; }
    public JobClient Client { get; }
    public string Prefix { get; }
    public RedisKeys Keys { get; }
    public IDatabase Db => Redis.GetDatabase();

    public static async Task<RedisSpecEnv> CreateAsync(string url)
    {
        var prefix = ClusterJobs.Tests.Shared.BrokerFixture.NewPrefix();
        var redis = await RedisConnection.ConnectAsync(url, "node-specs");
        var client = await JobClient.ConnectAsync(url, new JobClientOptions { KeyPrefix = prefix });
        return new RedisSpecEnv(redis, client, prefix);
    }

    public QueueBroker Broker(string queue, BrokerSettings? settings = null) =>
        new(Redis, Keys, queue, "node-1", settings ?? new BrokerSettings());

    public Task<string> EnqueueAsync(string queue, string task = "echo", object? args = null, EnqueueOptions? options = null) =>
        Client.EnqueueAsync(task, args ?? new { text = "hi" }, (options ?? new EnqueueOptions()) with { Queue = queue });

    /// <summary>
    /// Queues <paramref name="id"/> as a producer writing plain commands might: with a job record holding
    /// <paramref name="envelope"/> as it is (malformed, say), or with no record at all when it is null.
    /// </summary>
    public async Task QueueRawAsync(string queue, string id, RedisValue? envelope, double score = 0)
    {
        var q = Keys.Queue(queue);
        if (envelope is { } e) await Db.HashSetAsync(q.Job(id), [new("envelope", e), new("state", "queued")]);
        await Db.SortedSetAddAsync(q.Ready, id, score);
    }

    public async Task<string?> StateAsync(string jobId) =>
        await Db.HashGetAsync(Keys.ForJob(jobId).Job(jobId), JobHashFields.State);

    /// <summary>Polls until <paramref name="condition"/> holds (background writes of the actors land asynchronously).</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int timeoutMs = 5_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"Timed out waiting until {what}.");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Redis.DisposeAsync();
    }
}
