using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence;
using ClusterJobs.Persistence.Redis.Hosting;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>WithRedisPersistence(...) on Akka.Hosting: one call makes the Redis plugins the ones persistent actors use.</summary>
[Collection(PluginCollection.Name)]
public sealed class HostingSpecs(RedisFixture redis)
{
    /// <summary>Runs <paramref name="spec"/> on the actor system of a started host configured by <paramref name="configure"/>, then stops it.</summary>
    private static async Task WithHostAsync(Action<AkkaConfigurationBuilder> configure, Func<ActorSystem, Task> spec)
    {
        using var host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka("hosting-spec", (builder, _) =>
            {
                builder.AddHocon("akka.loglevel = WARNING", HoconAddMode.Prepend);
                configure(builder);
            }))
            .Build();
        await host.StartAsync();
        try
        {
            await spec(host.Services.GetRequiredService<ActorSystem>());
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task With_a_connection_string_and_prefix_the_default_journal_and_snapshot_store_are_the_redis_ones()
    {
        var prefix = redis.Prefix + ":hosting";
        await WithHostAsync(b => b.WithRedisPersistence(redis.Url, prefix), async system =>
        {
            var pid = "hosted-" + Guid.NewGuid().ToString("N")[..8];
            var actor = system.ActorOf(Props.Create(() => new Counter(pid, null, null)));
            Assert.Equal(1, await actor.Ask<int>("inc", TimeSpan.FromSeconds(10)));
            Assert.Equal(2, await actor.Ask<int>("inc", TimeSpan.FromSeconds(10)));
            Assert.Equal("saved", await actor.Ask<string>("snap", TimeSpan.FromSeconds(10)));

            var keys = new RedisKeys(prefix);
            Assert.Equal(2, await redis.Db.SortedSetLengthAsync(keys.Events(pid)));
            Assert.Equal(1, await redis.Db.SortedSetLengthAsync(keys.SnapshotIndex(pid)));

            // A new incarnation recovers from the snapshot and the events.
            await actor.GracefulStop(TimeSpan.FromSeconds(5));
            var again = system.ActorOf(Props.Create(() => new Counter(pid, null, null)));
            Assert.Equal(3, await again.Ask<int>("inc", TimeSpan.FromSeconds(10)));
        });
    }

    [Fact]
    public async Task As_a_named_plugin_beside_another_default_it_serves_the_actors_that_ask_for_it()
    {
        var prefix = redis.Prefix + ":named";
        await WithHostAsync(b => b.WithRedisPersistence(redis.Url, prefix, isDefaultPlugin: false, pluginIdentifier: "redis-jobs"), async system =>
        {
            var pid = "named-" + Guid.NewGuid().ToString("N")[..8];
            var actor = system.ActorOf(Props.Create(() => new Counter(pid,
                "akka.persistence.journal.redis-jobs", "akka.persistence.snapshot-store.redis-jobs")));
            Assert.Equal(1, await actor.Ask<int>("inc", TimeSpan.FromSeconds(10)));
            Assert.Equal("saved", await actor.Ask<string>("snap", TimeSpan.FromSeconds(10)));

            var keys = new RedisKeys(prefix);
            Assert.Equal(1, await redis.Db.SortedSetLengthAsync(keys.Events(pid)));
            Assert.Equal(1, await redis.Db.SortedSetLengthAsync(keys.SnapshotIndex(pid)));
        });
    }

    [Fact]
    public async Task The_database_number_chooses_where_the_keys_live()
    {
        var prefix = redis.Prefix + ":db";
        await WithHostAsync(b => b.WithRedisPersistence(redis.Url, prefix, database: 3), async system =>
        {
            var pid = "db-" + Guid.NewGuid().ToString("N")[..8];
            var actor = system.ActorOf(Props.Create(() => new Counter(pid, null, null)));
            Assert.Equal(1, await actor.Ask<int>("inc", TimeSpan.FromSeconds(10)));

            var keys = new RedisKeys(prefix);
            Assert.Equal(1, await redis.Redis.GetDatabase(3).SortedSetLengthAsync(keys.Events(pid)));
            Assert.False(await redis.Db.KeyExistsAsync(keys.Events(pid)));
            await redis.Redis.GetDatabase(3).KeyDeleteAsync([keys.Events(pid), keys.Highest(pid)]);
        });
    }

    [Fact]
    public async Task On_thread_pool_io_both_plugins_are_configured_so_and_persist()
    {
        var prefix = redis.Prefix + ":io";
        await WithHostAsync(b => b.WithRedisPersistence(redis.Url, prefix, ioThreads: RedisIoThreads.ThreadPool), async system =>
        {
            Assert.Equal("thread-pool", system.Settings.Config.GetString("akka.persistence.journal.redis.io-threads"));
            Assert.Equal("thread-pool", system.Settings.Config.GetString("akka.persistence.snapshot-store.redis.io-threads"));
            var pid = "io-" + Guid.NewGuid().ToString("N")[..8];
            var actor = system.ActorOf(Props.Create(() => new Counter(pid, null, null)));
            Assert.Equal(1, await actor.Ask<int>("inc", TimeSpan.FromSeconds(10)));
            Assert.Equal("saved", await actor.Ask<string>("snap", TimeSpan.FromSeconds(10)));
            Assert.Equal(1, await redis.Db.SortedSetLengthAsync(new RedisKeys(prefix).SnapshotIndex(pid)));
        });
    }

    private sealed class Counter : ReceivePersistentActor
    {
        private int _count;

        public Counter(string persistenceId, string? journal, string? snapshots)
        {
            PersistenceId = persistenceId;
            if (journal is not null) JournalPluginId = journal;
            if (snapshots is not null) SnapshotPluginId = snapshots;
            Recover<SnapshotOffer>(o => _count = (int)(long)Convert.ToInt64(o.Snapshot));
            Recover<string>(_ => _count++);
            Command<string>(cmd => cmd == "inc", _ =>
            {
                var sender = Sender;
                Persist("inc", _ => sender.Tell(++_count));
            });
            Command<string>(cmd => cmd == "snap", _ =>
            {
                SaveSnapshot(_count);
                var sender = Sender;
                Become(() =>
                {
                    Command<SaveSnapshotSuccess>(_ => { sender.Tell("saved"); UnbecomeStacked(); });
                    Command<SaveSnapshotFailure>(f => { sender.Tell(new Status.Failure(f.Cause)); UnbecomeStacked(); });
                });
            });
        }

        public override string PersistenceId { get; }
    }
}
