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
    public static void Apply(ClusterJobsOptions options, IConfiguration config, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        string? Get(string option, string variable) => config[option] is { Length: > 0 } v ? v : env(variable) is { Length: > 0 } e ? e : null;

        options.RedisUrl = Get("redis", "REDIS_URL") ?? options.RedisUrl;
        // "none": a node that runs no jobs (an operator's dashboard, a producer's host) but is a member of the cluster.
        if (Get("queues", "CLUSTERJOBS_QUEUES") is { } queues) options.Queues = queues.Trim() == "none" ? [] : ClusterJobsOptions.ParseQueues(queues);
        if (Get("concurrency", "CLUSTERJOBS_CONCURRENCY") is { } c)
            options.Concurrency = int.TryParse(c, out var n) ? n : throw new ArgumentException($"Concurrency '{c}' is not a number.");
        if (Get("prefix", "CLUSTERJOBS_PREFIX") is { } prefix) options.KeyPrefix = prefix;
        if (Get("lease-seconds", "CLUSTERJOBS_LEASE_SECONDS") is { } lease)
            options.LeaseDuration = double.TryParse(lease, System.Globalization.CultureInfo.InvariantCulture, out var s)
                ? TimeSpan.FromSeconds(s) : throw new ArgumentException($"Lease '{lease}' is not a number of seconds.");
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
            options.DrainGrace = double.TryParse(drain, System.Globalization.CultureInfo.InvariantCulture, out var d)
                ? TimeSpan.FromSeconds(d) : throw new ArgumentException($"Drain grace '{drain}' is not a number of seconds.");
        if (Get("redis-wait-seconds", "CLUSTERJOBS_REDIS_WAIT_SECONDS") is { } wait)
            options.RedisStartupWait = double.TryParse(wait, System.Globalization.CultureInfo.InvariantCulture, out var rw) && rw is >= 0 and <= 86_400
                ? TimeSpan.FromSeconds(rw) : throw new ArgumentException($"Redis wait '{wait}' is not a number of seconds from 0 to 86400.");
        if (Get("http-port", "CLUSTERJOBS_HTTP_PORT") is { } http)
            options.HttpPort = int.TryParse(http, out var hp) ? hp : throw new ArgumentException($"HTTP port '{http}' is not a number.");
        if (Get("http-host", "CLUSTERJOBS_HTTP_HOST") is { } httpHost) options.HttpHost = httpHost;
        if (Get("http-token", "CLUSTERJOBS_HTTP_TOKEN") is { } token) options.HttpToken = token;
        if (Get("http-allowed-hosts", "CLUSTERJOBS_HTTP_ALLOWED_HOSTS") is { } hosts)
            options.HttpAllowedHosts = [.. hosts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        options.Cluster = ClusterBootstrap.FromEnvironment(env, roles: ["node"]);
    }
}
