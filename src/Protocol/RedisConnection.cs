using Polly;
using Polly.Retry;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>Turns a REDIS_URL into a connection and Redis's failures into errors that say what to fix.</summary>
public static class RedisConnection
{
    /// <summary>
    /// Accepts <c>redis://[user][:password]@host:port[/db]</c>, <c>rediss://</c> (TLS), or a StackExchange.Redis
    /// configuration string (<c>host:port,password=...</c>).
    /// </summary>
    public static ConfigurationOptions Parse(string redisUrl)
    {
        if (string.IsNullOrWhiteSpace(redisUrl))
            throw new ArgumentException("The Redis URL is empty.", nameof(redisUrl));
        if (!redisUrl.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) &&
            !redisUrl.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
            return ConfigurationOptions.Parse(redisUrl);

        if (!Uri.TryCreate(redisUrl, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
            throw new ArgumentException($"'{Redact(redisUrl)}' is not a valid redis:// URL.{EncodingHint(redisUrl)}", nameof(redisUrl));
        // Read by other clients (redis-py's ?db=2), not by this one: refused, or the node and a producer given the same
        // URL would use different databases.
        if (uri.Query.Length > 1)
            throw new ArgumentException($"'{Redact(redisUrl)}': query parameters are not read; give the database as the path " +
                                        $"(redis://host:6379/2) and TLS as rediss://.{EncodingHint(redisUrl)}", nameof(redisUrl));
        var options = new ConfigurationOptions { Ssl = uri.Scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase) };
        options.EndPoints.Add(uri.Host, uri.Port > 0 ? uri.Port : 6379);
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var parts = uri.UserInfo.Split(':', 2);
            var user = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                if (user.Length > 0) options.User = user;
                options.Password = Uri.UnescapeDataString(parts[1]);
            }
            else options.Password = user; // redis://secret@host is the password alone, as redis-cli -u reads it
        }
        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0)
        {
            if (!int.TryParse(path, out var db) || db < 0)
                throw new ArgumentException($"'{Redact(redisUrl)}': the path must be a database number.{EncodingHint(redisUrl)}", nameof(redisUrl));
            options.DefaultDatabase = db;
        }
        return options;
    }

    /// <summary>
    /// Connects, failing at once with a <see cref="RedisUnavailableException"/> that names the cause (wrong password,
    /// nothing listening). A Redis still loading its dataset (after a restart) is waited for, until
    /// <paramref name="cancellationToken"/>. Once connected, StackExchange.Redis reconnects by itself.
    /// <paramref name="io"/>: the threads that read the socket (StackExchange.Redis's own by default).
    /// </summary>
    public static Task<IConnectionMultiplexer> ConnectAsync(string redisUrl, string clientName = "clusterjobs",
        RedisIoThreads io = RedisIoThreads.Dedicated, Action? whileLoading = null, CancellationToken cancellationToken = default) =>
        ConnectAsync(Options(redisUrl, clientName, io), redisUrl, whileLoading, cancellationToken);

    /// <summary>
    /// Connects with <paramref name="options"/> (from <see cref="Options"/>); errors name <paramref name="redisUrl"/>,
    /// redacted. <paramref name="whileLoading"/> is called once if Redis answers that it is loading its dataset.
    /// </summary>
    public static async Task<IConnectionMultiplexer> ConnectAsync(ConfigurationOptions options, string redisUrl,
        Action? whileLoading = null, CancellationToken cancellationToken = default)
    {
        IConnectionMultiplexer? mux = null;
        var toldLoading = false;
        void Loading()
        {
            if (toldLoading) return;
            toldLoading = true;
            whileLoading?.Invoke();
        }
        try
        {
            mux = await ConnectPastLoadingAsync(options, redisUrl, Loading, cancellationToken).ConfigureAwait(false);
            await WaitWhileLoadingAsync(mux.GetDatabase(), redisUrl, Loading, cancellationToken).ConfigureAwait(false);
            return mux;
        }
        catch (Exception ex)
        {
            if (mux is not null) await mux.DisposeAsync().ConfigureAwait(false);
            if (ex is RedisConnectionException or RedisServerException or RedisTimeoutException) throw Explain(ex, redisUrl);
            throw;
        }
    }

    /// <summary>
    /// StackExchange.Redis's connect takes no token and can wait out its connect timeout (5 s, sometimes twice) even on a
    /// port nothing listens on: a caller that gives up (a node told to stop while it waits for Redis) is answered at once,
    /// and the connection, should one come later, is closed then.
    /// </summary>
    private static async Task<IConnectionMultiplexer> ConnectCancellablyAsync(ConfigurationOptions options, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var connecting = ConnectionMultiplexer.ConnectAsync(options);
        try
        {
            return await connecting.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _ = CloseWhenConnectedAsync(connecting);
            throw;
        }

        static async Task CloseWhenConnectedAsync(Task<ConnectionMultiplexer> connecting)
        {
            try
            {
                await (await connecting.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // it failed to connect: nothing to close, and no one left to tell
            }
        }
    }

    /// <summary>
    /// A Redis loading its dataset can fail the connect itself: StackExchange.Redis faults the endpoint when its handshake
    /// is answered <c>LOADING</c> (its own further attempts hid that before there was only one). Connected again until it
    /// is not, as <see cref="WaitWhileLoadingAsync"/> waits after.
    /// </summary>
    private static async Task<IConnectionMultiplexer> ConnectPastLoadingAsync(ConfigurationOptions options, string redisUrl, Action loading,
        CancellationToken ct)
    {
        var sawLoading = false;
        while (true)
        {
            try
            {
                return await ConnectCancellablyAsync(options, ct).ConfigureAwait(false);
            }
            catch (RedisConnectionException ex) when (IsLoadingFailure(ex))
            {
                sawLoading = true;
                loading();
            }
            catch (OperationCanceledException ex) when (ct.IsCancellationRequested && sawLoading)
            {
                throw StillLoading(redisUrl, ex);
            }
            try { await Task.Delay(LoadingPoll, ct).ConfigureAwait(false); }
            catch (OperationCanceledException ex) { throw StillLoading(redisUrl, ex); }
        }
    }

    private static bool IsLoadingFailure(RedisConnectionException ex) =>
        ex.FailureType == ConnectionFailureType.Loading || ex.ToString().Contains("LOADING", StringComparison.Ordinal);

    private static RedisUnavailableException StillLoading(string redisUrl, Exception ex) =>
        new($"Redis at {Redact(redisUrl)} was still loading its dataset (LOADING) when the wait for it was cancelled.", ex);

    /// <summary>
    /// A Redis restarted on a large dataset accepts connections at once but answers every command with <c>LOADING</c>
    /// until its data is in memory (seconds to minutes); a client that connects then has nothing wrong but timing.
    /// </summary>
    private static async Task WaitWhileLoadingAsync(IDatabase db, string redisUrl, Action whileLoading, CancellationToken ct)
    {
        var pipeline = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            // LOADING comes back as a server error, or, when it answers a command sent while the connection is set up,
            // as a connection failure of type Loading (StackExchange.Redis reconnects by itself then).
            ShouldHandle = new PredicateBuilder().Handle<RedisServerException>(IsLoading).Handle<RedisConnectionException>(ex => ex.FailureType == ConnectionFailureType.Loading),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Constant,
            Delay = LoadingPoll,
            OnRetry = args =>
            {
                whileLoading();
                return ValueTask.CompletedTask;
            },
        }).Build();
        try
        {
            await pipeline.ExecuteAsync(static async (db, _) => await db.PingAsync().ConfigureAwait(false), db, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (ct.IsCancellationRequested)
        {
            throw StillLoading(redisUrl, ex);
        }
    }

    private static readonly TimeSpan LoadingPoll = TimeSpan.FromMilliseconds(100);

    /// <summary>Redis's answer while it loads its dataset after a start: every command fails with it until done.</summary>
    public static bool IsLoading(RedisServerException ex) => ex.Message.StartsWith("LOADING", StringComparison.Ordinal);

    /// <summary>
    /// Redis was not reached, or not ready: the connection failed or dropped, no reply came, or it is loading its data.
    /// Trying again later may succeed; every retry and wait of ours asks this.
    /// </summary>
    public static bool IsUnreachable(Exception ex) =>
        ex is RedisConnectionException or RedisTimeoutException or RedisUnavailableException { Unreachable: true } ||
        ex is RedisServerException server && IsLoading(server);

    /// <summary>What <see cref="ConnectAsync"/> connects with: the URL's settings, fail-fast connect, the client name, the I/O threads.</summary>
    public static ConfigurationOptions Options(string redisUrl, string clientName, RedisIoThreads io)
    {
        var options = Parse(redisUrl);
        options.AbortOnConnectFail = true;
        options.ClientName ??= clientName;
        options.ConnectTimeout = Math.Min(options.ConnectTimeout, 5_000);
        // One attempt unless the settings name their own: StackExchange.Redis's own retries after a refused connect (3 by
        // default) each waited out the connect timeout without trying again, so a port nothing listens on took 10 s to
        // say so. Ours retry instead: the node's start waits for Redis, a client's calls are sent again.
        if (!NamesConnectRetry(redisUrl)) options.ConnectRetry = 1;
        if (io.SocketManager() is { } sockets) options.SocketManager = sockets;
        return options;
    }

    /// <summary>Whether StackExchange.Redis settings (<c>host:port,connectRetry=3</c>) set the connect attempts themselves.</summary>
    public static bool NamesConnectRetry(string configuration) =>
        configuration.Contains("connectRetry=", StringComparison.OrdinalIgnoreCase);

    internal static RedisUnavailableException Explain(Exception ex, string redisUrl)
    {
        var text = ex.ToString();
        var where = Redact(redisUrl);
        if (text.Contains("WRONGPASS", StringComparison.OrdinalIgnoreCase) ||
            text.Contains("invalid password", StringComparison.OrdinalIgnoreCase) ||
            text.Contains("invalid username-password", StringComparison.OrdinalIgnoreCase) ||
            text.Contains("AuthenticationFailure", StringComparison.OrdinalIgnoreCase))
            return new RedisUnavailableException($"Redis at {where} refused the credentials (AUTH failed): check the password in REDIS_URL.", ex);
        if (text.Contains("NOAUTH", StringComparison.OrdinalIgnoreCase))
            return new RedisUnavailableException($"Redis at {where} requires a password and none was given: put it in REDIS_URL (redis://:password@host:port).", ex);
        return new RedisUnavailableException($"Could not connect to Redis at {where}: {WithoutClientAdvice(ex.Message)}", ex)
        {
            Unreachable = IsUnreachable(ex),
        };
    }

    /// <summary>StackExchange.Redis's advice to set abortConnect=false is about its own settings, not ours: dropped.</summary>
    private static string WithoutClientAdvice(string message)
    {
        var advice = message.IndexOf(" To allow this multiplexer", StringComparison.Ordinal);
        return advice < 0 ? message : message[..advice];
    }

    /// <summary>A password holding '/', '?' or '#' unencoded ends the URL's host part early: said, so the fix is plain.</summary>
    private static string EncodingHint(string redisUrl)
    {
        var hostEnd = redisUrl.IndexOfAny(['/', '?', '#'], redisUrl.IndexOf("://", StringComparison.Ordinal) + 3);
        return hostEnd >= 0 && redisUrl.LastIndexOf('@') > hostEnd
            ? " A password with '/', '?', '#' or '@' in it must be percent-encoded (%2F, %3F, %23, %40)."
            : "";
    }

    /// <summary>The URL with any password replaced by ***, for messages and logs.</summary>
    public static string Redact(string redisUrl)
    {
        var scheme = redisUrl.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            var start = scheme + 3;
            // The last '@' anywhere: a password may hold an unencoded '/' or '?' that a URL parser takes for the path's start.
            var at = redisUrl.LastIndexOf('@');
            if (at < start) return redisUrl;
            var colon = redisUrl.IndexOf(':', start, at - start);
            // user:password@ keeps the user; a lone secret@ is a password (as redis-cli reads it).
            var secretStart = colon < 0 ? start : colon + 1;
            return redisUrl[..secretStart] + "***" + redisUrl[at..];
        }
        var i = redisUrl.IndexOf("password=", StringComparison.OrdinalIgnoreCase);
        if (i < 0) return redisUrl;
        var comma = redisUrl.IndexOf(',', i);
        return redisUrl[..(i + 9)] + "***" + (comma < 0 ? "" : redisUrl[comma..]);
    }
}

/// <summary>Redis could not be reached or refused us; the message says why and what to check.</summary>
public sealed class RedisUnavailableException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>
    /// Nothing answered in time (not started yet, restarting, a host name not resolved yet): trying again later may
    /// succeed. False when Redis answered and refused (credentials), which waiting does not mend.
    /// </summary>
    public bool Unreachable { get; init; }
}
