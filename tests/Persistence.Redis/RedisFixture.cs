using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// One real Redis per test collection (REDIS_URL first, then a private redis-server; never a fake). Each fixture
/// works under a key prefix of its own and, on a shared REDIS_URL server, removes its keys at the end.
/// </summary>
public sealed class RedisFixture : IAsyncLifetime
{
    private RedisServer? _server;

    public string Url => _server?.Url ?? throw new InvalidOperationException("Redis is not started.");
    public string Prefix { get; } = "cjt-" + Guid.NewGuid().ToString("N")[..10];
    public IConnectionMultiplexer Redis { get; private set; } = null!;
    public IDatabase Db => Redis.GetDatabase();

    public async Task InitializeAsync()
    {
        _server = await RedisServer.FindAsync()
            ?? throw new InvalidOperationException("These specs need a real Redis: set REDIS_URL or install redis-server (apt-get install redis-server).");
        Redis = await RedisConnection.ConnectAsync(_server.Url, "persistence-specs");
    }

    public async Task DisposeAsync()
    {
        if (_server?.Source == "REDIS_URL")
        {
            foreach (var endpoint in Redis.GetEndPoints())
            {
                var server = Redis.GetServer(endpoint);
                if (server.IsReplica) continue;
                foreach (var key in server.Keys(Db.Database, Prefix + ":*", pageSize: 500))
                    await Db.KeyDeleteAsync(key);
            }
        }
        await Redis.DisposeAsync();
        if (_server is not null) await _server.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class JournalCollection : ICollectionFixture<RedisFixture>
{
    public const string Name = "journal";
}

[CollectionDefinition(Name)]
public sealed class SnapshotCollection : ICollectionFixture<RedisFixture>
{
    public const string Name = "snapshot-store";
}

[CollectionDefinition(Name)]
public sealed class PluginCollection : ICollectionFixture<RedisFixture>
{
    public const string Name = "plugin";
}
