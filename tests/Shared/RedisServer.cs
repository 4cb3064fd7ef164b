using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Tests.Shared;

/// <summary>
/// A real Redis for tests, found in this order: REDIS_URL; Testcontainers when a Docker engine answers; a
/// `redis-server` binary started on a free loopback port. Null when none is available (the broker tests then run
/// against embedded Garnet only, and say so).
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly Process? _process;
    private readonly IAsyncDisposable? _container;

    private RedisServer(string url, string source, Process? process = null, IAsyncDisposable? container = null)
    {
        Url = url;
        Source = source;
        _process = process;
        _container = container;
    }

    /// <summary>The redis-server process's id, when this started one.</summary>
    public int? ProcessId => _process?.Id;

    public string Url { get; }
    /// <summary>Where this Redis came from (REDIS_URL, testcontainers, redis-server), for test output.</summary>
    public string Source { get; }
    public int Port => int.Parse(Url[(Url.LastIndexOf(':') + 1)..].Split('/')[0]);

    public static async Task<RedisServer?> FindAsync()
    {
        if (Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } url) return new RedisServer(url, "REDIS_URL");
        if (await TryContainerAsync() is { } container) return container;
        return RedisServerBinary() is null ? null : await StartBinaryAsync();
    }

    /// <summary>Starts a private redis-server (for tests that restart it or set a password); <paramref name="extraArgs"/>
    /// go on its command line as they are (e.g. <c>--appendfsync always</c>).</summary>
    public static async Task<RedisServer> StartBinaryAsync(string? password = null, bool appendOnly = false, int port = 0, string? dir = null,
        string? extraArgs = null)
    {
        var binary = RedisServerBinary() ?? throw new InvalidOperationException("redis-server is not installed (apt-get install redis-server).");
        port = port == 0 ? FreePort() : port;
        dir ??= Directory.CreateTempSubdirectory("cj-redis-").FullName;
        var args = $"--port {port} --bind 127.0.0.1 --save \"\" --appendonly {(appendOnly ? "yes" : "no")} --dir {dir} --protected-mode no";
        if (password is not null) args += $" --requirepass {password}";
        if (extraArgs is not null) args += " " + extraArgs;
        var process = Process.Start(new ProcessStartInfo(binary, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        var url = password is null ? $"redis://127.0.0.1:{port}" : $"redis://:{password}@127.0.0.1:{port}";
        var server = new RedisServer(url, "redis-server", process);
        await server.WaitUntilReadyAsync(password);
        server.Dir = dir;
        return server;
    }

    public string? Dir { get; private set; }

    /// <summary>
    /// A Redis restarted on a dataset it takes seconds to load, as after a crash with a large append-only file: it
    /// accepts connections at once and answers every command with <c>LOADING</c> until its data is in memory. Loading
    /// is slowed per key (<c>key-load-delay</c>), and the server answers as often as a fast load of a real dataset does.
    /// </summary>
    public static async Task<RedisServer> StartLoadingAsync(int keys = 30_000, int microsecondsPerKey = 50)
    {
        string dir;
        await using (var filled = await StartBinaryAsync(extraArgs: "--enable-debug-command local"))
        {
            await using var admin = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(filled.Url) + ",allowAdmin=true");
            var server = admin.GetServer(admin.GetEndPoints()[0]);
            await server.ExecuteAsync("DEBUG", "POPULATE", keys, "filler");
            await server.ExecuteAsync("SAVE");
            dir = filled.Dir!;
        }
        return await StartBinaryAsync(dir: dir, extraArgs: $"--key-load-delay {microsecondsPerKey} --loading-process-events-interval-bytes 1024");
    }

    /// <summary>Whether the server answers <c>LOADING</c>, asked on a plain socket (a client library may wait it out).</summary>
    public async Task<bool> IsLoadingAsync()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, Port);
        await using var stream = tcp.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray());
        using var reader = new StreamReader(stream);
        return (await reader.ReadLineAsync())?.StartsWith("-LOADING", StringComparison.Ordinal) == true;
    }

    private async Task WaitUntilReadyAsync(string? password)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline) { await Task.Delay(50); }
        }
    }

    private static async Task<RedisServer?> TryContainerAsync()
    {
        var socket = Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } || File.Exists("/var/run/docker.sock");
        if (!socket) return null;
        try
        {
            var container = new Testcontainers.Redis.RedisBuilder("redis:7").Build();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await container.StartAsync(cts.Token);
            var endpoint = container.GetConnectionString();
            return new RedisServer($"redis://{endpoint}", "testcontainers", container: container);
        }
        catch (Exception)
        {
            return null; // no engine answers: fall through to the binary
        }
    }

    public static string? RedisServerBinary() =>
        new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists);

    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try { return ((IPEndPoint)listener.LocalEndpoint).Port; }
        finally { listener.Stop(); }
    }

    /// <summary>
    /// A free port below the kernel's ephemeral range, for a spec that holds a port's number while nothing listens on it
    /// (Redis down, then started again on it). <see cref="FreePort"/> hands out ports from that range and the kernel can
    /// give a port just freed to the next caller, so another spec's Redis could take such a port in the meantime; no
    /// <see cref="FreePort"/> and no outgoing connection is given one of these.
    /// </summary>
    public static int PortNoOneElseIsGiven()
    {
        var lowestEphemeral = EphemeralRangeStart();
        for (var attempt = 0; ; attempt++)
        {
            var port = Random.Shared.Next(10_000, lowestEphemeral);
            var listener = new TcpListener(IPAddress.Loopback, port);
            try
            {
                listener.Start();
                return port;
            }
            catch (SocketException) when (attempt < 100)
            {
                // taken: another
            }
            finally
            {
                listener.Stop();
            }
        }
    }

    private static int EphemeralRangeStart()
    {
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        return File.Exists(range) && int.TryParse(File.ReadAllText(range).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], out var low)
            && low > 11_000 ? low : 32_768;
    }

    public Task<IConnectionMultiplexer> ConnectAsync() => RedisConnection.ConnectAsync(Url, "tests");

    /// <summary>Kills the server at once (SIGKILL), as a crash would.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false }) _process.Kill();
        _process?.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        if (_container is not null) await _container.DisposeAsync();
    }
}
