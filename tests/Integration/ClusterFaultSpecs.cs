using System.Diagnostics;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// A seed and three nodes as real processes, configured from the environment as in production, running 10,000 jobs
/// on a real Redis while something fails: a node is killed (kill -9), the node hosting the queue's router is killed,
/// a node is stopped gracefully (SIGTERM), Redis itself is restarted. No job is lost; only jobs that were in flight
/// when a node died run again.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class ClusterFaultSpecs(BrokerFixture brokers, ITestOutputHelper output) : IAsyncLifetime
{
    private const int JobCount = 10_000;
    private const int Concurrency = 16;
    private const string RouterStarted = "Singleton manager started singleton actor";
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(150);
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private readonly List<IAsyncDisposable> _resources = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // Processes first (they hold connections to Redis), then clients and servers.
        foreach (var resource in Enumerable.Reverse(_resources).OrderBy(r => r is ClusterProcess ? 0 : 1))
        {
            try { await resource.DisposeAsync(); }
            catch (Exception ex) { output.WriteLine($"cleanup: {ex.Message}"); }
        }
    }

    [Fact]
    public async Task A_node_killed_mid_run_loses_no_job_and_its_jobs_run_again_elsewhere_within_seconds()
    {
        var cluster = await StartClusterAsync(brokers.RealRedisUrl);
        var run = await StartRunAsync(brokers.RealRedisUrl, cluster);
        await run.Events.WaitForSucceededAsync(JobCount / 4, RunTimeout);

        var victim = cluster.Nodes[1]; // not the router's node: that is node-1, the oldest
        var (killedAt, inFlight) = await KillAsync(victim, run);
        var jobs = await run.WaitAsync();

        AssertAllSucceededWithTheirResults(jobs);
        var lost = jobs.Where(j => j.Lost > 0).ToList();
        var rerunWithin = lost.Count == 0 ? TimeSpan.Zero : lost.Max(j => j.Started!.Value) - killedAt;
        output.WriteLine($"killed {victim.Name} with {inFlight} job(s) leased in the whole cluster; {lost.Count} delivery(ies) lost " +
            $"(its jobs), all run again elsewhere, the last of them {rerunWithin.TotalSeconds:F1} s after the kill " +
            $"(first back in the queue after {FirstAfter(run.Events.Times("queued"), killedAt)}); the run finished " +
            $"{(jobs.Max(j => j.Ended!.Value) - killedAt).TotalSeconds:F1} s after the kill; {Shares(jobs, cluster)}");
        Assert.NotEmpty(lost); // the kill caught jobs in flight on the victim
        Assert.True(lost.Count <= inFlight, $"{lost.Count} jobs ran again but only {inFlight} were in flight at the kill");
        Assert.All(lost, j => Assert.NotEqual(cluster.Addresses[1], j.Node));
        Assert.True(rerunWithin <= TimeSpan.FromSeconds(20), $"the killed node's jobs ran again only after {rerunWithin.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task The_node_hosting_the_router_killed_mid_run_stalls_the_queue_only_until_the_router_restarts_elsewhere()
    {
        var cluster = await StartClusterAsync(brokers.RealRedisUrl);
        var run = await StartRunAsync(brokers.RealRedisUrl, cluster);
        await run.Events.WaitForSucceededAsync(JobCount / 4, RunTimeout);

        var victim = cluster.Nodes[0]; // the oldest node: it hosts the router of queue `default`
        var (killedAt, inFlight) = await KillAsync(victim, run);
        var takeover = Task.WhenAny(cluster.Nodes.Skip(1).Select(async n =>
        {
            await n.WaitForOutputAsync(RouterStarted, RunTimeout);
            return (Node: n.Name, After: DateTimeOffset.UtcNow - killedAt);
        }));
        var jobs = await run.WaitAsync();
        var (newHost, routerAfter) = await await takeover;

        AssertAllSucceededWithTheirResults(jobs);
        var lost = jobs.Where(j => j.Lost > 0).ToList();
        var stall = ClusterRun.LongestGap(killedAt, run.Events.Times("succeeded"));
        var rerunWithin = lost.Count == 0 ? TimeSpan.Zero : lost.Max(j => j.Started!.Value) - killedAt;
        output.WriteLine($"killed {victim.Name} (the router's node) with {inFlight} job(s) leased; the router restarted on {newHost} " +
            $"{routerAfter.TotalSeconds:F1} s after the kill (seen in its log); the queue stalled {stall.TotalSeconds:F1} s " +
            $"(longest time without a job succeeding); {lost.Count} delivery(ies) lost, run again within {rerunWithin.TotalSeconds:F1} s; " +
            $"the run finished {(jobs.Max(j => j.Ended!.Value) - killedAt).TotalSeconds:F1} s after the kill; {Shares(jobs, cluster)}");
        Assert.NotEmpty(lost); // the kill caught jobs in flight on the router's node (or leased by its router)
        Assert.True(lost.Count <= inFlight, $"{lost.Count} jobs ran again but only {inFlight} were in flight at the kill");
        Assert.All(lost, j => Assert.NotEqual(cluster.Addresses[0], j.Node));
        // The router singleton restarts only once the dead node is downed (failure detection, then the split-brain
        // resolver's stable-after of 5 s) and removed, plus the resolver's down-removal margin (stable-after again):
        // about 15-18 s here. The bound leaves room for a slow machine.
        Assert.True(stall <= TimeSpan.FromSeconds(30), $"the queue stalled {stall.TotalSeconds:F1} s after its router's node died");
        Assert.True(rerunWithin <= TimeSpan.FromSeconds(30), $"the lost jobs ran again only after {rerunWithin.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task A_node_stopped_with_sigterm_mid_run_finishes_its_jobs_and_exits_cleanly_and_no_job_runs_twice()
    {
        var cluster = await StartClusterAsync(brokers.RealRedisUrl, drainSeconds: 10);
        var run = await StartRunAsync(brokers.RealRedisUrl, cluster);
        await run.Events.WaitForSucceededAsync(JobCount / 4, RunTimeout);

        var victim = cluster.Nodes[1];
        var stopping = DateTimeOffset.UtcNow;
        victim.Terminate();
        var exitCode = await victim.WaitForExitAsync(TimeSpan.FromSeconds(10 + 20));
        var exitedAfter = DateTimeOffset.UtcNow - stopping;
        var jobs = await run.WaitAsync();

        AssertAllSucceededWithTheirResults(jobs);
        var finishedWhileStopping = jobs.Count(j => j.Node == cluster.Addresses[1] && j.Ended >= stopping);
        output.WriteLine($"SIGTERM to {victim.Name}: it finished {finishedWhileStopping} job(s) after the signal and exited with " +
            $"{exitCode} {exitedAfter.TotalSeconds:F1} s later; lost deliveries: {jobs.Count(j => j.Lost > 0)}; {Shares(jobs, cluster)}");
        Assert.True(exitCode == 0, $"{victim.Name} exited with {exitCode} after SIGTERM; its last output:\n{victim.Tail(60)}");
        Assert.True(exitedAfter <= TimeSpan.FromSeconds(10 + 15), $"exited only {exitedAfter.TotalSeconds:F1} s after SIGTERM");
        Assert.All(jobs, j => Assert.Equal(0, j.Lost)); // nothing it ran was lost or handed out twice
        Assert.Contains(jobs, j => j.Node == cluster.Addresses[1]);
    }

    [Fact]
    public async Task Redis_restarted_mid_run_with_an_append_only_file_loses_no_acknowledged_job_and_the_nodes_carry_on()
    {
        // Every write is fsynced before Redis answers it, so whatever it acknowledged survives a crash.
        const string durable = "--appendfsync always";
        var redis = Track(await RedisServer.StartBinaryAsync(appendOnly: true, port: RedisServer.PortNoOneElseIsGiven(), extraArgs: durable));
        var cluster = await StartClusterAsync(redis.Url);
        await using var client = await JobClient.ConnectAsync(redis.Url, new JobClientOptions { KeyPrefix = _prefix });

        // The producer keeps enqueueing through the outage; an enqueue that fails was not acknowledged and is retried.
        var acknowledged = new string?[JobCount];
        var failedEnqueues = 0;
        var producer = Task.Run(async () =>
        {
            for (var start = 0; start < JobCount; start += 250)
                await Task.WhenAll(Enumerable.Range(start, Math.Min(250, JobCount - start)).Select(async i =>
                {
                    var (task, args) = Job(i);
                    while (true)
                    {
                        try { acknowledged[i] = await client.EnqueueAsync(task, args); return; }
                        catch (Exception ex) when (ex is RedisException or TimeoutException)
                        {
                            Interlocked.Increment(ref failedEnqueues);
                            await Task.Delay(200);
                        }
                    }
                }));
        });
        await ClusterRun.WaitUntilAsync(() => Task.FromResult(acknowledged.Count(id => id is not null) >= JobCount * 3 / 10 || producer.IsCompleted),
            RunTimeout, "30% of the jobs enqueued");
        // ... and some of them done, so that jobs are running and results being written when Redis dies.
        var db = Track(await RedisConnection.ConnectAsync(redis.Url, "tests")).GetDatabase();
        await ClusterRun.WaitUntilAsync(async () => await db.SortedSetLengthAsync(client.Keys.Queue("default").Leased) > 0, RunTimeout, "jobs running");

        var ackedBefore = acknowledged.Count(id => id is not null);
        var crashedAt = DateTimeOffset.UtcNow;
        redis.Kill();
        await Task.Delay(TimeSpan.FromSeconds(3));
        var restarted = Track(await RedisServer.StartBinaryAsync(appendOnly: true, port: redis.Port, dir: redis.Dir, extraArgs: durable));
        var restartedAt = DateTimeOffset.UtcNow;
        var downFor = restartedAt - crashedAt;
        await producer.WaitAsync(RunTimeout);
        var ids = acknowledged.Select(id => id!).ToArray();
        var jobs = await WithDiagnostics(cluster, ClusterRun.WaitAllFinishedAsync(db, client.Keys, ids, RunTimeout));

        var resumedAfter = FirstAfter(jobs.Select(j => j.Ended!.Value), restartedAt);
        output.WriteLine($"Redis killed with {ackedBefore} of {JobCount} enqueues acknowledged and restarted {downFor.TotalSeconds:F1} s later " +
            $"from its append-only file; {failedEnqueues} enqueue attempt(s) failed during the outage and were retried; jobs finished " +
            $"again {resumedAfter} after the restart; all {JobCount} acknowledged jobs succeeded; lost deliveries: " +
            $"{jobs.Count(j => j.Lost > 0)}; {Shares(jobs, cluster)}");
        AssertAllSucceededWithTheirResults(jobs);
        Assert.All(cluster.Nodes, n => Assert.False(n.HasExited, $"{n.Name} exited: the nodes should reconnect by themselves"));
        // ... and every one of them ran jobs after the restart, on its old connection.
        Assert.Equal(cluster.Addresses.Order(), jobs.Where(j => j.Ended > restartedAt).Select(j => j.Node!).Distinct().Order());
    }

    // ---- the cluster and the run -------------------------------------------------------------------------------------

    private sealed record Cluster(ClusterProcess Seed, ClusterProcess[] Nodes, string[] Addresses);

    /// <summary>
    /// The seed, then node-1 (the oldest, so it hosts the router), then node-2 and node-3, which must find the router on
    /// node-1. Each node on a fixed port, so that a job's <c>node</c> names the process that ran it.
    /// </summary>
    private async Task<Cluster> StartClusterAsync(string redisUrl, int? drainSeconds = null)
    {
        var seedPort = RedisServer.FreePort();
        var seed = Track(ClusterProcess.StartSeed(seedPort));
        var ports = Enumerable.Range(0, 3).Select(_ => RedisServer.FreePort()).ToArray();
        ClusterProcess Start(int i)
        {
            var env = new Dictionary<string, string>
            {
                ["REDIS_URL"] = redisUrl,
                ["CLUSTERJOBS_PREFIX"] = _prefix,
                ["CLUSTER_IP"] = "127.0.0.1",
                ["CLUSTER_PORT"] = ports[i].ToString(),
                ["CLUSTER_SEEDS"] = ClusterProcess.SeedAddress(seedPort),
                ["CLUSTERJOBS_CONCURRENCY"] = Concurrency.ToString(),
                ["CLUSTERJOBS_LEASE_SECONDS"] = "10",
                ["CLUSTERJOBS_QUEUES"] = "default",
            };
            if (drainSeconds is { } d) env["CLUSTERJOBS_DRAIN_SECONDS"] = d.ToString();
            return Track(ClusterProcess.StartNode($"node-{i + 1}", env));
        }

        var first = Start(0);
        await first.WaitForOutputAsync(RouterStarted, Startup);
        var others = new[] { Start(1), Start(2) };
        await Task.WhenAll(others.Select(n => n.WaitForOutputAsync($"Singleton identified at [{ClusterProcess.SeedAddress(ports[0])}/", Startup)));
        Assert.DoesNotContain(others, n => n.Output.Contains(RouterStarted));
        await ClusterProcess.WaitForMembersUpAsync([seed, first, .. others], 4, Startup); // joining members do not count for keep-majority
        output.WriteLine($"[{_clock.Elapsed.TotalSeconds:F1} s] seed and 3 nodes up; the router is on node-1");
        return new Cluster(seed, [first, .. others], ports.Select(ClusterProcess.SeedAddress).ToArray());
    }

    /// <summary>Half `add` jobs (instant), half `sleep` jobs of 20-50 ms, so that the run lasts several seconds.</summary>
    private static (string Task, object Args) Job(int i) => i % 2 == 0 ? ("add", new[] { i, i }) : ("sleep", new { ms = SleepMs(i) });

    private static int SleepMs(int i) => 20 + i % 31;

    private sealed record Run(QueueEvents Events, IDatabase Db, string[] Ids, Func<Task<IReadOnlyList<JobFacts>>> WaitAsync);

    private async Task<Run> StartRunAsync(string redisUrl, Cluster cluster)
    {
        var events = Track(await QueueEvents.ListenAsync(redisUrl, new RedisKeys(_prefix)));
        var client = Track(await JobClient.ConnectAsync(redisUrl, new JobClientOptions { KeyPrefix = _prefix }));
        var redis = Track(await RedisConnection.ConnectAsync(redisUrl, "tests"));
        var started = _clock.Elapsed;
        var ids = await ClusterRun.EnqueueAsync(client, JobCount, Job);
        output.WriteLine($"[{_clock.Elapsed.TotalSeconds:F1} s] enqueued {JobCount} jobs in {(_clock.Elapsed - started).TotalSeconds:F1} s " +
            $"({events.Succeeded} already succeeded)");
        return new Run(events, redis.GetDatabase(), ids, async () =>
        {
            var jobs = await WithDiagnostics(cluster, ClusterRun.WaitAllFinishedAsync(redis.GetDatabase(), client.Keys, ids, RunTimeout));
            output.WriteLine($"[{_clock.Elapsed.TotalSeconds:F1} s] all {JobCount} jobs finished, {(_clock.Elapsed - started).TotalSeconds:F1} s after the first enqueue");
            return jobs;
        });
    }

    /// <summary>
    /// Kills the node (SIGKILL) and counts the jobs leased in Redis right then (taken and not finished, wherever they
    /// run): the most that can have been lost with it, and so run twice.
    /// </summary>
    private async Task<(DateTimeOffset At, long InFlight)> KillAsync(ClusterProcess victim, Run run)
    {
        var leased = new RedisKeys(_prefix).Queue("default").Leased;
        var at = DateTimeOffset.UtcNow;
        victim.Kill9();
        var inFlight = await run.Db.SortedSetLengthAsync(leased);
        output.WriteLine($"[{_clock.Elapsed.TotalSeconds:F1} s] killed {victim.Name} after {run.Events.Succeeded} jobs succeeded; {inFlight} leased");
        return (at, inFlight);
    }

    /// <summary>A run that does not finish prints what the processes still alive last logged.</summary>
    private async Task<T> WithDiagnostics<T>(Cluster cluster, Task<T> wait)
    {
        try { return await wait; }
        catch (TimeoutException)
        {
            foreach (var p in cluster.Nodes.Prepend(cluster.Seed).Where(p => !p.HasExited))
                output.WriteLine($"---- {p.Name}, last lines:\n{p.Tail(30)}");
            throw;
        }
    }

    private static void AssertAllSucceededWithTheirResults(IReadOnlyList<JobFacts> jobs)
    {
        Assert.Equal(JobCount, jobs.Count);
        var notSucceeded = jobs.Where(j => j.State != "succeeded").ToList();
        Assert.True(notSucceeded.Count == 0, $"{notSucceeded.Count} job(s) did not succeed: " +
            string.Join(", ", notSucceeded.GroupBy(j => j.State ?? "(no record)").Select(g => $"{g.Count()} {g.Key}")));
        Assert.Equal(Enumerable.Range(0, JobCount).Select(i => i % 2 == 0 ? 2L * i : SleepMs(i)), jobs.Select(j => long.Parse(j.Result!)));
        Assert.All(jobs, j => Assert.Equal(1, j.Attempts)); // a lost delivery does not use up an attempt
    }

    private static string Shares(IReadOnlyList<JobFacts> jobs, Cluster cluster) =>
        "jobs per node: " + string.Join(", ", cluster.Addresses.Select((a, i) => $"{cluster.Nodes[i].Name} {jobs.Count(j => j.Node == a)}"));

    private static string FirstAfter(IEnumerable<DateTimeOffset> times, DateTimeOffset from) =>
        times.Where(t => t >= from).Order().FirstOrDefault() is var first && first != default ? $"{(first - from).TotalSeconds:F1} s" : "never";

    private T Track<T>(T resource) where T : IAsyncDisposable
    {
        _resources.Add(resource);
        return resource;
    }
}
