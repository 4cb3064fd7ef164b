using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace ClusterJobs.Tests.Shared;

/// <summary>A seed or node running as a real process (the built binaries), with its output kept for assertions.</summary>
public sealed class ClusterProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    private ClusterProcess(Process process, string name)
    {
        _process = process;
        Name = name;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue("ERR " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public string Output => string.Join('\n', _lines);

    public static ClusterProcess StartSeed(int port, IDictionary<string, string>? env = null) =>
        Start("ClusterJobs.Seed", "seed", new Dictionary<string, string>(env ?? new Dictionary<string, string>())
        {
            ["CLUSTER_IP"] = "127.0.0.1", ["CLUSTER_PORT"] = port.ToString(),
        });

    public static ClusterProcess StartNode(string name, IDictionary<string, string> env, params string[] args) =>
        Start("ClusterJobs.Node", name, env, args);

    public static string SeedAddress(int port) => $"akka.tcp://clusterjobs@127.0.0.1:{port}";

    public static ClusterProcess Start(string program, string name, IDictionary<string, string> env, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Binary(program));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        info.Environment.Remove("REDIS_URL");
        // Test processes share two cores with other test assemblies: a 3 s stall must not make a live member unreachable.
        info.Environment["CLUSTER_HEARTBEAT_PAUSE"] = "6";
        foreach (var (key, value) in env) info.Environment[key] = value;
        return new ClusterProcess(Process.Start(info)!, name);
    }

    /// <summary>The built program: src/&lt;Project&gt;/bin/&lt;Configuration&gt;/net10.0/&lt;program&gt;.dll, built with the tests.</summary>
    public static string Binary(string program)
    {
        var testDir = AppContext.BaseDirectory;
        var configuration = testDir.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
        var root = new DirectoryInfo(testDir);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "ClusterJobs.sln"))) root = root.Parent;
        if (root is null) throw new InvalidOperationException("Cannot find the repository root (ClusterJobs.sln) above " + testDir);
        // src/Node for ClusterJobs.Node; samples/WebApi for ClusterJobs.Samples.WebApi
        var project = program.StartsWith("ClusterJobs.Samples.", StringComparison.Ordinal)
            ? Path.Combine("samples", program["ClusterJobs.Samples.".Length..])
            : Path.Combine("src", program.Replace("ClusterJobs.", ""));
        var path = Path.Combine(root.FullName, project, "bin", configuration, "net10.0", program + ".dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"{program} is not built at {path}; run dotnet build first.");
    }

    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_lines.Any(l => l.Contains(text, StringComparison.Ordinal)))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{Name} did not print '{text}' within {timeout}. Output:\n{Tail()}");
            if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode}. Output:\n{Tail()}");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Waits until <paramref name="members"/> distinct members were moved to Up by the cluster's leader (whichever of
    /// <paramref name="processes"/> it is: the member with the lowest address). A member that is only joining does not
    /// count for the split-brain resolver's majority, so crash tests wait for this before they kill anything.
    /// </summary>
    public static async Task WaitForMembersUpAsync(IReadOnlyCollection<ClusterProcess> processes, int members, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var up = processes.SelectMany(p => p._lines)
                .Select(l => System.Text.RegularExpressions.Regex.Match(l, @"Leader is moving node \[([^\]]+)\] to \[Up\]"))
                .Where(m => m.Success).Select(m => m.Groups[1].Value).Distinct().Count();
            if (up >= members)
            {
                // The leader logs the move; the other members learn of it by gossip (every second). A member that has not
                // yet would count too few members in a split-brain decision taken right now.
                await Task.Delay(TimeSpan.FromSeconds(3));
                return;
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"only {up} of {members} members were seen Up within {timeout}.");
            await Task.Delay(50);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public string Tail(int lines = 40) => string.Join('\n', _lines.TakeLast(lines));

    /// <summary>SIGKILL: the process dies at once, as in a crash (kill -9).</summary>
    public void Kill9()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM: the graceful stop a container runtime sends.</summary>
    public void Terminate() => Signal("TERM");

    /// <summary>Sends a signal (kill -NAME): STOP freezes the process, as a long GC pause or a stalled VM would; CONT resumes it.</summary>
    public void Signal(string name)
    {
        if (!_process.HasExited) Process.Start("kill", ["-" + name, _process.Id.ToString()])!.WaitForExit();
    }

    public ValueTask DisposeAsync()
    {
        Kill9();
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
