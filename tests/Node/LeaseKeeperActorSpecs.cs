using Akka.Actor;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Workers;
using ClusterJobs.Tests.Shared;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

[Collection(BrokerCollection.Name)]
public sealed class LeaseKeeperActorSpecs(BrokerFixture broker, ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(SpecConfig.Hocon, output: output)
{
    private const string Queue = "work";
    private static readonly TimeSpan Lease = TimeSpan.FromMilliseconds(400);

    [Theory]
    [InlineData(BrokerKind.Redis)]
    [InlineData(BrokerKind.Garnet)]
    public async Task The_leases_of_tracked_jobs_are_renewed_and_untracked_ones_are_left_to_expire(BrokerKind kind)
    {
        await using var env = await RedisSpecEnv.CreateAsync(broker.Url(kind));
        var settings = new BrokerSettings { LeaseDuration = Lease };
        await env.EnqueueAsync(Queue);
        await env.EnqueueAsync(Queue);
        var taken = (await env.Broker(Queue, settings).TakeAsync(2)).Jobs;
        var (running, finished) = (taken[0].Id, taken[1].Id);
        Func<string, QueueBroker> brokers = q => env.Broker(q, settings);
        var keeper = Sys.ActorOf(Props.Create(() => new LeaseKeeperActor(brokers, Lease)));
        var leased = env.Keys.Queue(Queue).Leased;

        keeper.Tell(new LeaseKeeper.Track(Queue, [running, finished]));
        keeper.Tell(new LeaseKeeper.Untrack(Queue, [finished]));
        var finishedDeadline = await env.Db.SortedSetScoreAsync(leased, finished);
        var runningDeadline = await env.Db.SortedSetScoreAsync(leased, running);

        // Well past the first lease: the running job's deadline moved on, the finished one's did not.
        await Task.Delay(Lease + TimeSpan.FromMilliseconds(200));
        Assert.True(await env.Db.SortedSetScoreAsync(leased, running) > runningDeadline + 300, "the running job's lease was not renewed");
        Assert.Equal(finishedDeadline, await env.Db.SortedSetScoreAsync(leased, finished));
    }
}
