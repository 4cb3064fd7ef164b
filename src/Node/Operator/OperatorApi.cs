using Akka.Actor;
using Akka.Cluster;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Queues;
using ClusterJobs.Node.Routing;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterJobs.Node.Operator;

/// <summary>The queue is served or holds something: not forgotten (the API's 409).</summary>
public sealed class QueueInUseException(string message) : InvalidOperationException(message);

/// <summary>
/// What the operator surface (HTTP API, dashboard, CLI) can see and do, on any node: the cluster's members, each
/// queue's jobs, settings and router, one job; pause, limit, cancel, replay, enqueue. Redis is read directly; settings
/// and router counters come from the queue's router, wherever it runs.
/// </summary>
public sealed class OperatorApi(IServiceProvider services, QueueCensus census, RouterProxies routers, JobClient client, RedisConnectionService redis)
{
    /// <summary>How long a read waits for a queue's router; a router that does not answer shows as null.</summary>
    public static readonly TimeSpan RouterAskTimeout = TimeSpan.FromSeconds(2);

    /// <summary>How long the cluster view waits for a member's pool: a member of an older version, which does not know
    /// the question, costs every refresh this much.</summary>
    public static readonly TimeSpan PoolAskTimeout = TimeSpan.FromSeconds(1);

    public JobClient Jobs => client;

    /// <summary>Counts and lists of each queue's jobs, read straight from Redis.</summary>
    public QueueCensus Census => census;

    /// <summary>For changes: the queue's router must answer, or the call fails (503).</summary>
    public QueueControl Control { get; } = new(routers) { Timeout = TimeSpan.FromSeconds(5) };

    private Cluster Cluster => Cluster.Get(services.GetRequiredService<ActorSystem>());

    /// <summary>The members, each with its worker pool's load (asked of every member serving a queue, 2 s).</summary>
    public async Task<ClusterView> GetClusterAsync()
    {
        var cluster = Cluster;
        var state = cluster.State;
        var system = services.GetRequiredService<ActorSystem>();
        var members = state.Members.Select(async m =>
        {
            var queues = m.Roles.Where(IsQueueRole).Select(QueueOfRole).Order(StringComparer.Ordinal).ToList();
            WorkersView? workers = null;
            // Leaving and exiting members too: a draining node's load is worth seeing.
            if (queues.Count > 0 && m.Status is MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting && !state.Unreachable.Contains(m))
            {
                var pool = system.ActorSelection(new RootActorPath(m.Address) / "user" / Workers.WorkerPool.ActorName);
                if (await Ask<Workers.WorkerPool.PoolStatus>(pool, Workers.WorkerPool.GetStatus.Instance, PoolAskTimeout) is { } p)
                    workers = new WorkersView(p.Capacity, p.Busy, p.BusyByQueue, p.Runaways);
            }
            return new MemberView(m.Address.ToString(), Wire(m.Status), !state.Unreachable.Contains(m), queues,
                m.Roles.Where(r => !IsQueueRole(r)).Order(StringComparer.Ordinal).ToList(), workers);
        }).ToList();
        return new ClusterView(cluster.SelfAddress.ToString(), state.Leader?.ToString(), await Task.WhenAll(members));
    }

    /// <summary>Healthy: Redis answers a PING within 2 s and this node is Up in its cluster.</summary>
    public async Task<HealthView> HealthAsync()
    {
        var reached = await RedisProblemAsync() ?? "ok";
        var member = Wire(Cluster.SelfMember.Status);
        return new HealthView(reached == "ok" && member == "up", reached, member);
    }

    /// <summary>Null when Redis answers a PING within 2 s; otherwise what went wrong.</summary>
    private async Task<string?> RedisProblemAsync()
    {
        try
        {
            await redis.Connection.GetDatabase().PingAsync().WaitAsync(TimeSpan.FromSeconds(2));
            return null;
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
        {
            return ex is TimeoutException ? "no answer within 2 s" : ex.Message;
        }
    }

    /// <summary>Every queue that has jobs in Redis or a node serving it, sorted by name.</summary>
    public async Task<IReadOnlyList<QueueView>> GetQueuesAsync(CancellationToken ct = default)
    {
        var served = Cluster.State.Members.SelectMany(m => m.Roles).Where(IsQueueRole).Select(QueueOfRole);
        var names = (await census.DiscoverAsync(ct)).Concat(served).Distinct().Order(StringComparer.Ordinal).ToList();
        return await ViewAsync(names);
    }

    /// <summary>One queue; <see cref="KeyNotFoundException"/> when Redis holds nothing of it and no node serves it (a typo).</summary>
    public async Task<QueueView> GetQueueAsync(string queue)
    {
        var view = (await ViewAsync([queue]))[0];
        var nothing = new QueueCounts(0, 0, 0, 0, 0);
        if (view.Jobs == nothing && view.Totals == new QueueTotals(0, 0, 0, 0, 0) && view.ServedBy.Count == 0 && !view.HasRecurring &&
            view.Problem is null)
            throw new KeyNotFoundException($"No queue '{queue}': no node serves it and Redis holds no job or recurring schedule of it.");
        return view;
    }

    /// <summary>
    /// Takes a queue that holds nothing and that no member serves off the list (<see cref="QueueCensus.ForgetAsync"/>):
    /// <see cref="QueueInUseException"/> saying why not otherwise, <see cref="KeyNotFoundException"/> for a queue
    /// Redis holds nothing of. Its settings (pause, limits) stay in the journal, for a node that serves it again.
    /// </summary>
    public async Task ForgetQueueAsync(string queue)
    {
        JobIds.ValidateQueueName(queue);
        var role = QueueRouterActorExtensions.RoleFor(queue);
        // Any member, as the list shows it: one unreachable or leaving still keeps the queue listed.
        if (Cluster.State.Members.Where(m => m.HasRole(role)).Select(m => m.Address.ToString()).ToList() is { Count: > 0 } serving)
            throw new QueueInUseException(
                $"Queue '{queue}' is served by {string.Join(", ", serving)}: it stays listed while any member serves it (take it out of their CLUSTERJOBS_QUEUES first).");
        if (await census.ForgetAsync(queue) is { } held)
            throw new QueueInUseException($"Queue '{queue}' still holds {held switch
            {
                "ready" => "ready jobs: cancel them, or start a node serving it",
                "scheduled" => "scheduled jobs: cancel them, or start a node serving it",
                "leased" => "running jobs (leased by a node that no longer serves it): start a node serving it, which takes them back",
                "waiting" => "split parents waiting for their children: start a node serving it, which finishes them",
                "dead" => "dead letters: purge or replay them",
                "recurring" => "recurring jobs: remove them",
                _ => held,
            }}. Only a queue that holds nothing is forgotten.");
    }

    /// <summary>For the API's errors that are bugs, not the caller's: logged with their stack.</summary>
    internal Microsoft.Extensions.Logging.ILogger Log { get; } =
        Microsoft.Extensions.Logging.LoggerFactoryExtensions.CreateLogger<OperatorApi>(services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>());

    /// <summary>The token the API's calls need (ClusterJobsOptions.HttpToken), unless the mapping names its own.</summary>
    internal string? Token => services.GetService<Microsoft.Extensions.Options.IOptions<ClusterJobsOptions>>()?.Value.HttpToken;

    public async Task<SettingsView> ChangeAsync(string queue, Func<QueueControl, Task<QueueSettingsState>> change)
    {
        JobIds.ValidateQueueName(queue);
        if (ServedBy(queue).Count == 0) throw new NoRouterException(queue);
        try
        {
            return Settings(await change(Control));
        }
        catch (AskTimeoutException)
        {
            // A router that keeps its settings in Redis waits on it: while Redis hangs (a partition, a stalled server) the
            // ask times out before the journal gives up, and Redis, not the router, is what to look at.
            throw new NoRouterException(queue, timedOut: true, redisProblem: await RedisProblemAsync());
        }
        catch (Exception ex) when (ex is not ArgumentException)
        {
            throw new NoRouterException(queue, timedOut: false, reason: ex.Message); // its settings could not be loaded or kept
        }
    }

    private async Task<IReadOnlyList<QueueView>> ViewAsync(IReadOnlyList<string> names)
    {
        foreach (var name in names) JobIds.ValidateQueueName(name);
        var counts = census.CountAsync(names);
        var servers = names.Distinct().ToDictionary(name => name, ServedBy);
        var routed = names.Select(async name =>
        {
            if (servers[name].Count == 0) return (Settings: (SettingsView?)null, Router: (RouterView?)null);
            var router = routers.For(name);
            var settings = Ask<QueueSettingsState>(router, QueueSettings.Get.Instance);
            var status = Ask<QueueRouter.RouterStatus>(router, QueueRouter.GetStatus.Instance);
            return (Settings: await settings is { } s ? Settings(s) : null,
                Router: await status is { } r ? new RouterView(r.Buffered, r.Pools, r.Credit, r.InFlight, r.Granted) : null);
        }).ToList();
        var byName = await counts;
        var views = new List<QueueView>();
        for (var i = 0; i < names.Count; i++)
        {
            var (settings, router) = await routed[i];
            var servedBy = servers[names[i]];
            var tally = byName[names[i]];
            views.Add(new QueueView(names[i], tally.Jobs, tally.Totals, servedBy.Select(m => m.Address.ToString()).ToList(),
                servedBy.Count == 0 ? null : servedBy.Aggregate((a, b) => b.IsOlderThan(a) ? b : a).Address.ToString(), settings, router,
                tally.HasRecurring, tally.Problem));
        }
        return views;
    }

    /// <summary>Up members serving the queue (the router singleton runs on the oldest of them).</summary>
    private List<Member> ServedBy(string queue)
    {
        var role = QueueRouterActorExtensions.RoleFor(queue);
        return Cluster.State.Members.Where(m => m.Status == MemberStatus.Up && m.HasRole(role)).ToList();
    }

    /// <summary>The router's answer, or null when it did not give one: timed out, or failed (its settings still loading
    /// after a Redis outage, say). One queue's router never fails the view of the others.</summary>
    private static async Task<T?> Ask<T>(ICanTell actor, object message, TimeSpan? timeout = null) where T : class
    {
        try
        {
            return await actor.Ask<T>(message, timeout ?? RouterAskTimeout);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || ex is AskTimeoutException)
        {
            return null;
        }
    }

    private static SettingsView Settings(QueueSettingsState s) => new(s.Paused, s.MaxRunning, s.RateLimitPerSecond);

    private static bool IsQueueRole(string role) => role.StartsWith(QueueRouterActorExtensions.RoleFor(""), StringComparison.Ordinal);
    private static string QueueOfRole(string role) => role[QueueRouterActorExtensions.RoleFor("").Length..];
    private static string Wire(MemberStatus status) => status.ToString().ToLowerInvariant();
}

/// <summary>A queue whose router cannot be asked: no node serves it, none answered, or it could not apply the change.</summary>
public sealed class NoRouterException(string queue, bool timedOut = false, string? reason = null, string? redisProblem = null) : Exception(
    reason is not null ? $"The router of queue '{queue}' could not apply the change: {reason}"
    : !timedOut ? $"No node serves queue '{queue}': its settings live with its router, which runs only on a node serving the queue. Start a node with CLUSTERJOBS_QUEUES={queue}."
    : redisProblem is not null ? $"The router of queue '{queue}' did not answer in time, and Redis, where it records its settings, is not answering this node either ({redisProblem}): the change may still take effect once Redis answers; look at GET /api/queues/{queue} before trying again."
    : $"The router of queue '{queue}' did not answer in time (a node serving it may be starting, leaving or unreachable); try again.")
{
    public string Queue { get; } = queue;
}
