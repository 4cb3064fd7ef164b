using ClusterJobs.Node.Hosting;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace ClusterJobs.Node.Tests;

public sealed class NodeConfigurationSpecs
{
    private static ClusterJobsOptions Apply(Dictionary<string, string?> env, Dictionary<string, string?>? args = null)
    {
        var options = new ClusterJobsOptions();
        var config = new ConfigurationBuilder().AddInMemoryCollection(args ?? []).Build();
        NodeConfiguration.Apply(options, config, name => env.GetValueOrDefault(name));
        return options;
    }

    [Fact]
    public void Read_ahead_is_one_batch_unless_configured_and_the_command_line_wins()
    {
        Assert.Equal(256, new ClusterJobsOptions().ReadAhead);
        Assert.Equal(0, Apply(new() { ["CLUSTERJOBS_READ_AHEAD"] = "0" }).ReadAhead);
        Assert.Equal(64, Apply(new() { ["CLUSTERJOBS_READ_AHEAD"] = "0" }, new() { ["read-ahead"] = "64" }).ReadAhead);
    }

    [Fact]
    public void The_operator_http_port_is_off_unless_set_listens_on_loopback_by_default_and_bad_values_are_refused()
    {
        var plain = new ClusterJobsOptions();
        var set = Apply(new() { ["CLUSTERJOBS_HTTP_PORT"] = "8080", ["CLUSTERJOBS_HTTP_HOST"] = "*", ["CLUSTERJOBS_HTTP_TOKEN"] = "t0k" });

        Assert.Null(plain.HttpPort);
        Assert.Equal("127.0.0.1", plain.HttpHost);
        Assert.Equal((8080, "*", "t0k"), (set.HttpPort!.Value, set.HttpHost, set.HttpToken));
        Assert.Empty(plain.HttpAllowedHosts);
        Assert.Equal(["localhost", "jobs.example"], Apply(new() { ["CLUSTERJOBS_HTTP_ALLOWED_HOSTS"] = "localhost, jobs.example" }).HttpAllowedHosts);
        set.Validate();
        Assert.Contains("'eighty'", Assert.Throws<ArgumentException>(() => Apply(new() { ["CLUSTERJOBS_HTTP_PORT"] = "eighty" })).Message);
        Assert.Contains("70000", Assert.Throws<ArgumentException>(Apply(new() { ["CLUSTERJOBS_HTTP_PORT"] = "70000" }).Validate).Message);
        Assert.Contains("'my host'", Assert.Throws<ArgumentException>(Apply(new() { ["CLUSTERJOBS_HTTP_HOST"] = "my host" }).Validate).Message);
    }

    [Fact]
    public void Queues_none_makes_a_node_that_runs_no_jobs()
    {
        Assert.Empty(Apply(new() { ["CLUSTERJOBS_QUEUES"] = "none" }).Queues);
        Assert.Equal(["emails", "reports"], Apply(new() { ["CLUSTERJOBS_QUEUES"] = "emails,reports" }).Queues.Select(q => q.Name));
    }

    [Theory]
    [InlineData(",")]
    [InlineData(" , ")]
    public void Queues_that_name_no_queue_are_refused_rather_than_taken_for_none(string queues) =>
        Assert.Contains("names no queue", Assert.Throws<ArgumentException>(() => Apply(new() { ["CLUSTERJOBS_QUEUES"] = queues })).Message);

    [Theory]
    [InlineData("CLUSTERJOBS_LEASE_SECONDS", "1e300")] // overflowed a time span: a stack trace, exit 134
    [InlineData("CLUSTERJOBS_LEASE_SECONDS", "NaN")]
    [InlineData("CLUSTERJOBS_LEASE_SECONDS", "0.5")]
    [InlineData("CLUSTERJOBS_DRAIN_SECONDS", "-1")] // a negative grace: the drain's timer refused, nothing handed back
    [InlineData("CLUSTERJOBS_DRAIN_SECONDS", "Infinity")]
    public void A_time_setting_out_of_its_range_is_refused_naming_it_and_its_range(string variable, string value)
    {
        var error = Assert.Throws<ArgumentException>(() => Apply(new() { [variable] = value }));
        Assert.Contains($"'{value}' is not a number of seconds from", error.Message);
        Assert.StartsWith("invalid configuration: ", ShutdownExit.StartFailure(error)); // one line, exit 2
    }

    [Fact]
    public void A_drain_grace_or_lease_set_in_code_out_of_range_is_refused()
    {
        Assert.Contains("DrainGrace", Assert.Throws<ArgumentException>(new ClusterJobsOptions { DrainGrace = TimeSpan.FromSeconds(-1) }.Validate).Message);
        Assert.Contains("LeaseDuration", Assert.Throws<ArgumentException>(new ClusterJobsOptions { LeaseDuration = TimeSpan.FromDays(2) }.Validate).Message);
    }

    [Fact]
    public void Options_come_from_the_command_line_and_the_documented_variables_never_from_a_variable_of_the_plain_name()
    {
        // A host's configuration holds every environment variable by its plain name: conda and Termux set PREFIX.
        var hostLike = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["prefix"] = "/usr", ["queues"] = "other" }).Build();
        Assert.Null(NodeConfiguration.CommandLine([])["prefix"]);
        Assert.Equal("jobs", NodeConfiguration.CommandLine(["--prefix", "jobs"])["prefix"]);
        var options = new ClusterJobsOptions();
        NodeConfiguration.Apply(options, NodeConfiguration.CommandLine(["--queues", "emails"]),
            name => name == "CLUSTERJOBS_PREFIX" ? "cj-test" : name == "PREFIX" ? "/usr" : null);
        Assert.Equal(("cj-test", "emails"), (options.KeyPrefix, options.Queues.Single().Name));
        Assert.Equal("/usr", hostLike["prefix"]); // what the node read before, through the host's configuration
    }

    [Fact]
    public void A_read_ahead_that_is_not_a_number_or_is_negative_is_refused_with_the_value()
    {
        var notANumber = Assert.Throws<ArgumentException>(() => Apply(new() { ["CLUSTERJOBS_READ_AHEAD"] = "lots" }));
        Assert.Contains("'lots'", notANumber.Message);
        var negative = Apply(new() { ["CLUSTERJOBS_READ_AHEAD"] = "-1" });
        Assert.Contains("-1", Assert.Throws<ArgumentException>(negative.Validate).Message);
    }

    [Fact]
    public void The_warm_up_is_off_unless_configured_and_a_bad_count_is_refused_with_the_value()
    {
        Assert.Equal(0, new ClusterJobsOptions().WarmUpJobs);
        Assert.Equal(1000, Apply(new() { ["CLUSTERJOBS_WARMUP_JOBS"] = "1000" }).WarmUpJobs);
        Assert.Equal(50, Apply(new() { ["CLUSTERJOBS_WARMUP_JOBS"] = "1000" }, new() { ["warmup-jobs"] = "50" }).WarmUpJobs);
        Assert.Contains("'many'", Assert.Throws<ArgumentException>(() => Apply(new() { ["CLUSTERJOBS_WARMUP_JOBS"] = "many" })).Message);
        Assert.Contains("-5", Assert.Throws<ArgumentException>(Apply(new() { ["CLUSTERJOBS_WARMUP_JOBS"] = "-5" }).Validate).Message);
    }

    [Fact]
    public void A_warm_up_timeout_outside_one_second_to_five_minutes_is_refused()
    {
        // Longer would reach the ten minutes after which a registered warm-up counts as one whose node died.
        Assert.Contains("between 1 s and 5 min", Assert.Throws<ArgumentException>(new ClusterJobsOptions { WarmUpTimeout = TimeSpan.FromMinutes(6) }.Validate).Message);
        Assert.Throws<ArgumentException>(new ClusterJobsOptions { WarmUpTimeout = TimeSpan.Zero }.Validate);
        new ClusterJobsOptions { WarmUpTimeout = TimeSpan.FromMinutes(5) }.Validate();
    }

    [Fact]
    public void Redis_io_runs_on_the_thread_pool_unless_dedicated_threads_are_asked_for_and_a_bad_value_is_refused()
    {
        Assert.Equal(RedisIoThreads.ThreadPool, new ClusterJobsOptions().RedisIo);
        Assert.Equal(RedisIoThreads.Dedicated, Apply(new() { ["CLUSTERJOBS_REDIS_IO"] = "dedicated" }).RedisIo);
        Assert.Equal(RedisIoThreads.ThreadPool, Apply(new() { ["CLUSTERJOBS_REDIS_IO"] = "dedicated" }, new() { ["redis-io"] = "thread-pool" }).RedisIo);
        var bad = Assert.Throws<ArgumentException>(() => Apply(new() { ["CLUSTERJOBS_REDIS_IO"] = "fast" }));
        Assert.Contains("'fast'", bad.Message);
        Assert.Contains("'thread-pool' or 'dedicated'", bad.Message);
    }

    [Fact]
    public void A_node_waits_a_minute_for_an_unreachable_Redis_at_start_unless_told_otherwise()
    {
        Assert.Equal(TimeSpan.FromSeconds(60), new ClusterJobsOptions().RedisStartupWait);
        Assert.Equal(TimeSpan.FromSeconds(2.5), Apply(new() { ["CLUSTERJOBS_REDIS_WAIT_SECONDS"] = "2.5" }).RedisStartupWait);
        Assert.Equal(TimeSpan.Zero, Apply(new() { ["CLUSTERJOBS_REDIS_WAIT_SECONDS"] = "0" }).RedisStartupWait);
        foreach (var bad in new[] { "soon", "-1", "1e12", "Infinity" })
            Assert.Contains($"'{bad}'", Assert.Throws<ArgumentException>(() => Apply(new() { ["CLUSTERJOBS_REDIS_WAIT_SECONDS"] = bad })).Message);
    }

    [Fact]
    public async Task A_node_with_a_bad_setting_does_not_start_and_names_the_setting_before_it_connects_anywhere()
    {
        // Nothing listens at this Redis URL: were the node to connect first, its error would be about Redis.
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddClusterJobs(o =>
        {
            o.RedisUrl = $"redis://127.0.0.1:{RedisServer.PortNoOneElseIsGiven()}";
            o.ReadAhead = -1;
        });

        var refused = await Assert.ThrowsAsync<ArgumentException>(async () =>
        {
            using var host = builder.Build();
            await host.StartAsync();
        });
        Assert.Contains("ReadAhead", refused.Message);
        Assert.Contains("-1", refused.Message);
    }
}
