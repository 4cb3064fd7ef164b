using Akka.Configuration;
using ClusterJobs.Protocol;
using ClusterJobs.Persistence.Redis.Journal;
using ClusterJobs.Persistence.Redis.Snapshot;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>The HOCON the plugin ships and reads, and the key layout it derives from it.</summary>
public sealed class ConfigurationSpecs
{
    [Fact]
    public void The_embedded_reference_config_names_both_plugins_and_their_defaults()
    {
        var journal = RedisPersistence.DefaultJournalConfig();
        var snapshots = RedisPersistence.DefaultSnapshotStoreConfig();

        Assert.Equal(typeof(RedisJournal), Type.GetType(journal.GetString("class"), throwOnError: true));
        Assert.Equal(typeof(RedisSnapshotStore), Type.GetType(snapshots.GetString("class"), throwOnError: true));
        foreach (var block in new[] { journal, snapshots })
        {
            Assert.Equal("cj:persistence", block.GetString("key-prefix"));
            Assert.Equal(-1, block.GetInt("database"));
            Assert.Equal("akka.actor.default-dispatcher", block.GetString("plugin-dispatcher"));
            Assert.Equal("", block.GetString("configuration-string"));
            Assert.Equal("dedicated", block.GetString("io-threads"));
        }
    }

    [Fact]
    public void A_plugin_block_needs_only_its_connection_string()
    {
        var settings = RedisPluginSettings.Create(ConfigurationFactory.ParseString("configuration-string = \"redis://127.0.0.1:6379/2\""),
            RedisPersistence.DefaultJournalConfig());
        Assert.Equal(new RedisPluginSettings("redis://127.0.0.1:6379/2", "cj:persistence", -1), settings);
    }

    [Fact]
    public void A_plugin_block_without_a_connection_string_is_refused()
    {
        Assert.Throws<ConfigurationException>(() => RedisPluginSettings.Create(null, RedisPersistence.DefaultJournalConfig()));
    }

    [Theory]
    [InlineData("my{app}")]
    [InlineData("")]
    public void A_key_prefix_that_would_break_the_hash_tags_is_refused(string prefix)
    {
        Assert.ThrowsAny<ArgumentException>(() => new RedisKeys(prefix));
    }

    [Fact]
    public void Keys_are_prefix_kind_hash_tagged_persistence_id_and_role()
    {
        var keys = new RedisKeys("cj:persistence");
        Assert.Equal("cj:persistence:j:{order-7}:events", (string)keys.Events("order-7")!);
        Assert.Equal("cj:persistence:j:{order-7}:highest", (string)keys.Highest("order-7")!);
        Assert.Equal("cj:persistence:s:{order-7}:idx", (string)keys.SnapshotIndex("order-7")!);
        Assert.Equal("cj:persistence:s:{order-7}:data", (string)keys.SnapshotData("order-7")!);
        Assert.Equal("{a%7Bb%7Dc%25}", RedisKeys.Tag("a{b}c%"));
    }

    [Fact]
    public void The_connection_never_aborts_on_a_failed_connect_and_fails_commands_fast_while_down()
    {
        var options = PluginConnection.Options(new RedisPluginSettings("127.0.0.1:6390,abortConnect=true", "p", -1), "client");
        Assert.False(options.AbortOnConnectFail);
        Assert.Same(StackExchange.Redis.BacklogPolicy.FailFast, options.BacklogPolicy);
        Assert.Equal("client", options.ClientName);
    }

    [Fact]
    public void Io_threads_are_stack_exchange_redis_own_unless_the_thread_pool_is_asked_for()
    {
        var journal = RedisPersistence.DefaultJournalConfig();
        var plain = RedisPluginSettings.Create(ConfigurationFactory.ParseString("configuration-string = \"127.0.0.1:6390\""), journal);
        var pooled = RedisPluginSettings.Create(ConfigurationFactory.ParseString("configuration-string = \"127.0.0.1:6390\"\nio-threads = thread-pool"), journal);

        Assert.Equal(RedisIoThreads.Dedicated, plain.IoThreads);
        Assert.NotSame(StackExchange.Redis.SocketManager.ThreadPool, PluginConnection.Options(plain, "client").SocketManager);
        Assert.Equal(RedisIoThreads.ThreadPool, pooled.IoThreads);
        Assert.Same(StackExchange.Redis.SocketManager.ThreadPool, PluginConnection.Options(pooled, "client").SocketManager);
    }

    [Fact]
    public void Io_threads_that_are_neither_is_refused_with_the_value()
    {
        var error = Assert.Throws<ConfigurationException>(() => RedisPluginSettings.Create(
            ConfigurationFactory.ParseString("configuration-string = \"127.0.0.1:6390\"\nio-threads = many"), RedisPersistence.DefaultJournalConfig()));
        Assert.Contains("io-threads", error.Message);
        Assert.Contains("'many'", error.Message);
    }
}
