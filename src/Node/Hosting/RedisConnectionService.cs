using ClusterJobs.Node.Embedded;
using ClusterJobs.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Owns the node's Redis connection: connects before the actor system starts (a wrong password or an unreachable
/// Redis stops the node at startup with a message that says so), and starts the embedded Garnet server when no
/// REDIS_URL is configured.
/// </summary>
public sealed class RedisConnectionService(IOptions<ClusterJobsOptions> options, ILogger<RedisConnectionService> logger)
    : IHostedService, IAsyncDisposable
{
    private IConnectionMultiplexer? _connection;
    private EmbeddedGarnet? _garnet;

    public IConnectionMultiplexer Connection =>
        _connection ?? throw new InvalidOperationException("Redis is not connected yet: the node has not started.");

    /// <summary>The URL in use (the embedded server's when none was configured).</summary>
    public string Url { get; private set; } = "";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var url = options.Value.RedisUrl;
        if (string.IsNullOrWhiteSpace(url))
        {
            _garnet = new EmbeddedGarnet();
            url = _garnet.Url;
            logger.LogInformation("No REDIS_URL given: started an embedded Garnet server at {Url} (for development; production uses Redis)", url);
        }
        Url = url;
        _connection = await RedisConnection.ConnectAsync(url, "clusterjobs-node").ConfigureAwait(false);
        logger.LogInformation("Connected to Redis at {Url}", RedisConnection.Redact(url));
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        // The container may dispose us twice (as a singleton and as the hosted service it also is).
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is not null) await connection.DisposeAsync().ConfigureAwait(false);
        Interlocked.Exchange(ref _garnet, null)?.Dispose();
    }
}
