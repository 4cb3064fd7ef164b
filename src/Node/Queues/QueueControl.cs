using Akka.Actor;
using ClusterJobs.Node.Routing;

namespace ClusterJobs.Node.Queues;

/// <summary>
/// Changes a queue's runtime settings from any node of the cluster, whether it serves the queue or not (the change goes
/// to the queue's router singleton and is persisted): pause and resume, a cluster-wide cap on running jobs, a rate
/// limit on starts. When no node serving the queue answers within the timeout, the call fails with an
/// <see cref="Akka.Actor.AskTimeoutException"/>.
/// </summary>
public sealed class QueueControl(RouterProxies routers)
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    /// <summary>How long a call waits for the queue's router (15 s).</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    public Task<QueueSettingsState> PauseAsync(string queue) => Send(queue, new QueueSettings.Change(Paused: true));
    public Task<QueueSettingsState> ResumeAsync(string queue) => Send(queue, new QueueSettings.Change(Paused: false));

    /// <summary>At most <paramref name="maxRunning"/> jobs of the queue run at once in the whole cluster; null lifts the cap.</summary>
    public Task<QueueSettingsState> SetMaxRunningAsync(string queue, int? maxRunning) =>
        Send(queue, new QueueSettings.Change(MaxRunning: maxRunning, ClearMaxRunning: maxRunning is null));

    /// <summary>At most <paramref name="perSecond"/> jobs of the queue start per second; null lifts the limit.</summary>
    public Task<QueueSettingsState> SetRateLimitAsync(string queue, double? perSecond) =>
        Send(queue, new QueueSettings.Change(RateLimitPerSecond: perSecond, ClearRateLimit: perSecond is null));

    /// <summary>Several settings in one change (one journal event): fields left null are kept.</summary>
    public Task<QueueSettingsState> ChangeAsync(string queue, QueueSettings.Change change) => Send(queue, change);

    public Task<QueueSettingsState> GetAsync(string queue) => Send(queue, QueueSettings.Get.Instance);

    private Task<QueueSettingsState> Send(string queue, object message) => routers.For(queue).Ask<QueueSettingsState>(message, Timeout);
}
