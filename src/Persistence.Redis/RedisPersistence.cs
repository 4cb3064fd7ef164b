using Akka.Actor;
using Akka.Configuration;

namespace ClusterJobs.Persistence.Redis;

/// <summary>
/// The plugin's entry point for plain HOCON setups: <c>RedisPersistence.Get(system)</c> injects the embedded
/// <c>reference.conf</c> as a top-level fallback, so a config that names <c>akka.persistence.journal.redis</c> and
/// sets only <c>configuration-string</c> is complete. Call it right after creating the <see cref="ActorSystem"/>,
/// before the first persistent actor starts. <c>WithRedisPersistence(...)</c> does this for Akka.Hosting.
/// </summary>
public sealed class RedisPersistence : IExtension
{
    public const string JournalConfigPath = "akka.persistence.journal.redis";
    public const string SnapshotStoreConfigPath = "akka.persistence.snapshot-store.redis";

    private static readonly Lazy<Config> Reference = new(() =>
    {
        using var stream = typeof(RedisPersistence).Assembly.GetManifestResourceStream("ClusterJobs.Persistence.Redis.reference.conf")
            ?? throw new InvalidOperationException("reference.conf is missing from ClusterJobs.Persistence.Redis.");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    public RedisPersistence(ExtendedActorSystem system)
    {
        system.Settings.InjectTopLevelFallback(DefaultConfig());
    }

    /// <summary>The embedded reference.conf (both plugin blocks with their defaults).</summary>
    public static Config DefaultConfig() => Reference.Value;

    /// <summary>The defaults of the journal block alone (what <c>akka.persistence.journal.redis</c> holds).</summary>
    public static Config DefaultJournalConfig() => DefaultConfig().GetConfig(JournalConfigPath);

    /// <summary>The defaults of the snapshot-store block alone.</summary>
    public static Config DefaultSnapshotStoreConfig() => DefaultConfig().GetConfig(SnapshotStoreConfigPath);

    public static RedisPersistence Get(ActorSystem system) => system.WithExtension<RedisPersistence, RedisPersistenceProvider>();
}

public sealed class RedisPersistenceProvider : ExtensionIdProvider<RedisPersistence>
{
    public override RedisPersistence CreateExtension(ExtendedActorSystem system) => new(system);
}
