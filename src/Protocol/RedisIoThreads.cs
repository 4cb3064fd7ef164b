using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>Which threads read a Redis connection's socket and complete its calls.</summary>
public enum RedisIoThreads
{
    /// <summary>StackExchange.Redis's default: a pool of 10 dedicated threads, shared by every connection of the process.</summary>
    Dedicated,

    /// <summary>
    /// The .NET thread pool: no threads of its own, so fewer threads to wake per call. The node's default: it did
    /// 10-20% more jobs per second in a drain on two cores (docs/benchmarks.md).
    /// </summary>
    ThreadPool,
}

public static class RedisIoThreadsExtensions
{
    /// <summary>Reads <c>thread-pool</c> or <c>dedicated</c> (as in CLUSTERJOBS_REDIS_IO and the plugin's <c>io-threads</c>).</summary>
    public static RedisIoThreads Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "thread-pool" => RedisIoThreads.ThreadPool,
        "dedicated" => RedisIoThreads.Dedicated,
        _ => throw new ArgumentException($"Redis I/O threads '{text}': expected 'thread-pool' or 'dedicated'."),
    };

    public static string ToText(this RedisIoThreads io) => io == RedisIoThreads.ThreadPool ? "thread-pool" : "dedicated";

    /// <summary>The StackExchange.Redis socket manager for it; null leaves StackExchange.Redis's default.</summary>
    public static SocketManager? SocketManager(this RedisIoThreads io) =>
        io == RedisIoThreads.ThreadPool ? StackExchange.Redis.SocketManager.ThreadPool : null;
}
