using Akka.Actor;
using ClusterJobs.Node.Routing;

namespace ClusterJobs.Node.Queues;

/// <summary>
/// Changes a queue's runtime settings from any node of the cluster (the change goes to the queue's router singleton
/// and is persisted): pause and resume, a cluster-wide cap on running jobs, a rate limit on starts.
/// </summary>
public sealed class QueueControl(QueueRouters routers)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public Task<QueueSettingsState> PauseAsync(string queue) => Send(queue, new QueueSettings.Change(Paused: true));
    public Task<QueueSettingsState> ResumeAsync(string queue) => Send(queue, new QueueSettings.Change(Paused: false));

    /// <summary>At most <paramref name="maxRunning"/> jobs of the queue run at once in the whole cluster; null lifts the cap.</summary>
    public Task<QueueSettingsState> SetMaxRunningAsync(string queue, int? maxRunning) =>
        Send(queue, new QueueSettings.Change(MaxRunning: maxRunning, ClearMaxRunning: maxRunning is null));

    /// <summary>At most <paramref name="perSecond"/> jobs of the queue start per second; null lifts the limit.</summary>
    public Task<QueueSettingsState> SetRateLimitAsync(string queue, double? perSecond) =>
        Send(queue, new QueueSettings.Change(RateLimitPerSecond: perSecond, ClearRateLimit: perSecond is null));

    public Task<QueueSettingsState> GetAsync(string queue) => Send(queue, QueueSettings.Get.Instance);

    private static Task<QueueSettingsState> Send(IActorRef router, object message) => router.Ask<QueueSettingsState>(message, Timeout);

    private Task<QueueSettingsState> Send(string queue, object message) => Send(routers[queue], message);
}
