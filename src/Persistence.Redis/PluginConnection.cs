using Akka.Actor;
using Akka.Event;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Persistence.Redis;

/// <summary>
/// The connection one plugin actor owns. Connected with <c>ConnectAsync</c> and <c>AbortOnConnectFail=false</c> (the
/// actor starts even while Redis is down and the multiplexer keeps reconnecting by itself) and
/// <see cref="BacklogPolicy.FailFast"/> (while no connection is up a command fails at once instead of waiting in a
/// backlog, so Akka's circuit breaker sees the outage right away). Disposed in the actor's PostStop.
/// </summary>
internal sealed class PluginConnection(RedisPluginSettings settings, string clientName) : IDisposable
{
    /// <summary>Piped to the actor when the connect attempt finished, either way.</summary>
    internal sealed record Finished(IConnectionMultiplexer? Multiplexer, Exception? Error) : Akka.Actor.INoSerializationVerificationNeeded;

    private IConnectionMultiplexer? _multiplexer;
    private IDatabase? _database;
    private Exception? _error;
    private readonly object _gate = new();
    private bool _disposed;

    public bool IsReady { get; private set; }

    public RedisPluginSettings Settings => settings;

    public static ConfigurationOptions Options(RedisPluginSettings settings, string clientName)
    {
        var options = RedisConnection.Parse(settings.ConfigurationString);
        options.AbortOnConnectFail = false;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        // One attempt before the actor gets its connection (unless the settings name their own): StackExchange.Redis's own
        // retries (3) each waited out the connect timeout while nothing listened, holding the plugin's first requests 10 s;
        // the multiplexer reconnects by itself.
        if (!RedisConnection.NamesConnectRetry(settings.ConfigurationString)) options.ConnectRetry = 1;
        options.ClientName ??= clientName;
        if (settings.IoThreads.SocketManager() is { } sockets) options.SocketManager = sockets;
        return options;
    }

    public void Start(IActorRef self) => ConnectAsync().PipeTo(self);

    private async Task<Finished> ConnectAsync()
    {
        ConnectionMultiplexer multiplexer;
        try { multiplexer = await ConnectionMultiplexer.ConnectAsync(Options(settings, clientName)).ConfigureAwait(false); }
        catch (Exception ex) { return new Finished(null, ex); }
        lock (_gate)
        {
            // The actor may have stopped while we connected: then nobody else will dispose this connection.
            if (!_disposed)
            {
                _multiplexer = multiplexer;
                return new Finished(multiplexer, null);
            }
        }
        multiplexer.Dispose();
        return new Finished(null, new ObjectDisposedException(nameof(PluginConnection)));
    }

    /// <summary>Takes the result of <see cref="Start"/>; true when the message was that result.</summary>
    public bool TryComplete(object message, ILoggingAdapter log)
    {
        if (message is not Finished finished) return false;
        IsReady = true;
        if (finished.Multiplexer is null)
        {
            _error = finished.Error;
            log.Error(finished.Error, "Redis persistence plugin could not create its connection to {0}; every operation will fail.",
                RedisConnection.Redact(settings.ConfigurationString));
            return true;
        }
        _database = finished.Multiplexer.GetDatabase(settings.Database);
        if (!finished.Multiplexer.IsConnected)
            log.Warning("Redis at {0} is not reachable yet; the plugin fails its operations until it is (the connection retries by itself).",
                RedisConnection.Redact(settings.ConfigurationString));
        return true;
    }

    /// <summary>The database, or the connect error when there is no connection at all.</summary>
    public IDatabase Database =>
        _database ?? throw (_error is null
            ? new InvalidOperationException("The Redis persistence plugin has no connection yet.")
            : new RedisConnectionException(ConnectionFailureType.UnableToConnect, "The Redis persistence plugin could not create its connection.", _error));

    public void Dispose()
    {
        IConnectionMultiplexer? owned;
        lock (_gate)
        {
            _disposed = true;
            owned = _multiplexer;
            _multiplexer = null;
        }
        _database = null;
        owned?.Dispose();
    }
}
