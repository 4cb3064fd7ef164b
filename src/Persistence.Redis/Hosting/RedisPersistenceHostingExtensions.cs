using Akka.Hosting;
using Akka.Persistence.Hosting;
using ClusterJobs.Protocol;

namespace ClusterJobs.Persistence.Redis.Hosting;

public static class RedisPersistenceHostingExtensions
{
    /// <summary>
    /// Adds the Redis journal and snapshot store, both on <paramref name="connectionString"/> (a redis:// URL or a
    /// StackExchange.Redis configuration string) under <paramref name="keyPrefix"/>, as the default plugins unless
    /// <paramref name="isDefaultPlugin"/> is false. <paramref name="journalBuilder"/> adds event adapters;
    /// <paramref name="ioThreads"/> picks the threads that read the sockets (reference.conf's <c>io-threads</c> when null).
    /// </summary>
    public static AkkaConfigurationBuilder WithRedisPersistence(
        this AkkaConfigurationBuilder builder,
        string connectionString,
        string keyPrefix = RedisPluginSettings.DefaultKeyPrefix,
        int? database = null,
        bool isDefaultPlugin = true,
        string pluginIdentifier = "redis",
        Action<AkkaPersistenceJournalBuilder>? journalBuilder = null,
        RedisIoThreads? ioThreads = null)
    {
        var journal = new RedisJournalOptions(isDefaultPlugin, pluginIdentifier)
        {
            ConfigurationString = connectionString, KeyPrefix = keyPrefix, Database = database, IoThreads = ioThreads,
        };
        var snapshots = new RedisSnapshotOptions(isDefaultPlugin, pluginIdentifier)
        {
            ConfigurationString = connectionString, KeyPrefix = keyPrefix, Database = database, IoThreads = ioThreads,
        };
        return builder.WithRedisPersistence(journal, snapshots, journalBuilder);
    }

    /// <summary>Adds the journal, the snapshot store or both (a null option leaves that plugin out).</summary>
    public static AkkaConfigurationBuilder WithRedisPersistence(
        this AkkaConfigurationBuilder builder,
        RedisJournalOptions? journalOptions,
        RedisSnapshotOptions? snapshotOptions,
        Action<AkkaPersistenceJournalBuilder>? journalBuilder = null)
    {
        if (journalOptions is null && snapshotOptions is null)
            throw new ArgumentException("Give journal options, snapshot options or both.");
        builder.AddHocon(RedisPersistence.DefaultConfig(), HoconAddMode.Append);
        if (journalOptions is not null && snapshotOptions is not null)
            return builder.WithJournalAndSnapshot(journalOptions, snapshotOptions, journalBuilder ?? (_ => { }), _ => { });
        if (journalOptions is not null)
            return builder.WithJournal(journalOptions, journalBuilder ?? (_ => { }));
        return builder.WithSnapshot(snapshotOptions!);
    }
}
