using System.Net;
using System.Net.Sockets;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClusterJobs.Node.Tests;

/// <summary>How a host run with <see cref="ShutdownExit.RunAsync"/> (the stock node, the seed, a user's own host) ends when it cannot start.</summary>
public sealed class ShutdownExitSpecs
{
    private static IHost HostWithRedisAt(int port, TimeSpan wait)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddClusterJobs(o =>
        {
            o.RedisUrl = $"redis://127.0.0.1:{port}";
            o.RedisStartupWait = wait;
        });
        return builder.Build();
    }

    [Fact]
    public async Task A_host_whose_Redis_is_out_of_reach_ends_with_code_2_not_an_unhandled_exception()
    {
        using var host = HostWithRedisAt(RedisServer.PortNoOneElseIsGiven(), TimeSpan.Zero);

        Assert.Equal(ShutdownExit.StartFailed, await ShutdownExit.RunAsync(host));
    }

    [Theory]
    [InlineData(false)] // nothing listens: a connect attempt mostly fails fast, but can wait out its connect timeout (5 s)
    [InlineData(true)] // a Redis that is hung, or a port a firewall swallows: every connect attempt waits out its timeout
    public async Task A_host_told_to_stop_while_it_waits_for_Redis_ends_with_code_0_at_once(bool acceptsButNeverAnswers)
    {
        // A listener never accepted from still completes the TCP handshake (the kernel's backlog), then says nothing.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        if (acceptsButNeverAnswers) silent.Start();
        var port = acceptsButNeverAnswers ? ((IPEndPoint)silent.LocalEndpoint).Port : RedisServer.PortNoOneElseIsGiven();
        using var host = HostWithRedisAt(port, TimeSpan.FromMinutes(1));
        var run = ShutdownExit.RunAsync(host);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(run.IsCompleted); // still waiting for Redis

        host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();

        // Not after the connect attempt under way ends (before: up to 10 s, and a failed CI run).
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(2)));
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
