using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ClusterJobs.PersistenceBench;

/// <summary>
/// A throw-away <c>redis-server</c> (no RDB, no AOF) on 127.0.0.1, started daemonized with its own pidfile and
/// stopped by that PID (SIGTERM, then SIGKILL after 5 s). It refuses to start when the port is already taken, so it
/// never touches a Redis it did not start.
/// </summary>
public sealed class PrivateRedis : IDisposable
{
    private readonly DirectoryInfo _dir;
    private int _pid;

    private PrivateRedis(int port, int pid, DirectoryInfo dir)
    {
        Port = port;
        _pid = pid;
        _dir = dir;
    }

    public int Port { get; }
    public int Pid => _pid;
    public string Url => $"redis://127.0.0.1:{Port}";

    public static async Task<PrivateRedis> StartAsync(int port)
    {
        if (await ListeningAsync(port))
            throw new InvalidOperationException($"Something already listens on 127.0.0.1:{port}. Stop it, or point the benchmark at it with --redis / REDIS_URL.");
        var dir = Directory.CreateTempSubdirectory("cj-persistence-bench-");
        var pidFile = Path.Combine(dir.FullName, "redis.pid");
        var psi = new ProcessStartInfo("redis-server") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
                 {
                     "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "yes",
                     "--pidfile", pidFile, "--logfile", Path.Combine(dir.FullName, "redis.log"), "--dir", dir.FullName,
                 })
            psi.ArgumentList.Add(a);
        using (var launcher = Process.Start(psi) ?? throw new InvalidOperationException("Could not start redis-server."))
        {
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10))) await launcher.WaitForExitAsync(timeout.Token);
            if (launcher.ExitCode != 0)
                throw new InvalidOperationException($"redis-server exited with {launcher.ExitCode}: {launcher.StandardError.ReadToEnd()}{launcher.StandardOutput.ReadToEnd()}");
        }
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            if (File.Exists(pidFile) && int.TryParse((await File.ReadAllTextAsync(pidFile)).Trim(), out var pid) && await ListeningAsync(port))
                return new PrivateRedis(port, pid, dir);
            await Task.Delay(50);
        }
        throw new InvalidOperationException($"redis-server on port {port} did not come up within 5 s (log: {dir.FullName}/redis.log).");
    }

    private static async Task<bool> ListeningAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            await client.ConnectAsync("127.0.0.1", port, timeout.Token);
            return client.Connected;
        }
        catch { return false; }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    private const int SigTerm = 15, SigKill = 9;

    /// <summary>Stops the server by its PID; idempotent. Checks the PID still names a redis-server first.</summary>
    public void Dispose()
    {
        var pid = Interlocked.Exchange(ref _pid, 0);
        if (pid == 0) return;
        if (IsRedis(pid))
        {
            kill(pid, SigTerm);
            // Dispose runs from ProcessExit and Ctrl+C handlers, which cannot await: wait on the process itself.
            try { using var process = Process.GetProcessById(pid); process.WaitForExit(TimeSpan.FromSeconds(5)); }
            catch (ArgumentException) { /* already gone */ }
            if (IsRedis(pid)) kill(pid, SigKill);
        }
        try { _dir.Delete(recursive: true); } catch { /* best effort */ }
    }

    private static bool IsRedis(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").StartsWith("redis-server", StringComparison.Ordinal); }
        catch { return false; }
    }
}
