using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Serialization;
using Akka.Util.Internal;
using Xunit.Abstractions;

namespace ClusterJobs.Persistence.Redis.Tests;

/// <summary>
/// TestKit classes run in parallel on small CI machines (2 cores) and the blocking expectations hold thread-pool
/// threads; a higher floor keeps the plugin's continuations from waiting for the pool to grow.
/// </summary>
internal static class ThreadPoolFloor
{
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Raise()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}

/// <summary>
/// Base of the plugin specs: an ActorSystem whose default journal and snapshot store are the Redis plugins, configured
/// the plain-HOCON way (only the connection and prefix; class and the rest come from the injected reference.conf),
/// plugin commands published on the EventStream, a fresh persistence id and writer guid per test.
/// </summary>
public abstract class PluginSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly AtomicCounter Counter = new(0);

    protected PluginSpec(RedisFixture redis, ITestOutputHelper output, string? extraHocon = null)
        : base(SpecHocon.Plugins(redis.Url, redis.Prefix, extraHocon), output: output)
    {
        Redis = redis;
        RedisPersistence.Get(Sys); // the plain-HOCON setup step: injects reference.conf
        Extension = Akka.Persistence.Persistence.Instance.Apply(Sys);
        Pid = "p-" + Counter.IncrementAndGet();
        WriterGuid = Guid.NewGuid().ToString();
        Keys = new RedisKeys(redis.Prefix);
    }

    protected RedisFixture Redis { get; }
    protected PersistenceExtension Extension { get; }
    protected string Pid { get; }
    protected string WriterGuid { get; }
    protected RedisKeys Keys { get; }
    protected int ActorInstanceId { get; } = 1;

    protected IActorRef Journal => Extension.JournalFor(null);
    protected IActorRef SnapshotStore => Extension.SnapshotStoreFor(null);

    protected void Subscribe<T>(IActorRef subscriber) => Sys.EventStream.Subscribe(subscriber, typeof(T));
}

public static class SpecHocon
{
    public static Config Plugins(string url, string prefix, string? extra = null) => ConfigurationFactory.ParseString($$"""
        akka {
          loglevel = WARNING
          stdout-loglevel = WARNING
          log-dead-letters = off
          log-dead-letters-during-shutdown = off
          persistence {
            publish-plugin-commands = on
            journal {
              plugin = "akka.persistence.journal.redis"
              redis { configuration-string = "{{url}}", key-prefix = "{{prefix}}" }
            }
            snapshot-store {
              plugin = "akka.persistence.snapshot-store.redis"
              redis { configuration-string = "{{url}}", key-prefix = "{{prefix}}" }
            }
          }
          actor {
            serializers {
              spec-ref = "{{typeof(RefPayloadSerializer).AssemblyQualifiedName}}"
              spec-dotted = "{{typeof(DottedSerializer).AssemblyQualifiedName}}"
              spec-manifest = "{{typeof(ManifestSerializer).AssemblyQualifiedName}}"
              spec-refusing = "{{typeof(RefusingSerializer).AssemblyQualifiedName}}"
            }
            serialization-bindings {
              "{{typeof(RefPayload).AssemblyQualifiedName}}" = spec-ref
              "{{typeof(Dotted).AssemblyQualifiedName}}" = spec-dotted
              "{{typeof(WithManifest).AssemblyQualifiedName}}" = spec-manifest
              "{{typeof(NotSerializable).AssemblyQualifiedName}}" = spec-refusing
              "{{typeof(UnreadableOnLoad).AssemblyQualifiedName}}" = spec-refusing
            }
          }
        }
        {{extra ?? ""}}
        """);
}

/// <summary>A payload holding an actor reference: it must survive the store (path written, reference resolved on read).</summary>
public sealed record RefPayload(IActorRef Ref);

/// <summary>Writes <see cref="RefPayload"/> as its serialized actor path; both directions insist on a transport scope.</summary>
public sealed class RefPayloadSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public override int Identifier => 9301;

    public override string Manifest(object o) => o is RefPayload ? "R" : throw new SerializationException($"Unexpected {o.GetType()}");

    public override byte[] ToBinary(object obj)
    {
        RequireTransport();
        return obj is RefPayload p
            ? Encoding.UTF8.GetBytes(Akka.Serialization.Serialization.SerializedActorPath(p.Ref))
            : throw new SerializationException($"Unexpected {obj.GetType()}");
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        RequireTransport();
        return manifest == "R"
            ? new RefPayload(system.Provider.ResolveActorRef(Encoding.UTF8.GetString(bytes)))
            : throw new SerializationException($"Unknown manifest {manifest}");
    }

    private void RequireTransport()
    {
        var info = Akka.Serialization.Serialization.GetCurrentTransportInformation()
            ?? throw new InvalidOperationException("The store did not set the serialization transport information.");
        if (!info.System.Equals(system)) throw new InvalidOperationException("Transport information of another system.");
    }
}

/// <summary>A payload whose serializer visibly ran both ways: "a" is written ".a" and read back ".a.".</summary>
public sealed record Dotted(string Data);

/// <summary>A plain <see cref="Serializer"/> with a type manifest.</summary>
public sealed class DottedSerializer(ExtendedActorSystem system) : Serializer(system)
{
    public override int Identifier => 9302;
    public override bool IncludeManifest => true;
    public override byte[] ToBinary(object obj) => Encoding.UTF8.GetBytes("." + ((Dotted)obj).Data);
    public override object FromBinary(byte[] bytes, Type? type) =>
        type == typeof(Dotted) ? new Dotted(Encoding.UTF8.GetString(bytes) + ".") : throw new SerializationException($"Unexpected {type}");
}

/// <summary>The same idea through a <see cref="SerializerWithStringManifest"/>.</summary>
public sealed record WithManifest(string Data);

public sealed class ManifestSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public override int Identifier => 9303;
    public override string Manifest(object o) => "wm";
    public override byte[] ToBinary(object obj) => Encoding.UTF8.GetBytes("." + ((WithManifest)obj).Data);
    public override object FromBinary(byte[] bytes, string manifest) =>
        manifest == "wm" ? new WithManifest(Encoding.UTF8.GetString(bytes) + ".") : throw new SerializationException($"Unknown manifest {manifest}");
}

/// <summary>Cannot be written: its serializer throws.</summary>
public sealed record NotSerializable(string Data);

/// <summary>Can be written, but its serializer throws when reading it back: a store that deserializes it fails loudly.</summary>
public sealed record UnreadableOnLoad(string Data);

public sealed class RefusingSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public override int Identifier => 9304;
    public override string Manifest(object o) => o is UnreadableOnLoad ? "u" : "n";

    public override byte[] ToBinary(object obj) => obj switch
    {
        UnreadableOnLoad u => Encoding.UTF8.GetBytes(u.Data),
        _ => throw new SerializationException($"{obj.GetType().Name} cannot be serialized."),
    };

    public override object FromBinary(byte[] bytes, string manifest) =>
        throw new SerializationException($"Deserialized an entry of manifest '{manifest}' that should never have been read.");
}
