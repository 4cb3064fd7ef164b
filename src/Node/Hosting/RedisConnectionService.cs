using System.Diagnostics;
using ClusterJobs.Node.Embedded;
using ClusterJobs.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;
using StackExchange.Redis;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Owns the node's Redis connection: connects before the actor system starts (a wrong password, or a Redis still out of
/// reach after <see cref="ClusterJobsOptions.RedisStartupWait"/>, stops the node at startup with a message that says
/// so), and starts the embedded Garnet server when no REDIS_URL is configured.
/// </summary>
public sealed class RedisConnectionService : IHostedService, IAsyncDisposable
{
    private readonly ILogger<RedisConnectionService> _logger;
    private IConnectionMultiplexer? _connection;
    private EmbeddedGarnet? _garnet;
    private readonly RedisIoThreads _io;
    private readonly TimeSpan _startupWait;

    public RedisConnectionService(IOptions<ClusterJobsOptions> options, ILogger<RedisConnectionService> logger)
    {
        _logger = logger;
        _io = options.Value.RedisIo;
        _startupWait = options.Value.RedisStartupWait;
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
        _connection = await ConnectWaitingAsync(cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Connected to Redis at {Url}", RedisConnection.Redact(Url));
    }

    /// <summary>
    /// Connects; while nothing answers (compose started the node before Redis, Redis is restarting) tries again with
    /// backoff for up to <see cref="ClusterJobsOptions.RedisStartupWait"/>, saying so each time, as a Celery worker
    /// retries its broker at start. Before, the node exited at once and its supervisor had to start it again.
    /// </summary>
    private async Task<IConnectionMultiplexer> ConnectWaitingAsync(CancellationToken cancellationToken)
    {
        var redacted = RedisConnection.Redact(Url);
        var waited = Stopwatch.StartNew();
        var retry = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(
                args.Outcome.Exception is { } ex && RedisConnection.IsUnreachable(ex) && waited.Elapsed < _startupWait),
            MaxRetryAttempts = int.MaxValue,
            // 0.25 s doubling to 5 s, jittered, and never past the end of the wait.
            DelayGenerator = args =>
            {
                var backoff = Math.Min(0.25 * Math.Pow(2, args.AttemptNumber), 5) * (0.8 + 0.4 * Random.Shared.NextDouble());
                var left = (_startupWait - waited.Elapsed).TotalSeconds;
                return ValueTask.FromResult<TimeSpan?>(TimeSpan.FromSeconds(Math.Clamp(left, 0, backoff)));
            },
            OnRetry = args =>
            {
                _logger.LogWarning("{Reason} The node tries again in {Delay:0.0} s (it waits up to {Wait} s in all: CLUSTERJOBS_REDIS_WAIT_SECONDS)",
                    args.Outcome.Exception!.Message, args.RetryDelay.TotalSeconds, _startupWait.TotalSeconds);
                return ValueTask.CompletedTask;
            },
        }).Build();
        try
        {
            return await retry.ExecuteAsync(async token => await RedisConnection.ConnectAsync(Url, "clusterjobs-node", _io,
                () => _logger.LogWarning("Redis at {Url} is loading its dataset; the node waits for it before it starts", redacted),
                token).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (RedisUnavailableException ex) when (ex.Unreachable && _startupWait > TimeSpan.Zero)
        {
            throw new RedisUnavailableException($"{ex.Message} (tried for {waited.Elapsed.TotalSeconds:0} s)", ex.InnerException) { Unreachable = true };
        }
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
