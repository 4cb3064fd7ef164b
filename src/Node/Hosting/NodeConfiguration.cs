using ClusterJobs.Protocol;
using Microsoft.Extensions.Configuration;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Reads a node's settings from command-line options and environment variables (command line wins):
/// --queues / CLUSTERJOBS_QUEUES, --concurrency / CLUSTERJOBS_CONCURRENCY, REDIS_URL, CLUSTERJOBS_PREFIX,
/// CLUSTERJOBS_LEASE_SECONDS, CLUSTERJOBS_MAX_PAYLOAD_BYTES, CLUSTERJOBS_READ_AHEAD, CLUSTERJOBS_WARMUP_JOBS, CLUSTERJOBS_REDIS_IO, CLUSTERJOBS_REDIS_WAIT_SECONDS, CLUSTERJOBS_HTTP_PORT, CLUSTERJOBS_HTTP_HOST, CLUSTERJOBS_HTTP_TOKEN, CLUSTERJOBS_HTTP_ALLOWED_HOSTS and the CLUSTER_* variables of <see cref="ClusterBootstrap"/>.
/// </summary>
public static class NodeConfiguration
{
    /// <summary>
    /// The command line's options (<c>--queues a,b</c>) for <see cref="Apply"/>, and nothing else: a host's configuration
    /// also holds every environment variable by its plain name, so <c>PREFIX</c> (set by conda and Termux), <c>QUEUES</c>
    /// or <c>REDIS</c> would stand in for the options, over the documented variables.
    /// </summary>
    public static IConfiguration CommandLine(string[] args) => new ConfigurationBuilder().AddCommandLine(args).Build();

    /// <param name="config">The command line's options (<see cref="CommandLine"/>); they win over the variables.</param>
    public static void Apply(ClusterJobsOptions options, IConfiguration config, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        string? Get(string option, string variable) => config[option] is { Length: > 0 } v ? v : env(variable) is { Length: > 0 } e ? e : null;

        options.RedisUrl = Get("redis", "REDIS_URL") ?? options.RedisUrl;
        // "none": a node that runs no jobs (an operator's dashboard, a producer's host) but is a member of the cluster.
        if (Get("queues", "CLUSTERJOBS_QUEUES") is { } queues)
            options.Queues = queues.Trim() == "none" ? []
                : ClusterJobsOptions.ParseQueues(queues) is { Count: > 0 } served ? served
                : throw new ArgumentException($"Queues '{queues}' names no queue: list them (a,b), or say 'none' for a node that runs no jobs.");
        if (Get("concurrency", "CLUSTERJOBS_CONCURRENCY") is { } c)
            options.Concurrency = int.TryParse(c, out var n) ? n : throw new ArgumentException($"Concurrency '{c}' is not a number.");
        if (Get("prefix", "CLUSTERJOBS_PREFIX") is { } prefix) options.KeyPrefix = prefix;
        if (Get("lease-seconds", "CLUSTERJOBS_LEASE_SECONDS") is { } lease)
            options.LeaseDuration = ClusterBootstrap.Seconds(lease, "Lease", 1, 86_400);
        if (Get("max-payload-bytes", "CLUSTERJOBS_MAX_PAYLOAD_BYTES") is { } max)
            options.MaxPayloadBytes = int.TryParse(max, out var b) ? b : throw new ArgumentException($"Max payload '{max}' is not a number.");
        if (Get("max-runaways", "CLUSTERJOBS_MAX_RUNAWAYS") is { } runaways)
            options.MaxRunaways = int.TryParse(runaways, out var r) ? r : throw new ArgumentException($"Max runaways '{runaways}' is not a number.");
        if (Get("read-ahead", "CLUSTERJOBS_READ_AHEAD") is { } ahead)
            options.ReadAhead = int.TryParse(ahead, out var a) ? a : throw new ArgumentException($"Read-ahead '{ahead}' is not a number.");
        if (Get("warmup-jobs", "CLUSTERJOBS_WARMUP_JOBS") is { } warmUp)
            options.WarmUpJobs = int.TryParse(warmUp, out var w) ? w : throw new ArgumentException($"Warm-up jobs '{warmUp}' is not a number.");
        if (Get("redis-io", "CLUSTERJOBS_REDIS_IO") is { } io) options.RedisIo = RedisIoThreadsExtensions.Parse(io);
        if (Get("drain-seconds", "CLUSTERJOBS_DRAIN_SECONDS") is { } drain)
            options.DrainGrace = ClusterBootstrap.Seconds(drain, "Drain grace", 0, 86_400);
        if (Get("redis-wait-seconds", "CLUSTERJOBS_REDIS_WAIT_SECONDS") is { } wait)
            options.RedisStartupWait = ClusterBootstrap.Seconds(wait, "Redis wait", 0, 86_400);
        if (Get("http-port", "CLUSTERJOBS_HTTP_PORT") is { } http)
            options.HttpPort = int.TryParse(http, out var hp) ? hp : throw new ArgumentException($"HTTP port '{http}' is not a number.");
        if (Get("http-host", "CLUSTERJOBS_HTTP_HOST") is { } httpHost) options.HttpHost = httpHost;
        if (Get("http-token", "CLUSTERJOBS_HTTP_TOKEN") is { } token) options.HttpToken = token;
        if (Get("http-allowed-hosts", "CLUSTERJOBS_HTTP_ALLOWED_HOSTS") is { } hosts)
            options.HttpAllowedHosts = [.. hosts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        options.Cluster = ClusterBootstrap.FromEnvironment(env, roles: ["node"]);
    }
}
