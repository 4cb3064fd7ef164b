using System.Diagnostics;
using System.Text.RegularExpressions;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>The benchmark harness in smoke mode (tiny sizes): it must keep working, so it is run here; its numbers are not checked.</summary>
public sealed class BenchHarnessSpecs(BenchHarnessSpecs.SmokeRun smoke, ITestOutputHelper output) : IClassFixture<BenchHarnessSpecs.SmokeRun>
{
    [Fact]
    public async Task The_harness_takes_the_node_images_runtime_settings_from_its_Dockerfile()
    {
        // The node image runs JIT-compiled code (DOTNET_ReadyToRun=0; README, docs/benchmarks.md) and compiles its job
        // path in a warm-up before it joins (CLUSTERJOBS_WARMUP_JOBS), and the harness runs its nodes with the image's
        // settings read from there, so the numbers are the image's. The seed keeps the runtime's defaults.
        Assert.Equal(["DOTNET_ReadyToRun=0", "CLUSTERJOBS_WARMUP_JOBS=1000"], await ImageEnv(Path.Combine("src", "Node", "Dockerfile")));
        Assert.Empty(await ImageEnv(Path.Combine("src", "Seed", "Dockerfile")));
    }

    static async Task<string[]> ImageEnv(string dockerfile)
    {
        var (exitCode, text, errors) = await RunAsync(TimeSpan.FromMinutes(1), "python3", [Path.Combine("bench", "image_env.py"), dockerfile],
            // one set in the environment would win over the image's
            new Dictionary<string, string?> { ["DOTNET_ReadyToRun"] = null, ["CLUSTERJOBS_WARMUP_JOBS"] = null });
        Assert.True(exitCode == 0, $"bench/image_env.py exited {exitCode}: {errors}");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    // src/Node/bin/<cfg>/net10.0/ClusterJobs.Node.dll -> the repository root
    static string Root() =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(ClusterJobs.Tests.Shared.ClusterProcess.Binary("ClusterJobs.Node"))!, "..", "..", "..", "..", ".."));

    [Fact]
    public async Task A_Redis_already_on_the_harness_port_is_used_and_its_pid_asked_of_Redis_itself()
    {
        // One left running by a killed run has lost its pidfile with that run's work folder; the kit reads Redis's CPU
        // time by the pid it finds in run/redis-6390.pid, and failed with a Python traceback when that was wrong. (The
        // facts of this class run one at a time, so the smoke run is not using the port now.)
        // Its pidfile's folder is gone, and its process title does not name the port (a Redis configured by someone else).
        await using var left = await RedisServer.StartBinaryAsync(port: 6390,
            extraArgs: $"--pidfile {Path.Combine(Path.GetTempPath(), "cj-bench-gone-" + Guid.NewGuid().ToString("N"), "redis-6390.pid")} " +
                       "--proc-title-template \"{title} left-over\"");
        var work = Directory.CreateTempSubdirectory("cj-bench-reuse-").FullName;
        try
        {
            var (exitCode, text, errors) = await RunAsync(TimeSpan.FromMinutes(1), "bash",
                ["-c", "repo=$PWD; . bench/common.sh; cat \"$work/run/redis-6390.pid\"; stop_private_redis"],
                new Dictionary<string, string?> { ["BENCH_WORK"] = work });

            Assert.True(exitCode == 0, $"bench/common.sh exited {exitCode}: {errors}");
            Assert.Equal(left.ProcessId.ToString(), text.Trim());
            Assert.Contains($"using the Redis already running on 127.0.0.1:6390 (pid {left.ProcessId})", errors);
            Assert.False(Process.GetProcessById(left.ProcessId!.Value).HasExited); // not the harness's to stop
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task The_harness_runs_every_workload_against_ClusterJobs_and_prints_a_result_line_for_each()
    {
        var (exitCode, text, errors) = await smoke.Run;
        output.WriteLine(text);

        Assert.True(exitCode == 0, $"bench/run.sh --smoke exited {exitCode}: {errors}");
        var lines = text.Split('\n').Where(l => l.StartsWith("peer=clusterjobs ")).ToList();
        foreach (var workload in new[] { "W1", "W2", "W3", "W4" })
            Assert.Contains(lines, l => l.Contains($" workload={workload} ") && !l.Contains("jobs_per_s=nan"));
        Assert.All(lines, l => Assert.Matches(@" n=(\d+) .* completed=\1 ", l));
        // The W2 floors (bare Redis consumers, no node) run too, and every job of theirs is counted.
        foreach (var floor in new[] { "floor-blpop", "floor-take" })
            Assert.Contains(text.Split('\n'), l => l.StartsWith($"peer={floor} workload=W2 ") && Regex.IsMatch(l, @" n=(\d+) .* completed=\1 "));
        // Hangfire, the .NET peer, runs W1 to W3 through the same kit, every job counted, and ClusterJobs is set against
        // it: against the peer, never a floor (at W2 the floors' p99s are lower than any job system's).
        foreach (var workload in new[] { "W1", "W2", "W3" })
            Assert.Contains(text.Split('\n'), l => l.StartsWith($"peer=hangfire workload={workload} ") && Regex.IsMatch(l, @" n=(\d+) .* completed=\1 "));
        var p99 = (string peer) => double.Parse(Regex.Match(text, $@"^peer={peer} workload=W2 .* p99_ms=([\d.]+) .* rate=50 .*notes=1(node|proc-w10)\s*$",
            RegexOptions.Multiline).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var ratio = Regex.Match(text, @"ratio workload=W2@50/s config=1node p99_clusterjobs_over_best_peer=([\d.]+)");
        Assert.True(ratio.Success, "no W2 ratio line against the best peer");
        Assert.Equal(p99("clusterjobs") / p99("hangfire"), double.Parse(ratio.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 0.006);
        // and against each peer on its own, here the same one
        Assert.Contains($"ratio workload=W2@50/s config=1node p99_clusterjobs_over_hangfire={ratio.Groups[1].Value}", text);
        Assert.Contains("ratio workload=W4 n=20k three_nodes_over_one_node=", text);
        Assert.Contains("ratio workload=W4 n=100k three_nodes_over_one_node=", text);
        // The W4 floor: three nodes with no cluster between them, every job counted, and its ratio to one node.
        Assert.Contains(text.Split('\n'), l => l.StartsWith("peer=floor-3solo workload=W4 ") && Regex.IsMatch(l, @" n=(\d+) .* completed=\1 "));
        Assert.Contains("ratio workload=W4 n=100k floor_three_solo_nodes_over_one_node=", text);
        // The machine's yardstick, measured at the start and the end of the run, and W1 against it.
        Assert.Equal(2, text.Split('\n').Count(l => Regex.IsMatch(l, @"^machine redis-benchmark job_commands=8 pipeline=16 jobs_per_s=\d")));
        Assert.Matches(@"ratio workload=W1 n=20k over_redis_ceiling_pipeline16=-?\d+\.\d\d", text); // smoke drains can time negative (bench/run.sh)
    }

    [Fact]
    public async Task A_W2_peer_that_fell_behind_its_rate_is_marked_saturated_and_no_p99_ratio_is_taken_against_it()
    {
        // At 1,000 jobs/s Hangfire completed 541 jobs/s: its queue grew for the whole run, so its p99 (seconds) is a
        // backlog, not a wait; a ratio against it would read 0.00, as if ClusterJobs were infinitely better.
        var results = Path.Combine(smoke.Work, "saturated.txt");
        await File.WriteAllLinesAsync(results,
        [
            "peer=clusterjobs workload=W2 n=15000 jobs_per_s=1003 p50_ms=0.92 p95_ms=1.90 p99_ms=3.53 rate=1000 completed=15000 notes=1node",
            "peer=hangfire workload=W2 n=15000 jobs_per_s=541 p50_ms=5276.05 p95_ms=8781.72 p99_ms=8869.79 rate=1000 completed=15000 notes=1proc-w10",
            "peer=clusterjobs workload=W2 n=3000 jobs_per_s=201 p50_ms=1.45 p95_ms=5.42 p99_ms=9.81 rate=200 completed=3000 notes=1node",
            "peer=hangfire workload=W2 n=3000 jobs_per_s=200 p50_ms=4.32 p95_ms=13.17 p99_ms=77.56 rate=200 completed=3000 notes=1proc-w10",
            "peer=clusterjobs workload=W2 n=75000 jobs_per_s=3000 p50_ms=400.00 p95_ms=800.00 p99_ms=900.00 rate=5000 completed=75000 notes=1node",
            "peer=hangfire workload=W2 n=75000 jobs_per_s=4990 p50_ms=4.00 p95_ms=20.00 p99_ms=50.00 rate=5000 completed=75000 notes=1proc-w10",
        ]);

        var (exitCode, text, errors) = await RunAsync(TimeSpan.FromMinutes(1), "python3", [Path.Combine("bench", "summarize.py"), results],
            new Dictionary<string, string?>());
        output.WriteLine(text);

        Assert.True(exitCode == 0, $"bench/summarize.py exited {exitCode}: {errors}");
        Assert.Contains("| hangfire | W2@1000/s | 1proc-w10, saturated |", text);
        Assert.Contains("ratio workload=W2@1000/s config=1node p99_clusterjobs_over_hangfire=none (hangfire saturated: 541 of 1000 jobs/s)", text);
        Assert.Contains("ratio workload=W2@1000/s config=1node p99_clusterjobs_over_best_peer=none (best_peer saturated: 541 of 1000 jobs/s)", text);
        // where it kept up, it is a peer as any other
        Assert.Contains("| hangfire | W2@200/s | 1proc-w10 |", text);
        Assert.Contains("ratio workload=W2@200/s config=1node p99_clusterjobs_over_hangfire=0.13", text);
        // and when ClusterJobs is the one that fell behind, its ratio says so
        Assert.Contains("ratio workload=W2@5000/s config=1node p99_clusterjobs_over_hangfire=18.00 (clusterjobs saturated)", text);
    }

    [Fact]
    public async Task A_run_refuses_to_start_while_a_consumer_of_another_run_waits_on_the_bench_Redis()
    {
        var (smokeExit, _, smokeErrors) = await smoke.Run; // its Redis on 6390 is stopped by then; its build and kit are reused
        Assert.True(smokeExit == 0, $"bench/run.sh --smoke exited {smokeExit}: {smokeErrors}");
        await PortFreedAsync(6390); // the smoke run's Redis may still be exiting
        await using var redis = await RedisServer.StartBinaryAsync(port: 6390);
        await using var connection = await ConnectionMultiplexer.ConnectAsync("127.0.0.1:6390,allowAdmin=true");
        // the kit reads Redis's CPU from its pid file: without it a run would fail for another reason than the one specified
        var pid = (await connection.GetServer("127.0.0.1", 6390).InfoAsync("server")).SelectMany(g => g).Single(kv => kv.Key == "process_id").Value;
        Directory.CreateDirectory(Path.Combine(smoke.Work, "run"));
        await File.WriteAllTextAsync(Path.Combine(smoke.Work, "run", "redis-6390.pid"), pid);
        // a node left running from another run waits on its queue's wake channel
        await connection.GetSubscriber().SubscribeAsync(RedisChannel.Literal("cj:{bench}:wake"), (_, _) => { });

        var (exitCode, text, errors) = await RunAsync(TimeSpan.FromMinutes(2), "/usr/bin/python3",
            [Path.Combine("bench", "bench_clusterjobs.py"), smoke.Work, "--peer", "clusterjobs", "--mode", "1node", "--workload", "W1", "--n", "10"],
            new Dictionary<string, string?>
            {
                ["CJ_BENCH_DLL"] = Path.Combine(smoke.Work, "bin", "bench", "ClusterJobs.Bench.dll"),
                ["CJ_SEED_DLL"] = Path.Combine(smoke.Work, "bin", "seed", "ClusterJobs.Seed.dll"),
            });
        output.WriteLine(text + errors);

        Assert.NotEqual(0, exitCode);
        Assert.Contains("another consumer is connected to the bench Redis", errors);
        Assert.DoesNotContain("peer=clusterjobs", text);
    }

    static async Task PortFreedAsync(int port)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(15); DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            try
            {
                using var tcp = new System.Net.Sockets.TcpClient();
                await tcp.ConnectAsync(System.Net.IPAddress.Loopback, port);
            }
            catch (System.Net.Sockets.SocketException) { return; }
        }
        throw new TimeoutException($"port {port} still answers");
    }

    [Fact]
    public async Task Two_builds_run_in_interleaved_pairs_and_the_summary_says_which_won()
    {
        var (smokeExit, _, smokeErrors) = await smoke.Run;
        Assert.True(smokeExit == 0, $"bench/run.sh --smoke exited {smokeExit}: {smokeErrors}");
        var build = Path.Combine(smoke.Work, "bin"); // the smoke run's published build, as both A and B

        var (exitCode, text, errors) = await RunAsync(TimeSpan.FromMinutes(3), Path.Combine("bench", "ab.sh"),
            "--pairs", "2", build, build, "--", "--mode", "1node", "--workload", "W1", "--n", "300");
        output.WriteLine(text);

        Assert.True(exitCode == 0, $"bench/ab.sh exited {exitCode}: {errors}");
        // A then B in the first pair, B then A in the second: the order alternates.
        var runs = text.Split('\n').Where(l => l.StartsWith("ab pair=")).Select(l => string.Join(' ', l.Split(' ')[1..3])).ToList();
        Assert.Equal(["pair=1 build=A", "pair=1 build=B", "pair=2 build=B", "pair=2 build=A"], runs);
        Assert.All(text.Split('\n').Where(l => l.StartsWith("ab pair=")), l => Assert.Matches(@" workload=W1 n=(\d+) .* completed=\1 ", l));
        Assert.Matches(@"ab summary build=A \(.*\) jobs_per_s median=-?\d", text);
        Assert.Matches(@"ab summary build=B \(.*\) jobs_per_s median=-?\d", text);
        Assert.Matches(@"ab summary jobs_per_s b_over_a=-?\d+\.\d+ pairs_won_by_b=[0-2]/2", text);
    }

    [Fact]
    public async Task The_soak_kills_nodes_the_routers_node_Redis_and_the_seed_in_turn_and_every_job_still_succeeds()
    {
        var (smokeExit, _, smokeErrors) = await smoke.Run;
        Assert.True(smokeExit == 0, $"bench/run.sh --smoke exited {smokeExit}: {smokeErrors}");

        // Without the image's warm-up at each node start: the suite's other tests share these two cores.
        var (exitCode, text, errors) = await RunAsync(TimeSpan.FromMinutes(5), "bash", [Path.Combine("bench", "soak.sh"),
                "--seconds", "40", "--rate", "15", "--every", "4", "--settle", "120", "--build", Path.Combine(smoke.Work, "bin")],
            new Dictionary<string, string?> { ["CLUSTERJOBS_WARMUP_JOBS"] = "0" });
        output.WriteLine(text);
        output.WriteLine(errors);

        Assert.True(exitCode == 0, $"bench/soak.sh exited {exitCode}: {errors}");
        // Each kind of failure happened at least once while the producer ran...
        Assert.Matches(@"soak chaos node_kills=[1-9]\d* node_stops=[1-9]\d* router_kills=[1-9]\d* redis_kills=[1-9]\d* seed_kills=[1-9]", text);
        // ...and every job it enqueued (15/s for 40 s) ended succeeded, its handler having run to the end.
        Assert.Matches(@"soak jobs=600 succeeded=600 missing=0 never_ran=0 ", text);
    }

    /// <summary>One <c>bench/run.sh --smoke</c> for the class, in a work folder the specs can read (its published build).</summary>
    public sealed class SmokeRun : IDisposable
    {
        public string Work { get; } = Directory.CreateTempSubdirectory("cj-bench-smoke-").FullName;
        private readonly Lazy<Task<(int ExitCode, string Output, string Errors)>> _run;

        public SmokeRun() =>
            _run = new(() => RunAsync(TimeSpan.FromMinutes(8), "bash", [Path.Combine("bench", "run.sh"), "--smoke", "--peers=hangfire"], // 3-4 min on this VM on a slow day
                new Dictionary<string, string?> { ["BENCH_WORK"] = Work }));

        public Task<(int ExitCode, string Output, string Errors)> Run => _run.Value;

        public void Dispose()
        {
            try { Directory.Delete(Work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    static Task<(int ExitCode, string Output, string Errors)> RunAsync(TimeSpan timeout, string script, params string[] args) =>
        RunAsync(timeout, "bash", [script, .. args], new Dictionary<string, string?>());

    /// <summary>
    /// Runs <paramref name="program"/> from the repository root (so paths in <paramref name="args"/> are relative to it);
    /// its exit code, standard output and error. A variable of <paramref name="env"/> set to null is removed.
    /// </summary>
    static async Task<(int ExitCode, string Output, string Errors)> RunAsync(TimeSpan timeout, string program, string[] args,
        IReadOnlyDictionary<string, string?> env)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root() };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in env)
            if (v is null) info.Environment.Remove(k);
            else info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
