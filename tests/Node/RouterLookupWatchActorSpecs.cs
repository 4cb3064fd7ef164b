using Akka.Actor;
using ClusterJobs.Node.Routing;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

public sealed class RouterLookupWatchActorSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(SpecConfig.Hocon, output: output)
{
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(300);

    [Fact]
    public void A_queue_whose_router_does_not_answer_is_reported_every_period_and_one_that_answers_never()
    {
        // Nobody drops the question, as a proxy that never finds its router holds it.
        var reachable = Sys.ActorOf(Props.Create(() => new AnsweringRouter("reachable")));
        var routers = new Dictionary<string, IActorRef> { ["reachable"] = reachable, ["lost"] = ActorRefs.Nobody };

        EventFilter.Warning(contains: "Queue lost: its router has not answered this node").Expect(2, TimeSpan.FromSeconds(3), () =>
            Sys.ActorOf(Props.Create(() => new RouterLookupWatchActor(routers, Period))));
        EventFilter.Warning(contains: "Queue reachable").Expect(0, TimeSpan.FromMilliseconds(700), () => { });
    }

    [Fact]
    public void The_report_says_what_to_check()
    {
        var routers = new Dictionary<string, IActorRef> { ["q"] = ActorRefs.Nobody };
        EventFilter.Warning(contains: "CLUSTER_MIN_MEMBERS").ExpectOne(TimeSpan.FromSeconds(2), () =>
            Sys.ActorOf(Props.Create(() => new RouterLookupWatchActor(routers, TimeSpan.FromSeconds(1)))));
    }

    /// <summary>Answers as a queue's router does.</summary>
    private sealed class AnsweringRouter : ReceiveActor
    {
        public AnsweringRouter(string queue) =>
            Receive<QueueRouter.GetStatus>(_ => Sender.Tell(new QueueRouter.RouterStatus(queue, 0, 0, 0, 0)));
    }
}
