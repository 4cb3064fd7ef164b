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

    public static PrivateRedis Start(int port)
    {
        if (Listening(port))
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
            launcher.WaitForExit(10_000);
            if (launcher.ExitCode != 0)
                throw new InvalidOperationException($"redis-server exited with {launcher.ExitCode}: {launcher.StandardError.ReadToEnd()}{launcher.StandardOutput.ReadToEnd()}");
        }
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) && Listening(port))
                return new PrivateRedis(port, pid, dir);
            Thread.Sleep(50);
        }
        throw new InvalidOperationException($"redis-server on port {port} did not come up within 5 s (log: {dir.FullName}/redis.log).");
    }

    private static bool Listening(int port)
    {
        try
        {
            using var client = new TcpClient();
            return client.ConnectAsync("127.0.0.1", port).Wait(500) && client.Connected;
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
            var waited = Stopwatch.StartNew();
            while (IsRedis(pid) && waited.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(50);
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
