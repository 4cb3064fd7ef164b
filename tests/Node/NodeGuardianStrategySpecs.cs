using Akka.Actor;
using ClusterJobs.Node.Hosting;

namespace ClusterJobs.Node.Tests;

/// <summary>The decider of the node's top-level actors and of each router's ingress (docs/supervision.md).</summary>
public sealed class NodeGuardianStrategySpecs
{
    [Fact]
    public void A_failure_while_handling_a_message_resumes_the_actor_keeping_its_bookkeeping() =>
        Assert.Equal(Directive.Resume, NodeGuardianStrategy.Decide(new InvalidOperationException("bug")));

    [Fact]
    public void An_actor_that_cannot_start_is_stopped()
    {
        Assert.Equal(Directive.Stop, NodeGuardianStrategy.Decide(new ActorInitializationException("no start")));
        Assert.Equal(Directive.Stop, NodeGuardianStrategy.Decide(new ActorKilledException("killed")));
        Assert.Equal(Directive.Stop, NodeGuardianStrategy.Decide(new DeathPactException(ActorRefs.Nobody)));
    }

    [Fact]
    public void A_stuck_singleton_manager_is_restarted_so_the_router_can_start_somewhere() =>
        Assert.Equal(Directive.Restart, NodeGuardianStrategy.Decide(
            new Akka.Cluster.Tools.Singleton.ClusterSingletonManagerIsStuckException("hand-over never came")));

    [Fact]
    public void The_strategy_is_one_for_one() =>
        Assert.IsType<OneForOneStrategy>(new NodeGuardianStrategy().Create());
}
