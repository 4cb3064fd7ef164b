using ClusterJobs.Node.Embedded;

namespace ClusterJobs.Tests.Shared;

/// <summary>The brokers a broker test runs against: the real Redis (when there is one) and embedded Garnet.</summary>
public enum BrokerKind { Redis, Garnet }

/// <summary>
/// One Redis and one embedded Garnet per test assembly. Every test works under its own key prefix, so tests share the
/// servers without seeing each other's jobs.
/// </summary>
public sealed class BrokerFixture : IAsyncLifetime
{
    private EmbeddedGarnet? _garnet;

    public RedisServer? Redis { get; private set; }
    public string GarnetUrl => _garnet!.Url;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.FindAsync();
        _garnet = new EmbeddedGarnet(memory: "256m");
        Console.WriteLine(Redis is null
            ? "NOTE: no Redis on this machine: broker tests run against embedded Garnet only (CI always has Redis)."
            : $"Broker tests run against Redis ({Redis.Source}: {Redis.Url}) and embedded Garnet ({_garnet.Url}).");
    }

    /// <summary>The URL of <paramref name="kind"/>; for Redis on a machine without one, falls back to Garnet (said once at start).</summary>
    public string Url(BrokerKind kind) => kind == BrokerKind.Redis && Redis is not null ? Redis.Url : GarnetUrl;

    /// <summary>The real Redis; on a machine with no Redis at all, the embedded Garnet (said once at start).</summary>
    public string RealRedisUrl => Redis?.Url ?? GarnetUrl;

    public static string NewPrefix() => "t" + Guid.NewGuid().ToString("N")[..12];

    public async Task DisposeAsync()
    {
        if (Redis is not null) await Redis.DisposeAsync();
        _garnet?.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class BrokerCollection : ICollectionFixture<BrokerFixture>
{
    public const string Name = "broker";
}
