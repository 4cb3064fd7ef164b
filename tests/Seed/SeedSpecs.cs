using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Tests.Shared;

namespace ClusterJobs.Seed.Tests;

/// <summary>The seed process: a fixed address that cluster members join through.</summary>
public sealed class SeedSpecs
{
    [Fact]
    public async Task A_member_that_lists_the_seed_in_CLUSTER_SEEDS_joins_the_cluster_and_sees_the_seed()
    {
        var seedPort = RedisServer.FreePort();
        await using var seed = ClusterProcess.StartSeed(seedPort);
        await seed.WaitForOutputAsync("Seed up at akka.tcp://clusterjobs@127.0.0.1:" + seedPort, TimeSpan.FromSeconds(30));

        var settings = ClusterBootstrap.FromEnvironment(name => name switch
        {
            "CLUSTER_SEEDS" => ClusterProcess.SeedAddress(seedPort),
            "CLUSTER_IP" => "127.0.0.1",
            _ => null,
        });
        var config = ConfigurationFactory.ParseString($$"""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
            akka.cluster.seed-nodes = ["{{settings.Seeds.Single()}}"]
            akka.loglevel = WARNING
            """).WithFallback(ClusterBootstrap.LoadClusterHocon());
        using var member = ActorSystem.Create(settings.SystemName, config);
        var cluster = Cluster.Get(member);
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());

        await up.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains(cluster.State.Members, m => m.Address.Port == seedPort && m.HasRole("seed"));
        await seed.WaitForOutputAsync($"is JOINING", TimeSpan.FromSeconds(5));
        await CoordinatedShutdown.Get(member).Run(CoordinatedShutdown.ClrExitReason.Instance);
    }

    [Fact]
    public async Task A_seed_given_a_bad_port_refuses_to_start_with_a_clear_message()
    {
        await using var bad = ClusterProcess.Start("ClusterJobs.Seed", "seed", new Dictionary<string, string> { ["CLUSTER_PORT"] = "not-a-port" });
        Assert.Equal(2, await bad.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("CLUSTER_PORT 'not-a-port' is not a port number", bad.Output);
    }

    [Fact]
    public async Task A_seed_whose_port_is_taken_refuses_to_start_saying_so()
    {
        // A second seed on a laptop, on the default port the first one holds.
        using var first = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        first.Start();
        var port = ((System.Net.IPEndPoint)first.LocalEndpoint).Port;
        await using var second = ClusterProcess.Start("ClusterJobs.Seed", "seed", new Dictionary<string, string>
        {
            ["CLUSTER_IP"] = "127.0.0.1", ["CLUSTER_PORT"] = port.ToString(),
        });

        Assert.Equal(2, await second.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains($"Failed to bind to [127.0.0.1:{port}]: the address is already in use", second.Output);
        Assert.Contains("Set CLUSTER_PORT to a free port", second.Output);
        Assert.DoesNotContain("Unhandled exception", second.Output);
    }
}

/// <summary>How CLUSTER_* variables become cluster settings (shared by the seed and the nodes).</summary>
public sealed class ClusterBootstrapSpecs
{
    [Fact]
    public void Seeds_ports_and_the_advertised_address_come_from_the_environment()
    {
        var env = new Dictionary<string, string?>
        {
            ["CLUSTER_IP"] = "node-3", ["CLUSTER_PORT"] = "5000",
            ["CLUSTER_SEEDS"] = "akka.tcp://clusterjobs@seed:4053, akka.tcp://clusterjobs@seed2:4053",
        };
        var settings = ClusterBootstrap.FromEnvironment(n => env.GetValueOrDefault(n), roles: ["node"]);
        Assert.Equal("node-3", settings.Host);
        Assert.Equal(5000, settings.Port);
        Assert.Equal(["akka.tcp://clusterjobs@seed:4053", "akka.tcp://clusterjobs@seed2:4053"], settings.Seeds);
        Assert.Equal(["node"], settings.Roles);
    }

    [Fact]
    public void With_nothing_set_a_process_is_a_loopback_cluster_of_its_own()
    {
        var settings = ClusterBootstrap.FromEnvironment(_ => null, defaultPort: 4053);
        Assert.Equal("127.0.0.1", settings.Host);
        Assert.Equal(4053, settings.Port);
        Assert.Empty(settings.Seeds);
        Assert.Equal("clusterjobs", settings.SystemName);
        Assert.Null(settings.HeartbeatPause); // cluster.hocon's failure detector applies
    }

    [Fact]
    public void A_busy_machine_can_give_the_failure_detector_a_longer_pause()
    {
        var settings = ClusterBootstrap.FromEnvironment(n => n == "CLUSTER_HEARTBEAT_PAUSE" ? "6.5" : null);
        Assert.Equal(TimeSpan.FromSeconds(6.5), settings.HeartbeatPause);
    }

    [Fact]
    public async Task With_CLUSTER_MIN_MEMBERS_no_member_is_up_until_that_many_have_joined()
    {
        var settings = ClusterBootstrap.FromEnvironment(n => n == "CLUSTER_MIN_MEMBERS" ? "2" : null);
        Assert.Equal(2, settings.MinMembers);
        Config MemberConfig(string seed) => ConfigurationFactory.ParseString($$"""
            akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
            akka.cluster.seed-nodes = ["{{seed}}"]
            akka.loglevel = WARNING
            """).WithFallback(settings.Overrides()).WithFallback(ClusterBootstrap.LoadClusterHocon());

        using var first = ActorSystem.Create(settings.SystemName, ConfigurationFactory.ParseString(
                "akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }\nakka.loglevel = WARNING")
            .WithFallback(settings.Overrides()).WithFallback(ClusterBootstrap.LoadClusterHocon()));
        var firstCluster = Cluster.Get(first);
        var firstUp = new TaskCompletionSource();
        firstCluster.RegisterOnMemberUp(() => firstUp.TrySetResult());
        firstCluster.Join(firstCluster.SelfAddress);

        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(firstUp.Task.IsCompleted); // alone: joined, not up
        Assert.Equal(MemberStatus.Joining, firstCluster.State.Members.Single().Status);

        using var second = ActorSystem.Create(settings.SystemName, MemberConfig(firstCluster.SelfAddress.ToString()));
        var secondUp = new TaskCompletionSource();
        Cluster.Get(second).RegisterOnMemberUp(() => secondUp.TrySetResult());

        await Task.WhenAll(firstUp.Task, secondUp.Task).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(firstCluster.State.Members, m => Assert.Equal(MemberStatus.Up, m.Status));
        await Task.WhenAll(CoordinatedShutdown.Get(second).Run(CoordinatedShutdown.ClrExitReason.Instance),
            CoordinatedShutdown.Get(first).Run(CoordinatedShutdown.ClrExitReason.Instance));
    }

    [Theory]
    [InlineData("CLUSTER_PORT", "70000", "is not a port number")]
    [InlineData("CLUSTER_MIN_MEMBERS", "0", "is not a number of members")]
    [InlineData("CLUSTER_SEEDS", "seed:4053", "must look like akka.tcp://")]
    [InlineData("CLUSTER_SEEDS", "akka.tcp://clusterjobs@seed:port", "must look like akka.tcp://")]
    [InlineData("CLUSTER_SEEDS", "akka.tcp://clusterjobs@seed", "needs a host and a port")]
    [InlineData("CLUSTER_SEEDS", "akka.tcp://clusterjobs@seed:4053, akka.tcp://jobs@seed2:4053", "is a member of actor system 'jobs'")]
    [InlineData("CLUSTER_NAME", "jobs/eu", "is not an actor system name")]
    [InlineData("CLUSTER_IP", "10.0.0..1", "is neither an IP address nor a host name")]
    [InlineData("CLUSTER_IP", "node 1", "is neither an IP address nor a host name")]
    [InlineData("CLUSTER_HEARTBEAT_PAUSE", "soon", "is not a number of seconds from 0.001 to 3600")]
    [InlineData("CLUSTER_HEARTBEAT_PAUSE", "-1", "is not a number of seconds from 0.001 to 3600")]
    [InlineData("CLUSTER_HEARTBEAT_PAUSE", "Infinity", "is not a number of seconds from 0.001 to 3600")] // overflowed a time span
    [InlineData("CLUSTER_HEARTBEAT_PAUSE", "NaN", "is not a number of seconds from 0.001 to 3600")]
    [InlineData("CLUSTER_HEARTBEAT_PAUSE", "3000000", "is not a number of seconds from 0.001 to 3600")] // overflowed int ms in HOCON
    public void A_malformed_variable_is_refused_naming_it(string name, string value, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => ClusterBootstrap.FromEnvironment(n => n == name ? value : null));
        Assert.Contains(name, ex.Message);
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void The_shared_cluster_defaults_configure_a_keep_majority_split_brain_resolver()
    {
        var config = ClusterBootstrap.LoadClusterHocon();
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal("cluster", config.GetString("akka.actor.provider"));
    }
}
