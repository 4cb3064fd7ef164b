using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Queues;
using ClusterJobs.Node.Recurring;
using ClusterJobs.Persistence.Redis.Hosting;
using ClusterJobs.Node.Ingress;
using ClusterJobs.Node.Membership;
using ClusterJobs.Node.Operator;
using ClusterJobs.Node.Results;
using ClusterJobs.Node.Routing;
using ClusterJobs.Node.Serialization;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Node.Telemetry;
using ClusterJobs.Node.WarmUp;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace ClusterJobs.Node.Hosting;

public static class ClusterJobsServiceCollectionExtensions
{
    /// <summary>
    /// Adds a ClusterJobs node to the host: the Redis connection, the actor system (cluster, our serializer) and the
    /// node's actors, plus a <see cref="JobClient"/> on the same connection for producers in the same app.
    /// </summary>
    public static ClusterJobsBuilder AddClusterJobs(this IServiceCollection services, Action<ClusterJobsOptions>? configure = null,
        Action<AkkaConfigurationBuilder, IServiceProvider>? configureAkka = null) =>
        // The actor system's name is fixed at registration: CLUSTER_NAME, as the seed reads it.
        services.AddClusterJobs(ClusterBootstrap.SystemNameFromEnvironment(), configure, configureAkka);

    internal static ClusterJobsBuilder AddClusterJobs(this IServiceCollection services, string systemName,
        Action<ClusterJobsOptions>? configure, Action<AkkaConfigurationBuilder, IServiceProvider>? configureAkka)
    {
        var jobs = new ClusterJobsBuilder(services);
        var options = services.AddOptions<ClusterJobsOptions>();
        if (configure is not null) options.Configure(configure);
        // Checked wherever the options are first read, which is as the host is built: a bad setting stops the node
        // with its own message before it connects anywhere.
        options.Validate(o => { o.Validate(); return true; });
        services.AddMetrics();
        services.AddSingleton<JobMetrics>();
        services.AddSingleton<TaskArgumentJson>();
        services.AddSingleton(sp => jobs.BuildRegistry(sp.GetRequiredService<TaskArgumentJson>().Options));
        services.AddSingleton<QueueRouters>();
        services.AddSingleton<RouterProxies>();
        services.AddSingleton<QueueControl>();
        services.AddSingleton(sp => new QueueCensus(() => sp.GetRequiredService<RedisConnectionService>().Connection,
            new RedisKeys(sp.GetRequiredService<IOptions<ClusterJobsOptions>>().Value.KeyPrefix)));
        // The operator's client tries each call once: the API answers 503 at once while Redis is down (the dashboard
        // asks again in 2 s, an operator sees why) instead of holding the request for a producer's retry time.
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<OperatorApi>(sp, new JobClient(
            sp.GetRequiredService<RedisConnectionService>().Connection,
            NodeClientOptions(sp) with { CallRetryFor = TimeSpan.Zero, EnqueueRetryFor = TimeSpan.Zero })));
        // The host must wait for the drain (finish or hand back running jobs) before it gives up on a graceful stop.
        services.AddOptions<HostOptions>().Configure<IOptions<ClusterJobsOptions>>((host, jobs) =>
            host.ShutdownTimeout = TimeSpan.FromTicks(Math.Max(host.ShutdownTimeout.Ticks, (jobs.Value.DrainGrace + TimeSpan.FromSeconds(20)).Ticks)));
        // Registered before the actor system so that Redis is connected when the actors start.
        services.AddSingleton<RedisConnectionService>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisConnectionService>());
        services.AddHostedService<JobClientPreparation>();
        // Registered before the actor system too: the warm-up finishes before this node joins its cluster.
        services.AddSingleton<JobPathWarmUp>();
        services.AddHostedService(sp => sp.GetRequiredService<JobPathWarmUp>());
        // Handlers that block their threads must not starve the Redis continuations: the minimum is raised once starved.
        services.AddHostedService(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ClusterJobsOptions>>().Value;
            var reserve = options.Concurrency + options.MaxRunaways + Environment.ProcessorCount * 2;
            return new ThreadPoolStarvationWatch(ThreadPoolStarvationGuard.ForThreadPool(reserve), TimeSpan.FromSeconds(1),
                sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ThreadPoolStarvationWatch>>());
        });
        services.AddSingleton(sp => new JobClient(sp.GetRequiredService<RedisConnectionService>().Connection, NodeClientOptions(sp)));

        services.AddAkka(systemName, (akka, sp) =>
        {
            var options = sp.GetRequiredService<IOptions<ClusterJobsOptions>>().Value;
            akka.ConfigureLoggers(l => { l.ClearLoggers(); l.AddLoggerFactory(); });
            // Each served queue is a role, so the queue's router singleton lives only on nodes that serve it.
            var cluster = options.Cluster with { Roles = [.. options.Cluster.Roles, .. options.Queues.Select(q => QueueRouterActorExtensions.RoleFor(q.Name))] };
            cluster.Apply(akka);
            // The drain runs in this phase: give it the grace period and some.
            akka.AddHocon($"akka.coordinated-shutdown.phases.service-requests-done.timeout = {(int)(options.DrainGrace.TotalSeconds + 10)}s", HoconAddMode.Prepend);
            akka.AddHocon($"akka.actor.guardian-supervisor-strategy = \"{typeof(NodeGuardianStrategy).AssemblyQualifiedName}\"", HoconAddMode.Prepend);
            akka.WithCustomSerializer("clusterjobs", [typeof(IClusterJobsMessage)], system => new ClusterJobsMessageSerializer(system));
            // Actor state that must outlive a node (queue settings) goes to the same Redis, through our journal.
            akka.WithRedisPersistence(sp.GetRequiredService<RedisConnectionService>().Url, $"{options.KeyPrefix}:persistence",
                ioThreads: options.RedisIo);
            akka.AddClusterJobsActors(sp, options);
            configureAkka?.Invoke(akka, sp);
        });
        // After the actor system: the dashboard and API start once the node is up, and stop before it leaves.
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ClusterJobsOptions>>().Value;
            return new OperatorHttpService(sp, options.HttpPort is { } port ? new OperatorHttpSettings(options.HttpHost, port, options.HttpToken, options.HttpAllowedHosts) : null,
                sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<OperatorHttpService>>());
        });
        services.AddHostedService(sp => sp.GetRequiredService<OperatorHttpService>());
        return jobs;
    }

    /// <summary>The options of the node's producer clients (the one in DI, the operator API's).</summary>
    private static JobClientOptions NodeClientOptions(IServiceProvider sp) =>
        new() { KeyPrefix = sp.GetRequiredService<IOptions<ClusterJobsOptions>>().Value.KeyPrefix };

    /// <summary>The node's actors as a list: result writer, lease keeper, one router per queue, the recurring scheduler, the worker pool.</summary>
    public static AkkaConfigurationBuilder AddClusterJobsActors(this AkkaConfigurationBuilder akka, IServiceProvider sp, ClusterJobsOptions options)
    {
        var redis = sp.GetRequiredService<RedisConnectionService>();
        var routers = sp.GetRequiredService<QueueRouters>();
        var keys = new RedisKeys(options.KeyPrefix);
        var brokerSettings = new BrokerSettings
        {
            LeaseDuration = options.LeaseDuration, ResultTtl = options.ResultTtl, MaxLostDeliveries = options.MaxLostDeliveries,
        };
        var ingressSettings = new QueueIngressSettings { PollInterval = options.PollInterval, MaxPayloadBytes = options.MaxPayloadBytes };
        string? node = null;
        QueueBroker Broker(string queue) => new(redis.Connection, keys, queue, node!, brokerSettings);

        akka.AddStartup((system, _) => node = Cluster.Get(system).SelfAddress.ToString());
        akka.WithActors((system, _, _) => node ??= Cluster.Get(system).SelfAddress.ToString());
        akka.AddMemberRegistry(() => redis.Connection, keys);
        akka.AddResultWriter(Broker, queue => routers.TryGet(queue));
        akka.AddLeaseKeeper(Broker, options.LeaseDuration);
        if (options.Queues.Count == 0) return akka;
        akka.AddQueueRouters(options.Queues.Select(q => q.Name), routers,
            queue => QueueIngressActorExtensions.IngressProps(redis.Connection, Broker(queue), brokerSettings, ingressSettings),
            splitsProps: queue => Splits.SplitTrackerActorExtensions.SplitTrackerProps(Broker(queue)),
            routing: new QueueRouterSettings
            {
                ReadAhead = options.ReadAhead, MaxHold = options.LeaseDuration / 4, GrantToLocalPools = options.GrantToLocalPools,
            });
        akka.AddRouterLookupWatch(routers, options.RouterLookupWarningAfter);
        akka.AddRecurringScheduler(options.Queues.Select(q => q.Name).ToList(), () => redis.Connection, keys, options.MaxPayloadBytes);
        var served = options.Queues.Select(q => q with { MaxConcurrency = q.Limit(options.Concurrency) }).ToList();
        return akka.AddWorkerPool(served, options.Concurrency, routers, (system, registry) =>
            WorkerActorExtensions.WorkerProps(sp.GetRequiredService<TaskRegistry>(), sp, registry.Get<ResultWriterActor>(), node!, Broker),
            () => redis.Connection, keys, options.MaxRunaways, options.DrainGrace,
            takerProps: queue => QueueTakerActorExtensions.TakerProps(Broker(queue), ingressSettings));
    }
}
