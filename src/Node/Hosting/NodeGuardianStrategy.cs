using Akka.Actor;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Supervision of the node's top-level actors (routers, worker pool, result writer): a failure while handling a message
/// resumes the actor, keeping its bookkeeping (which pool runs which job, which leases to renew), since losing it would
/// strand jobs; an actor that cannot even start is stopped. See docs/supervision.md.
/// </summary>
public sealed class NodeGuardianStrategy : SupervisorStrategyConfigurator
{
    public override SupervisorStrategy Create() => new OneForOneStrategy(Decide);

    public static Directive Decide(Exception ex) => ex switch
    {
        // Akka's own advice: a stuck singleton manager (a hand-over that never came) is restarted, so it starts over.
        Akka.Cluster.Tools.Singleton.ClusterSingletonManagerIsStuckException => Directive.Restart,
        ActorInitializationException or ActorKilledException or DeathPactException => Directive.Stop,
        _ => Directive.Resume,
    };
}
