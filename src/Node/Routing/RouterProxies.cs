using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterJobs.Node.Routing;

/// <summary>
/// A way to any queue's router from this node, served here or not: the proxy the node made for a queue it serves, else
/// a singleton proxy made on first use. So an operator's node (or a producer-only host) can pause, limit or inspect a
/// queue that only other nodes serve.
/// </summary>
public sealed class RouterProxies(QueueRouters served, IServiceProvider services)
{
    private readonly Dictionary<string, IActorRef> _made = new();

    public IActorRef For(string queue)
    {
        Protocol.JobIds.ValidateQueueName(queue);
        if (served.TryGet(queue) is { } router) return router;
        lock (_made)
        {
            if (_made.TryGetValue(queue, out var made)) return made;
            // The actor system exists only once the host started; asked for later than that, it is there.
            var system = services.GetRequiredService<ActorSystem>();
            var role = QueueRouterActorExtensions.RoleFor(queue);
            made = system.ActorOf(ClusterSingletonProxy.Props($"/user/router-{queue}",
                    ClusterSingletonProxySettings.Create(system).WithRole(role).WithSingletonName("router").WithBufferSize(100)),
                $"router-{queue}-lookup");
            _made[queue] = made;
            return made;
        }
    }
}
