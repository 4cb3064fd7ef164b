using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;
using BenchmarkDotNet.Attributes;
using ClusterJobs.Node.Serialization;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;

namespace ClusterJobs.Micro;

/// <summary>The envelope on the wire: producer JSON in Redis, and a Dispatch of 16 jobs between nodes.</summary>
[MemoryDiagnoser]
public class EnvelopeBenchmarks
{
    private JobEnvelope _envelope = null!;
    private string _json = null!;
    private ActorSystem _system = null!;
    private Serializer _serializer = null!;
    private WorkerPool.Dispatch _dispatch = null!;
    private byte[] _dispatchBytes = null!;

    [GlobalSetup]
    public void Setup()
    {
        _envelope = new JobEnvelope
        {
            Id = JobIds.New("emails"), Task = "send_email", Queue = "emails",
            Args = JsonSerializer.SerializeToElement(new { recipient = "ada@example.com", subject = "Welcome" }),
            EnqueuedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), MaxAttempts = 3,
        };
        _json = ProtocolJson.Serialize(_envelope);
        _system = ActorSystem.Create("micro");
        _serializer = new ClusterJobsMessageSerializer((ExtendedActorSystem)_system);
        _dispatch = new WorkerPool.Dispatch("emails", Enumerable.Range(0, 16).Select(i => new JobLease(_envelope with { Id = $"emails:{i}" }, 1)).ToList());
        _dispatchBytes = _serializer.ToBinary(_dispatch);
    }

    [GlobalCleanup]
    public Task Cleanup() => _system.Terminate();

    [Benchmark] public string SerializeEnvelope() => ProtocolJson.Serialize(_envelope);
    [Benchmark] public JobEnvelope? DeserializeEnvelope() => ProtocolJson.DeserializeEnvelope(_json);
    [Benchmark] public byte[] SerializeDispatchOf16() => _serializer.ToBinary(_dispatch);
    [Benchmark] public object DeserializeDispatchOf16() => ((SerializerWithStringManifest)_serializer).FromBinary(_dispatchBytes, "pd");
}
