using Akka.Configuration;
using ClusterJobs.Protocol;

namespace ClusterJobs.Persistence.Redis;

/// <summary>The settings a journal or snapshot-store block holds (see reference.conf).</summary>
public sealed record RedisPluginSettings(string ConfigurationString, string KeyPrefix, int Database,
    RedisIoThreads IoThreads = RedisIoThreads.Dedicated)
{
    public const string DefaultKeyPrefix = "cj:persistence";

    /// <summary>Reads a plugin block, <paramref name="defaults"/> filling what it leaves out.</summary>
    public static RedisPluginSettings Create(Config? pluginConfig, Config defaults)
    {
        var config = (pluginConfig ?? Config.Empty).WithFallback(defaults);
        var connection = config.GetString("configuration-string", "") ?? "";
        if (string.IsNullOrWhiteSpace(connection))
            throw new ConfigurationException("The Redis persistence plugin needs a configuration-string (a redis:// URL or a StackExchange.Redis configuration string).");
        var prefix = config.GetString("key-prefix", DefaultKeyPrefix) ?? DefaultKeyPrefix;
        RedisKeys.ValidatePrefix(prefix);
        var io = config.GetString("io-threads", "dedicated") ?? "dedicated";
        RedisIoThreads ioThreads;
        try { ioThreads = RedisIoThreadsExtensions.Parse(io); }
        catch (ArgumentException ex) { throw new ConfigurationException($"The Redis persistence plugin's io-threads: {ex.Message}"); }
        return new RedisPluginSettings(connection, prefix, config.GetInt("database", -1), ioThreads);
    }
}
