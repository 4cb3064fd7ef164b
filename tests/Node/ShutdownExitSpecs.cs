using ClusterJobs.Node.Hosting;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClusterJobs.Node.Tests;

/// <summary>How a host run with <see cref="ShutdownExit.RunAsync"/> (the stock node, the seed, a user's own host) ends when it cannot start.</summary>
public sealed class ShutdownExitSpecs
{
    private static IHost HostWithRedisOutOfReach(TimeSpan wait)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddClusterJobs(o =>
        {
            o.RedisUrl = $"redis://127.0.0.1:{RedisServer.PortNoOneElseIsGiven()}";
            o.RedisStartupWait = wait;
        });
        return builder.Build();
    }

    [Fact]
    public async Task A_host_whose_Redis_is_out_of_reach_ends_with_code_2_not_an_unhandled_exception()
    {
        using var host = HostWithRedisOutOfReach(TimeSpan.Zero);

        Assert.Equal(ShutdownExit.StartFailed, await ShutdownExit.RunAsync(host));
    }

    [Fact]
    public async Task A_host_told_to_stop_while_it_waits_for_Redis_ends_with_code_0()
    {
        using var host = HostWithRedisOutOfReach(TimeSpan.FromMinutes(1));
        var run = ShutdownExit.RunAsync(host);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(run.IsCompleted); // still waiting for Redis

        host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();

        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Start_failures_an_operator_can_mend_are_named_and_others_are_not_hidden_behind_a_message()
    {
        var ours = Assert.Throws<ArgumentException>(() => ClusterJobsOptions.ParseQueues("high,high"));
        Assert.Equal("invalid configuration: Queue 'high' is listed twice.", ShutdownExit.StartFailure(ours));
        // One thrown outside ClusterJobs (a user's own code, a library) keeps its stack trace: it may be a bug.
        var theirs = Assert.ThrowsAny<ArgumentException>(() => ArgumentException.ThrowIfNullOrEmpty(""));
        Assert.Contains("   at ", ShutdownExit.StartFailure(theirs));
        Assert.Equal("Redis is down", ShutdownExit.StartFailure(new ClusterJobs.Protocol.RedisUnavailableException("Redis is down")));
        Assert.Null(ShutdownExit.StartFailure(new InvalidOperationException("a bug")));
    }
}
