using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Routing;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// Several whole nodes in this process, each its own actor system on a loopback port, forming one cluster on a real
/// Redis: work follows free capacity, a joining node adds capacity, and the queue's router moves when its node leaves.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class ClusterSpecs(BrokerFixture brokers, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private readonly int _seedPort = RedisServer.FreePort();
    private readonly List<TestNode> _nodes = [];
    private JobClient _client = null!;
    private StackExchange.Redis.IConnectionMultiplexer _redis = null!;
    private static readonly TimeSpan Formation = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(90);

    public async Task InitializeAsync()
    {
        _client = await JobClient.ConnectAsync(brokers.RealRedisUrl, new JobClientOptions { KeyPrefix = _prefix });
        _redis = await RedisConnection.ConnectAsync(brokers.RealRedisUrl, "tests");
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        await _client.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Jobs_spread_over_the_nodes_in_proportion_to_their_free_capacity()
    {
        var small = await StartMemberAsync(concurrency: 2);
        var medium = await StartMemberAsync(concurrency: 4);
        var large = await StartMemberAsync(concurrency: 8);
        await WaitForClusterAsync(small, medium, large);

        var clock = Stopwatch.StartNew();
        var ids = await ClusterRun.EnqueueAsync(_client, 300, _ => ("sleep", new { ms = 50 }));
        var jobs = await WaitAllAsync(ids);

        Assert.All(jobs, j => Assert.Equal("succeeded", j.State));
        var ran = new[] { small, medium, large }.Select(n => jobs.Count(j => j.Node == Address(n))).ToArray();
        output.WriteLine($"300 sleep(50 ms) jobs in {clock.ElapsedMilliseconds} ms: concurrency 2 ran {ran[0]}, 4 ran {ran[1]}, 8 ran {ran[2]} " +
            $"(proportional would be {300 * 2 / 14}, {300 * 4 / 14}, {300 * 8 / 14})");
        Assert.Equal(300, ran.Sum());
        Assert.True(ran[0] > 0, "the node with 2 slots ran no job");
        Assert.True(ran[2] > ran[1] && ran[1] > ran[0], $"shares should follow capacity 8 > 4 > 2, got {ran[2]}, {ran[1]}, {ran[0]}");
    }

    [Fact]
    public async Task A_node_that_joins_mid_run_takes_work_without_the_running_node_restarting()
    {
        var first = await StartMemberAsync(concurrency: 2);
        await WaitForClusterAsync(first);
        var firstIdentity = Cluster.Get(first.System).SelfUniqueAddress;
        var clock = Stopwatch.StartNew();
        var ids = await ClusterRun.EnqueueAsync(_client, 120, _ => ("sleep", new { ms = 150 }));
        await ClusterRun.WaitUntilAsync(async () => (await ReadAsync(ids)).Count(j => j.State == "succeeded") >= 6,
            RunTimeout, "6 jobs succeeded on the first node");

        var joining = DateTimeOffset.UtcNow;
        var second = await StartMemberAsync(concurrency: 4);
        await WaitForClusterAsync(first, second);
        var jobs = await WaitAllAsync(ids);

        Assert.All(jobs, j => Assert.Equal("succeeded", j.State));
        var byFirst = jobs.Where(j => j.Node == Address(first)).ToList();
        var bySecond = jobs.Where(j => j.Node == Address(second)).ToList();
        output.WriteLine($"120 sleep(150 ms) jobs in {clock.ElapsedMilliseconds} ms (one 2-slot node alone: ~{120 * 150 / 2} ms); " +
            $"first node ran {byFirst.Count}, the node that joined ran {bySecond.Count}, " +
            $"its first job started {(bySecond.Min(j => j.Started) - joining)?.TotalMilliseconds:F0} ms after it was started");
        Assert.Equal(120, byFirst.Count + bySecond.Count);
        Assert.NotEmpty(bySecond);
        Assert.All(bySecond, j => Assert.True(j.Started >= joining, "a job ran on the second node before it was started"));
        // The first node kept working through the join, as the same member (same incarnation), still Up.
        var secondStarted = bySecond.Min(j => j.Started);
        Assert.Contains(byFirst, j => j.Started > secondStarted);
        Assert.Equal(firstIdentity, Cluster.Get(first.System).SelfUniqueAddress);
        Assert.Equal(MemberStatus.Up, Cluster.Get(first.System).SelfMember.Status);
    }

    [Fact]
    public async Task When_the_node_hosting_the_router_leaves_the_router_moves_and_every_job_completes_on_the_survivor()
    {
        var first = await StartMemberAsync(concurrency: 4);
        var second = await StartMemberAsync(concurrency: 4);
        await WaitForClusterAsync(first, second);
        var (firstAddress, secondAddress) = (Address(first), Address(second));
        Assert.True(await HostsRouterAsync(first), "the router singleton should be on the oldest node (the first started)");
        Assert.False(await HostsRouterAsync(second));
        var ids = await ClusterRun.EnqueueAsync(_client, 300, _ => ("sleep", new { ms = 100 }));
        await ClusterRun.WaitUntilAsync(async () => (await ReadAsync(ids)).Count(j => j.State == "succeeded") >= 40,
            RunTimeout, "40 jobs succeeded");

        var leaving = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        _nodes.Remove(first);
        await first.DisposeAsync(); // a graceful leave: drain, hand the singleton over, leave the cluster
        var left = DateTimeOffset.UtcNow;
        var leaveTook = clock.Elapsed;
        await ClusterRun.WaitUntilAsync(() => HostsRouterAsync(second), Formation, "the router singleton moved to the survivor");
        var movedAfter = clock.Elapsed;
        var jobs = await WaitAllAsync(ids);

        Assert.All(jobs, j => Assert.Equal("succeeded", j.State));
        Assert.All(jobs, j => Assert.Equal(1, j.Attempts));
        var lost = jobs.Count(j => j.Lost > 0);
        var afterLeave = jobs.Where(j => j.Started > left).ToList();
        output.WriteLine($"leave took {leaveTook.TotalMilliseconds:F0} ms, router on the survivor {movedAfter.TotalMilliseconds:F0} ms after the leave began; " +
            $"first node ran {jobs.Count(j => j.Node == firstAddress)}, survivor {jobs.Count(j => j.Node == secondAddress)} " +
            $"({afterLeave.Count} started after the leave); lost deliveries: {lost}; last job finished " +
            $"{(jobs.Max(j => j.Ended) - leaving)?.TotalMilliseconds:F0} ms after the leave began");
        Assert.NotEmpty(afterLeave);
        Assert.All(afterLeave, j => Assert.Equal(secondAddress, j.Node));
        Assert.All(jobs.Where(j => j.Node == firstAddress), j => Assert.True(j.Ended <= left, "the leaving node recorded a job after it left"));
        // Lost deliveries are printed, not asserted: the leaving router hands its buffered jobs back, but a take still in
        // flight when it hands over is dropped (rarely; those jobs run after their lease expires). See QueueRouterActor's
        // HandOver. Once that is fixed, this spec should demand 0.
    }

    [Fact]
    public async Task While_the_queue_has_a_backlog_a_node_leases_its_own_share_so_a_running_job_names_the_node_running_it()
    {
        var first = await StartMemberAsync(concurrency: 2);
        var second = await StartMemberAsync(concurrency: 4);
        await WaitForClusterAsync(first, second);
        Assert.True(await HostsRouterAsync(first), "the router singleton should be on the oldest node (the first started)");
        var ids = await ClusterRun.EnqueueAsync(_client, 80, _ => ("sleep", new { ms = 200 }));

        // The router's node no longer leases every job for everyone: the second node's own takes put its name on the
        // jobs it runs from the moment they are leased, not only once they are recorded.
        var seen = new HashSet<string>();
        await ClusterRun.WaitUntilAsync(async () =>
        {
            foreach (var job in (await ReadAsync(ids)).Where(j => j.State == "running" && j.Node == Address(second))) seen.Add(job.Id);
            return seen.Count >= 8;
        }, RunTimeout, "8 jobs seen running under the second node's name");
        var jobs = await WaitAllAsync(ids);

        Assert.All(jobs, j => Assert.Equal("succeeded", j.State));
        Assert.All(jobs, j => Assert.Equal(1, j.Attempts));
        Assert.All(seen, id => Assert.Equal(Address(second), jobs.Single(j => j.Id == id).Node));
        output.WriteLine($"first node ran {jobs.Count(j => j.Node == Address(first))}, second {jobs.Count(j => j.Node == Address(second))}; " +
            $"{seen.Count} seen running under the second node's name");
    }

    private Task<IReadOnlyList<JobFacts>> ReadAsync(IReadOnlyList<string> ids) => ClusterRun.ReadAsync(_redis.GetDatabase(), _client.Keys, ids);

    private Task<IReadOnlyList<JobFacts>> WaitAllAsync(IReadOnlyList<string> ids) =>
        ClusterRun.WaitAllFinishedAsync(_redis.GetDatabase(), _client.Keys, ids, RunTimeout);

    private async Task<TestNode> StartMemberAsync(int concurrency)
    {
        var port = _nodes.Count == 0 ? _seedPort : RedisServer.FreePort();
        var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix, o =>
        {
            o.Concurrency = concurrency;
            o.LeaseDuration = TimeSpan.FromSeconds(3);
            o.DrainGrace = TimeSpan.FromSeconds(5);
            // The first member seeds itself; the others join it.
            o.Cluster = new ClusterBootstrap { Host = "127.0.0.1", Port = port, Seeds = [ClusterProcess.SeedAddress(_seedPort)] };
        }, serializeMessages: false); // messages between the nodes cross real remoting; see TestNode.StartAsync
        _nodes.Add(node);
        return node;
    }

    /// <summary>Every node sees every other Up, and the router has heard from every node's worker pool.</summary>
    private static async Task WaitForClusterAsync(params TestNode[] nodes)
    {
        await ClusterRun.WaitUntilAsync(() => Task.FromResult(nodes.All(n =>
                Cluster.Get(n.System).State.Members.Count(m => m.Status == MemberStatus.Up) == nodes.Length)),
            Formation, $"{nodes.Length} members Up");
        await ClusterRun.WaitUntilAsync(async () =>
        {
            try
            {
                var router = nodes[0].Services.GetRequiredService<QueueRouters>()["default"];
                var status = await router.Ask<QueueRouter.RouterStatus>(QueueRouter.GetStatus.Instance, TimeSpan.FromSeconds(2));
                return status.Pools == nodes.Length;
            }
            catch (Exception ex) when (ex is TimeoutException or AskTimeoutException) { return false; }
        }, Formation, $"the router knows the worker pools of all {nodes.Length} nodes");
    }

    private static async Task<bool> HostsRouterAsync(TestNode node)
    {
        var identity = await node.System.ActorSelection("/user/router-default/router").Ask<ActorIdentity>(new Identify("router"), TimeSpan.FromSeconds(3));
        return identity.Subject is not null;
    }

    private static string Address(TestNode node) => Cluster.Get(node.System).SelfAddress.ToString();
}
