using Akka.Actor;
using Akka.Hosting;
using ClusterJobs.Node.Demo;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClusterJobs.Tests.Shared;

/// <summary>
/// A whole node in the test process (its own actor system on a free loopback port, one-node cluster), with every
/// message going through its serializer (serialize-messages = on). Serves the demo tasks plus any the test adds.
/// </summary>
public sealed class TestNode : IAsyncDisposable
{
    private readonly IHost _host;

    private TestNode(IHost host) => _host = host;

    public IServiceProvider Services => _host.Services;
    public JobClient Client => Services.GetRequiredService<JobClient>();
    public ActorSystem System => Services.GetRequiredService<ActorSystem>();
    public IConnectionMultiplexer Redis => Services.GetRequiredService<RedisConnectionService>().Connection;
    public RedisKeys Keys => Client.Keys;
    /// <summary>The operator dashboard and API, when the node was started with <c>HttpPort</c> set (0: a free port).</summary>
    public Uri OperatorAddress => Services.GetRequiredService<ClusterJobs.Node.Operator.OperatorHttpService>().Address
        ?? throw new InvalidOperationException("This node serves no operator API: start it with o.HttpPort = 0.");

    /// <param name="serializeMessages">
    /// Off for nodes that form a cluster with other nodes: their messages to each other cross real remoting (and so
    /// their serializers) anyway, while with it on Akka's own local cluster events go through JSON, which drops
    /// <c>Member.UpNumber</c>, so every member that joins looks oldest and the router singletons cannot settle.
    /// </param>
    /// <param name="logs">A logger provider of the test's, beside the console (to read what the node logs).</param>
    public static async Task<TestNode> StartAsync(string redisUrl, string prefix, Action<ClusterJobsOptions>? configure = null,
        Action<ClusterJobsBuilder>? tasks = null, bool serializeMessages = true, ILoggerProvider? logs = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        if (logs is not null) builder.Logging.AddProvider(logs);
        var jobs = builder.Services.AddClusterJobs(o =>
        {
            o.RedisUrl = redisUrl;
            o.KeyPrefix = prefix;
            o.Concurrency = 8;
            o.PollInterval = TimeSpan.FromMilliseconds(100);
            configure?.Invoke(o);
        }, (akka, _) => akka.AddHocon($"akka.actor.serialize-messages = {(serializeMessages ? "on" : "off")}\nakka.loglevel = WARNING\n" +
            // Terminating the actor system (CrashAsync) must not leave the cluster gracefully: only a test's Dispose does.
            "akka.coordinated-shutdown.run-by-actor-system-terminate = off", HoconAddMode.Prepend));
        jobs.AddDemoTasks();
        tasks?.Invoke(jobs);
        var host = builder.Build();
        await host.StartAsync();
        return new TestNode(host);
    }

    private bool _crashed;

    /// <summary>Waits until this node sees <paramref name="members"/> members Up (a member still joining does not count for the split-brain resolver).</summary>
    public async Task WaitForMembersUpAsync(int members, TimeSpan? timeout = null)
    {
        var cluster = Akka.Cluster.Cluster.Get(System);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (cluster.State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) < members)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{cluster.SelfAddress} saw only {cluster.State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up)} of {members} members Up.");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Dies as a killed process would, as far as the cluster sees it: the actor system stops without leaving the
    /// cluster, handing nothing over and draining nothing; the other members find it unreachable and down it.
    /// </summary>
    public async Task CrashAsync()
    {
        _crashed = true;
        await System.Terminate();
        _host.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (_crashed) return;
        await _host.StopAsync(TimeSpan.FromSeconds(10));
        _host.Dispose();
    }
}
