using System.Diagnostics;
using Akka.Actor;
using Akka.Persistence;
using Akka.TestKit;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// Redis goes away and comes back on the same port: while it is down the plugins fail fast (through Akka's circuit
/// breaker), a failed highest-sequence-number read fails the recovery instead of reading as 0, and once Redis is back
/// they work again by themselves: no restart of the actor system, the plugin actors or the connection.
/// Runs its own redis-server, since it kills it.
/// </summary>
[Collection(OutageCollection.Name)]
public sealed class OutageSpecs(ITestOutputHelper output)
{
    private static string Breaker => """
        circuit-breaker { max-failures = 3, call-timeout = 5s, reset-timeout = 1s }
        """;

    [Fact]
    public async Task While_Redis_is_down_writes_fail_fast_and_once_it_is_back_on_the_same_port_they_succeed_again()
    {
        var port = RedisServer.PortNoOneElseIsGiven();
        var server = await RedisServer.StartBinaryAsync(port: port);
        try
        {
            var config = SpecHocon.Plugins(server.Url, "outage", $$"""
                akka.persistence.journal.redis { {{Breaker}} }
                akka.persistence.snapshot-store.redis { {{Breaker}} }
                """);
            using var kit = new Akka.TestKit.Xunit2.TestKit(config, "outage", output);
            RedisPersistence.Get(kit.Sys);
            var persistence = Akka.Persistence.Persistence.Instance.Apply(kit.Sys);
            var probe = kit.CreateTestProbe();

            var before = kit.Sys.ActorOf(Props.Create(() => new Writer("before", probe.Ref)));
            before.Tell("e1");
            probe.ExpectMsg("persisted:e1", TimeSpan.FromSeconds(10));

            server.Kill();

            // A running entity's persist fails at once (it is stopped by Akka, as for any journal failure).
            var clock = Stopwatch.StartNew();
            before.Tell("e2");
            probe.ExpectMsg<string>(m => m.StartsWith("persist-failed:"), TimeSpan.FromSeconds(10));
            output.WriteLine($"persist failed after {clock.ElapsedMilliseconds} ms");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the persist took {clock.Elapsed} to fail");

            // Recovery cannot read the highest sequence number: that is a failure, never "0, nothing stored".
            persistence.JournalFor(null).Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, "before", probe.Ref));
            probe.ExpectMsg<ReplayMessagesFailure>(TimeSpan.FromSeconds(10));

            persistence.SnapshotStoreFor(null).Tell(new SaveSnapshot(new SnapshotMetadata("before", 1, DateTime.MinValue), "snap"), probe.Ref);
            probe.ExpectMsg<SaveSnapshotFailure>(TimeSpan.FromSeconds(10));

            await server.DisposeAsync();
            server = await RedisServer.StartBinaryAsync(port: port);
            clock.Restart();

            // Same plugin actors, same connection: each attempt is a new entity; the first ones may still meet the
            // open breaker or the reconnecting client.
            await EventuallyAsync(probe, attempt =>
            {
                kit.Sys.ActorOf(Props.Create(() => new Writer($"after-{attempt}", probe.Ref))).Tell("e1");
                return "persisted:e1";
            });
            output.WriteLine($"persist works again {clock.ElapsedMilliseconds} ms after Redis came back");
            await EventuallyAsync(probe, attempt =>
            {
                persistence.SnapshotStoreFor(null).Tell(new SaveSnapshot(new SnapshotMetadata($"after-{attempt}", 1, DateTime.MinValue), "snap"), probe.Ref);
                return typeof(SaveSnapshotSuccess);
            });
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_plugin_started_while_Redis_is_down_fails_its_requests_and_works_once_Redis_is_up()
    {
        var port = RedisServer.PortNoOneElseIsGiven();
        // The plugin's connect attempt holds its first requests for up to a connect timeout (5 s by default) while a
        // connection is neither refused nor answered; a short one keeps this spec well inside its wait on a busy machine.
        var url = $"127.0.0.1:{port},connectTimeout=1000";
        RedisServer? server = null;
        try
        {
            var config = SpecHocon.Plugins(url, "startup", $$"""
                akka.persistence.journal.redis { {{Breaker}} }
                akka.persistence.snapshot-store.redis { {{Breaker}} }
                """);
            using var kit = new Akka.TestKit.Xunit2.TestKit(config, "startup", output);
            RedisPersistence.Get(kit.Sys);
            var persistence = Akka.Persistence.Persistence.Instance.Apply(kit.Sys);
            var probe = kit.CreateTestProbe();

            persistence.JournalFor(null).Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, "early", probe.Ref));
            var failure = probe.ExpectMsg<ReplayMessagesFailure>(TimeSpan.FromSeconds(15));
            Assert.IsType<RedisConnectionException>(failure.Cause);

            server = await RedisServer.StartBinaryAsync(port: port);
            await EventuallyAsync(probe, attempt =>
            {
                kit.Sys.ActorOf(Props.Create(() => new Writer($"late-{attempt}", probe.Ref))).Tell("e1");
                return "persisted:e1";
            });
        }
        finally
        {
            if (server is not null) await server.DisposeAsync();
        }
    }

    /// <summary>Retries <paramref name="attempt"/> until the probe gets what it says to expect, for up to 30 s.</summary>
    private static async Task EventuallyAsync(TestProbe probe, Func<int, object> attempt)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        for (var n = 0; ; n++)
        {
            var expected = attempt(n);
            var reply = await probe.ReceiveOneAsync(TimeSpan.FromSeconds(5));
            if (expected is Type type ? type.IsInstanceOfType(reply) : Equals(expected, reply)) return;
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"Still failing after 30 s; last reply: {reply}");
            await Task.Delay(200);
        }
    }

    private sealed class Writer : ReceivePersistentActor
    {
        private readonly IActorRef _probe;

        public Writer(string persistenceId, IActorRef probe)
        {
            PersistenceId = persistenceId;
            _probe = probe;
            Recover<string>(_ => { });
            Command<string>(e => Persist(e, _ => probe.Tell("persisted:" + e)));
        }

        public override string PersistenceId { get; }

        protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
        {
            _probe.Tell("persist-failed:" + cause.GetType().Name);
            base.OnPersistFailure(cause, @event, sequenceNr);
        }

        protected override void OnRecoveryFailure(Exception reason, object? message = null)
        {
            _probe.Tell("recovery-failed:" + reason.GetType().Name);
            base.OnRecoveryFailure(reason, message);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class OutageCollection
{
    public const string Name = "outage";
}
