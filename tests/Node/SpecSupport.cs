using System.Text.Json;
using Akka.Actor;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Tests;

/// <summary>
/// Test classes run in parallel on small CI machines (2 cores) and TestKit's blocking expectations hold thread-pool
/// threads; a higher floor keeps actors and handlers from waiting for the pool to grow.
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

/// <summary>TestKit configuration shared by the actor specs: every message goes through its serializer, as between nodes.</summary>
public static class SpecConfig
{
    public const string Hocon = """
        akka {
          loglevel = WARNING
          stdout-loglevel = WARNING
          log-dead-letters = off
          log-dead-letters-during-shutdown = off
          actor {
            serialize-messages = on
            serializers {
              clusterjobs = "ClusterJobs.Node.Serialization.ClusterJobsMessageSerializer, ClusterJobs.Node"
              # As in a cluster (Akka.Remote binds it so): an actor's failure reply to an Ask from another node.
              akka-misc = "Akka.Remote.Serialization.MiscMessageSerializer, Akka.Remote"
            }
            serialization-bindings {
              "ClusterJobs.Node.Serialization.IClusterJobsMessage, ClusterJobs.Node" = clusterjobs
              "Akka.Actor.Status+Failure, Akka" = akka-misc
            }
            serialization-identifiers {
              "Akka.Remote.Serialization.MiscMessageSerializer, Akka.Remote" = 16
            }
          }
        }
        """;
}

/// <summary>Relays everything it receives to <c>target</c>, keeping the original sender (so the target can Reply).</summary>
public sealed class Forwarder : ReceiveActor
{
    public Forwarder(IActorRef target) => ReceiveAny(m => target.Forward(m));

    public static Props Props(IActorRef target) => Akka.Actor.Props.Create(() => new Forwarder(target));
}

/// <summary>
/// Parent of the actor under test: what the child tells its parent goes to <c>probe</c>; everything else is
/// forwarded to the child (so a spec talks to the child through this parent).
/// </summary>
public sealed class ForwardingParent : ReceiveActor
{
    public ForwardingParent(Props childProps, IActorRef probe)
    {
        var child = Context.ActorOf(childProps, "child");
        ReceiveAny(m =>
        {
            if (Sender.Equals(child)) probe.Forward(m);
            else child.Forward(m);
        });
    }

    public static Props Props(Props childProps, IActorRef probe) =>
        Akka.Actor.Props.Create(() => new ForwardingParent(childProps, probe));
}

/// <summary>Builders of envelopes and leases for specs.</summary>
public static class Jobs
{
    public static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    public static JobEnvelope Envelope(string queue, string suffix, string task = "echo", string args = "{}",
        int maxAttempts = 3, long? softTimeoutMs = null, long? hardTimeoutMs = null, long backoffMs = 1_000) => new()
    {
        Id = $"{queue}:{suffix}",
        Task = task,
        Queue = queue,
        Args = Json(args),
        MaxAttempts = maxAttempts,
        BackoffMs = backoffMs,
        SoftTimeoutMs = softTimeoutMs,
        HardTimeoutMs = hardTimeoutMs,
        EnqueuedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
    };

    public static JobLease Lease(string queue, string suffix, int attempt = 1, string task = "echo", string args = "{}",
        int maxAttempts = 3, long? softTimeoutMs = null, long? hardTimeoutMs = null) =>
        new(Envelope(queue, suffix, task, args, maxAttempts, softTimeoutMs, hardTimeoutMs) with { Attempt = attempt }, attempt);

    public static IReadOnlyList<JobLease> Leases(string queue, params string[] suffixes) =>
        suffixes.Select(s => Lease(queue, s)).ToList();
}
