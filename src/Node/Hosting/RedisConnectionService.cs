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
public sealed class RedisConnectionService : IHostedService, IAsyncDisposable
{
    private readonly ILogger<RedisConnectionService> _logger;
    private IConnectionMultiplexer? _connection;
    private EmbeddedGarnet? _garnet;
    private readonly RedisIoThreads _io;

    public RedisConnectionService(IOptions<ClusterJobsOptions> options, ILogger<RedisConnectionService> logger)
    {
        _logger = logger;
        _io = options.Value.RedisIo;
        var url = options.Value.RedisUrl;
        if (string.IsNullOrWhiteSpace(url))
        {
            // Started here, not in StartAsync, so that its URL is known to whatever is configured before the host starts.
            _garnet = new EmbeddedGarnet();
            url = _garnet.Url;
            logger.LogInformation("No REDIS_URL given: started an embedded Garnet server at {Url} (for development; production uses Redis)", url);
        }
        Url = url;
    }

    public IConnectionMultiplexer Connection =>
        _connection ?? throw new InvalidOperationException("Redis is not connected yet: the node has not started.");

    /// <summary>The URL in use (the embedded server's when none was configured).</summary>
    public string Url { get; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _connection = await RedisConnection.ConnectAsync(Url, "clusterjobs-node", _io,
            () => _logger.LogWarning("Redis at {Url} is loading its dataset; the node waits for it before it starts", RedisConnection.Redact(Url)),
            cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Connected to Redis at {Url}", RedisConnection.Redact(Url));
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
