using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Queues;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>Runtime queue settings (pause, running cap, rate limit), persisted in Redis through our journal.</summary>
[Collection(BrokerCollection.Name)]
public sealed class QueueSettingsSpecs(BrokerFixture brokers, ITestOutputHelper output)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_paused_queue_starts_nothing_until_it_is_resumed(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var control = node.Services.GetRequiredService<QueueControl>();
        Assert.True((await control.PauseAsync("default")).Paused);

        var id = await node.Client.EnqueueAsync("add", new[] { 1, 2 });
        await Task.Delay(1_000);
        Assert.Equal(JobState.Queued, (await node.Client.GetAsync(id))!.State);

        Assert.False((await control.ResumeAsync("default")).Paused);
        Assert.Equal(JobState.Succeeded, (await node.Client.WaitAsync(id, Wait)).State);
    }

    [Fact]
    public async Task A_paused_or_capped_queue_leaves_the_nodes_slots_to_its_lower_priority_queues_and_gets_them_back_when_it_may_run()
    {
        // A node serving high before low offers its slots to high first, and to low only once high gives them back: a
        // paused (or capped) high kept them, and low starved while high could start nothing.
        await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o =>
            o.Queues = ClusterJobsOptions.ParseQueues("high,low"));
        var control = node.Services.GetRequiredService<QueueControl>();
        await control.PauseAsync("high");
        var waiting = await node.Client.EnqueueAsync("add", new[] { 1, 1 }, new EnqueueOptions { Queue = "high" });

        var low = await node.Client.EnqueueAsync("add", new[] { 2, 2 }, new EnqueueOptions { Queue = "low" });
        Assert.Equal(4L, (await node.Client.WaitAsync(low, Wait)).ResultAs<long>());
        Assert.Equal(JobState.Queued, (await node.Client.GetAsync(waiting))!.State);

        await control.ResumeAsync("high");
        Assert.Equal(2L, (await node.Client.WaitAsync(waiting, Wait)).ResultAs<long>());

        await control.SetMaxRunningAsync("high", 0); // a cap of 0 starts nothing, as a pause
        var lowAgain = await node.Client.EnqueueAsync("add", new[] { 3, 3 }, new EnqueueOptions { Queue = "low" });
        Assert.Equal(6L, (await node.Client.WaitAsync(lowAgain, Wait)).ResultAs<long>());
        await control.SetMaxRunningAsync("high", null);
        var highAgain = await node.Client.EnqueueAsync("add", new[] { 4, 4 }, new EnqueueOptions { Queue = "high" });
        Assert.Equal(8L, (await node.Client.WaitAsync(highAgain, Wait)).ResultAs<long>());
    }

    [Fact]
    public async Task A_running_cap_holds_across_the_cluster_and_a_rate_limit_spaces_the_starts()
    {
        await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o => o.Concurrency = 8);
        var control = node.Services.GetRequiredService<QueueControl>();
        await control.SetMaxRunningAsync("default", 2);
        var capped = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => node.Client.EnqueueAsync("sleep", new { ms = 150 })));
        var jobs = await Task.WhenAll(capped.Select(id => node.Client.WaitAsync(id, Wait)));
        var peak = jobs.Max(j => jobs.Count(o => o.StartedAt < j.FinishedAt && o.FinishedAt > j.StartedAt && o.StartedAt <= j.StartedAt));
        output.WriteLine($"at most {peak} of 12 jobs ran at once under a cap of 2");
        Assert.InRange(peak, 1, 2);

        await control.SetMaxRunningAsync("default", null);
        await control.SetRateLimitAsync("default", 5);
        // A burst of one second's worth (5) may start at once; the other 10 wait their turn: about 2 s in all.
        var limited = await Task.WhenAll(Enumerable.Range(0, 15).Select(i => node.Client.EnqueueAsync("add", new[] { i, i })));
        var done = await Task.WhenAll(limited.Select(id => node.Client.WaitAsync(id, Wait)));
        var span = done.Max(j => j.StartedAt!.Value) - done.Min(j => j.StartedAt!.Value);
        output.WriteLine($"15 jobs at 5/s started over {span.TotalSeconds:F2} s");
        Assert.True(span >= TimeSpan.FromSeconds(1.6), $"15 starts at 5/s took only {span}");
        Assert.Equal(5, (await control.GetAsync("default")).RateLimitPerSecond);
    }

    [Fact]
    public async Task The_settings_are_recovered_from_the_journal_on_another_node_when_the_node_holding_them_is_killed()
    {
        var url = brokers.Url(BrokerKind.Redis);
        var port = RedisServer.FreePort();
        var seed = $"akka.tcp://clusterjobs@127.0.0.1:{port}";
        void Cluster(ClusterJobsOptions o, int p) => o.Cluster = new ClusterBootstrap { Host = "127.0.0.1", Port = p, Seeds = [seed] };
        var first = await TestNode.StartAsync(url, _prefix, o => Cluster(o, port), serializeMessages: false);
        await using var second = await TestNode.StartAsync(url, _prefix, o => Cluster(o, 0), serializeMessages: false);
        await using var third = await TestNode.StartAsync(url, _prefix, o => Cluster(o, 0), serializeMessages: false);
        foreach (var node in new[] { first, second, third }) await node.WaitForMembersUpAsync(3); // survivors of a kill are a majority
        var control = third.Services.GetRequiredService<QueueControl>();
        await control.PauseAsync("default"); // held by the router singleton on the first (oldest) node
        await control.SetRateLimitAsync("default", 50);

        await first.CrashAsync(); // the node holding the settings dies; once it is downed, its router starts on the second node
        var recovered = await RetryAsync(() => control.GetAsync("default"));
        var id = await third.Client.EnqueueAsync("add", new[] { 20, 22 });
        await Task.Delay(1_000);
        var whilePaused = (await third.Client.GetAsync(id))!.State;
        await control.ResumeAsync("default");
        var job = await third.Client.WaitAsync(id, Wait);

        Assert.True(recovered.Paused);
        Assert.Equal(50, recovered.RateLimitPerSecond);
        Assert.Equal(JobState.Queued, whilePaused);
        Assert.Equal(42, job.ResultAs<long>());
    }

    private static async Task<T> RetryAsync<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (true)
        {
            try { return await call(); }
            catch (Exception) when (DateTime.UtcNow < deadline) { await Task.Delay(250); }
        }
    }
}
