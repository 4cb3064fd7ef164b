using System.Text;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Hosting;
using ClusterJobs.Protocol;

namespace ClusterJobs.Persistence.Redis.Hosting;

/// <summary>Akka.Hosting options of the Redis journal (<c>akka.persistence.journal.{Identifier}</c>).</summary>
public sealed class RedisJournalOptions : JournalOptions
{
    public RedisJournalOptions() : this(isDefault: true) { }

    public RedisJournalOptions(bool isDefault, string identifier = "redis") : base(isDefault)
    {
        Identifier = identifier;
    }

    /// <summary>A redis:// URL or a StackExchange.Redis configuration string.</summary>
    public string ConfigurationString { get; set; } = "";

    /// <summary>Prefix of every key; <c>cj:persistence</c> when null.</summary>
    public string? KeyPrefix { get; set; }

    /// <summary>Redis database; the connection string's when null.</summary>
    public int? Database { get; set; }

    /// <summary>The threads that read the connection's socket (<c>io-threads</c>); reference.conf's when null.</summary>
    public RedisIoThreads? IoThreads { get; set; }

    public override string Identifier { get; set; }

    protected override Config InternalDefaultConfig => RedisPersistence.DefaultJournalConfig();

    protected override StringBuilder Build(StringBuilder sb)
    {
        RedisPersistenceOptionsText.Append(sb, ConfigurationString, KeyPrefix, Database, IoThreads);
        return base.Build(sb);
    }
}

/// <summary>Akka.Hosting options of the Redis snapshot store (<c>akka.persistence.snapshot-store.{Identifier}</c>).</summary>
public sealed class RedisSnapshotOptions : SnapshotOptions
{
    public RedisSnapshotOptions() : this(isDefault: true) { }

    public RedisSnapshotOptions(bool isDefault, string identifier = "redis") : base(isDefault)
    {
        Identifier = identifier;
    }

    /// <inheritdoc cref="RedisJournalOptions.ConfigurationString"/>
    public string ConfigurationString { get; set; } = "";

    /// <inheritdoc cref="RedisJournalOptions.KeyPrefix"/>
    public string? KeyPrefix { get; set; }

    /// <inheritdoc cref="RedisJournalOptions.Database"/>
    public int? Database { get; set; }

    /// <inheritdoc cref="RedisJournalOptions.IoThreads"/>
    public RedisIoThreads? IoThreads { get; set; }

    public override string Identifier { get; set; }

    protected override Config InternalDefaultConfig => RedisPersistence.DefaultSnapshotStoreConfig();

    protected override StringBuilder Build(StringBuilder sb)
    {
        RedisPersistenceOptionsText.Append(sb, ConfigurationString, KeyPrefix, Database, IoThreads);
        return base.Build(sb);
    }
}

internal static class RedisPersistenceOptionsText
{
    public static void Append(StringBuilder sb, string configurationString, string? keyPrefix, int? database, RedisIoThreads? ioThreads)
    {
        if (string.IsNullOrWhiteSpace(configurationString))
            throw new ArgumentException("A Redis configuration string (or redis:// URL) is required.", nameof(configurationString));
        sb.AppendLine($"configuration-string = {configurationString.ToHocon()}");
        if (keyPrefix is not null)
        {
            RedisKeys.ValidatePrefix(keyPrefix);
            sb.AppendLine($"key-prefix = {keyPrefix.ToHocon()}");
        }
        if (database is not null) sb.AppendLine($"database = {database.Value}");
        if (ioThreads is not null) sb.AppendLine($"io-threads = {ioThreads.Value.ToText()}");
    }
}
