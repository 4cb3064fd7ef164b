using System.Runtime.CompilerServices;
using System.Runtime.Serialization;
using System.Text;
using Akka.Serialization;
using ClusterJobs.Node.Routing;
using ClusterJobs.Node.Serialization;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using Xunit.Abstractions;

namespace ClusterJobs.Node.Tests;

public sealed class SerializerSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(SpecConfig.Hocon, output: output)
{
    private SerializerWithStringManifest Ours(object message)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<ClusterJobsMessageSerializer>(serializer);
        Assert.Equal(6471, serializer.Identifier);
        return (SerializerWithStringManifest)serializer;
    }

    /// <summary>Serializes as remoting would (serializer id, manifest, bytes) and reads back through the actor system.</summary>
    private T RoundTrip<T>(T message) where T : notnull
    {
        var serializer = Ours(message);
        var manifest = serializer.Manifest(message);
        Assert.InRange(manifest.Length, 1, 3);
        Assert.DoesNotContain(".", manifest);
        Assert.Equal(manifest, Akka.Serialization.Serialization.ManifestFor(serializer, message));
        var bytes = serializer.ToBinary(message);
        var back = Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);
        return Assert.IsType<T>(back);
    }

    [Fact]
    public void Demand_round_trips()
    {
        Assert.Equal(new QueueRouter.Demand(7, Park: true), RoundTrip(new QueueRouter.Demand(7, Park: true)));
        Assert.Equal(new QueueRouter.Demand(1, Park: false), RoundTrip(new QueueRouter.Demand(1, Park: false)));
    }

    [Fact]
    public void Demand_says_whether_the_pool_takes_its_own_share_and_reads_trace_context_and_a_demand_of_an_older_node_does_neither()
    {
        Assert.True(RoundTrip(new QueueRouter.Demand(3, Park: true, TakesOwn: true)).TakesOwn);
        Assert.True(RoundTrip(new QueueRouter.Demand(3, Park: true, ReadsTraceContext: true)).ReadsTraceContext);
        var serializer = Ours(new QueueRouter.Demand(1, Park: true));
        var older = serializer.FromBinary("{\"Slots\":5,\"Park\":false}"u8.ToArray(), serializer.Manifest(new QueueRouter.Demand(1, true)));
        Assert.Equal(new QueueRouter.Demand(5, Park: false, TakesOwn: false, ReadsTraceContext: false), older);
    }

    [Fact]
    public void Grant_and_Took_round_trip()
    {
        Assert.Equal(new WorkerPool.Grant("q", 40), RoundTrip(new WorkerPool.Grant("q", 40)));
        var took = RoundTrip(new QueueRouter.Took(["q:1", "q:2"], Granted: 40, Exhausted: true));
        Assert.Equal(["q:1", "q:2"], took.JobIds);
        Assert.Equal(40, took.Granted);
        Assert.True(took.Exhausted);
    }

    [Fact]
    public void Withdraw_and_GetStatus_come_back_as_their_singletons_from_no_bytes()
    {
        Assert.Empty(Ours(QueueRouter.Withdraw.Instance).ToBinary(QueueRouter.Withdraw.Instance));
        Assert.Same(QueueRouter.Withdraw.Instance, RoundTrip(QueueRouter.Withdraw.Instance));
        Assert.Same(QueueRouter.GetStatus.Instance, RoundTrip(QueueRouter.GetStatus.Instance));
    }

    [Fact]
    public void JobsCompleted_round_trips()
    {
        var back = RoundTrip(new QueueRouter.JobsCompleted(["q:1", "q:2", "q:3"]));
        Assert.Equal(["q:1", "q:2", "q:3"], back.JobIds);
        Assert.Empty(RoundTrip(new QueueRouter.JobsCompleted([])).JobIds);
    }

    [Fact]
    public void Split_messages_and_the_coordinator_events_round_trip()
    {
        Assert.Equal("q:p", RoundTrip(new Splits.SplitTracker.SplitStarted("q:p")).ParentId);
        var finished = RoundTrip(new Splits.SplitTracker.ChildrenFinished([new Broker.FinishedChild("q:p", "q:p.0"), new Broker.FinishedChild("q:p", "q:p.1")]));
        Assert.Equal([new Broker.FinishedChild("q:p", "q:p.0"), new Broker.FinishedChild("q:p", "q:p.1")], finished.Children);
        Assert.Equal(["q:p.3"], RoundTrip(new Splits.SplitCoordinator.ChildrenEnded(["q:p.3"])).ChildIds);
        Assert.Equal(new Splits.SplitCoordinator.Tracked(10, CollectFailures: true), RoundTrip(new Splits.SplitCoordinator.Tracked(10, true)));
        var recorded = RoundTrip(new Splits.SplitCoordinator.ChildrenRecorded(
            [new("q:p.0", "succeeded", "42"), new("q:p.1", "dead_lettered", "{\"type\":\"Boom\"}")]));
        Assert.Equal([new("q:p.0", "succeeded", "42"), new Splits.SplitCoordinator.RecordedChild("q:p.1", "dead_lettered", "{\"type\":\"Boom\"}")], recorded.Children);
        Assert.True(recorded.Children[0].Succeeded);
        Assert.False(recorded.Children[1].Succeeded);
    }

    [Fact]
    public void RouterStatus_round_trips()
    {
        var status = new QueueRouter.RouterStatus("q", Buffered: 1, Pools: 2, Credit: 3, InFlight: 4, Granted: 5);
        Assert.Equal(status, RoundTrip(status));
    }

    [Fact]
    public void A_pools_status_and_the_question_round_trip()
    {
        var status = RoundTrip(new WorkerPool.PoolStatus(16, 3, new Dictionary<string, int> { ["high"] = 2, ["low"] = 1 },
            new Dictionary<string, int> { ["high"] = 5 }, Runaways: 1, RunawaysTotal: 4));
        Assert.Equal((16, 3, 1, 4), (status.Capacity, status.Busy, status.Runaways, status.RunawaysTotal));
        Assert.Equal(new Dictionary<string, int> { ["high"] = 2, ["low"] = 1 }, status.BusyByQueue);
        Assert.Equal(new Dictionary<string, int> { ["high"] = 5 }, status.CreditByQueue);
        Assert.Same(WorkerPool.GetStatus.Instance, RoundTrip(WorkerPool.GetStatus.Instance));
    }

    [Fact]
    public void Empty_WorkAvailable_and_Withdrawn_round_trip()
    {
        Assert.Equal(new WorkerPool.Empty("q", 5), RoundTrip(new WorkerPool.Empty("q", 5)));
        Assert.Equal(new WorkerPool.WorkAvailable("high"), RoundTrip(new WorkerPool.WorkAvailable("high")));
        Assert.Equal(new WorkerPool.Withdrawn("low", 2), RoundTrip(new WorkerPool.Withdrawn("low", 2)));
    }

    [Fact]
    public void Dispatch_round_trips_with_the_envelopes_and_their_json_args()
    {
        var full = Jobs.Envelope("q", "full", task: "send_email", args: """{"recipient":"a@b.c","nested":{"list":[1,2.5,"x",null,true]}}""",
            maxAttempts: 5, softTimeoutMs: 1_000, hardTimeoutMs: 2_000, backoffMs: 250) with
        {
            Priority = 7,
            NotBefore = 1_700_000_000_000,
            BackoffMaxMs = 9_000,
            ParentId = "q:parent",
            RootId = "q:root",
            IdempotencyKey = "key-1",
            Attempt = 2,
        };
        var positional = Jobs.Envelope("q", "positional", task: "add", args: "[1, 2]");
        var dispatch = new WorkerPool.Dispatch("q", [new JobLease(full, 2), new JobLease(positional, 1)]);

        var back = RoundTrip(dispatch);

        Assert.Equal("q", back.Queue);
        Assert.Equal(2, back.Jobs.Count);
        for (var i = 0; i < 2; i++)
        {
            var (sent, got) = (dispatch.Jobs[i], back.Jobs[i]);
            Assert.Equal(sent.Attempt, got.Attempt);
            Assert.Equal(sent.Envelope with { Args = default }, got.Envelope with { Args = default });
            Assert.Equal(sent.Envelope.Args.GetRawText().Replace(" ", ""), got.Envelope.Args.GetRawText().Replace(" ", ""));
        }
        Assert.Equal("a@b.c", back.Jobs[0].Envelope.Args.GetProperty("recipient").GetString());
    }

    /// <summary>The Dispatch layout lists the envelope's fields one by one: a field added later must not be dropped on the wire.</summary>
    [Fact]
    public void A_Dispatch_carries_every_field_of_the_envelope_and_the_lease()
    {
        var envelope = Jobs.Envelope("q", "every", task: "t", args: """{"a":[1,{"b":"\u00e9"}]}""");
        var n = 0;
        foreach (var property in typeof(JobEnvelope).GetProperties().Where(p => p.CanWrite && p.Name != nameof(JobEnvelope.Args)))
        {
            n++;
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            object value = type == typeof(string) ? $"{property.Name}-value" : type == typeof(int) ? (object)(100 + n) : type == typeof(long) ? (object)(1_000_000_000_000L + n)
                : throw new InvalidOperationException($"JobEnvelope.{property.Name} is a {type.Name}: teach DispatchWireFormat and this spec that type");
            property.SetValue(envelope, value);
        }
        var dispatch = new WorkerPool.Dispatch("q", [new JobLease(envelope, 3, "reduce")]);

        var got = RoundTrip(dispatch).Jobs.Single();

        Assert.Equal(3, got.Attempt);
        Assert.Equal("reduce", got.Phase);
        foreach (var property in typeof(JobEnvelope).GetProperties().Where(p => p.Name != nameof(JobEnvelope.Args)))
            Assert.True(Equals(property.GetValue(envelope), property.GetValue(got.Envelope)), $"{property.Name} did not cross the wire");
        Assert.Equal(envelope.Args.GetRawText(), got.Envelope.Args.GetRawText());
        Assert.Equal("é", got.Envelope.Args.GetProperty("a")[1].GetProperty("b").GetString());
    }

    /// <summary>Nodes of releases before tracing read format 1 only: a Dispatch with no trace context must stay in it.</summary>
    [Fact]
    public void A_Dispatch_with_no_trace_context_keeps_the_format_nodes_before_tracing_read()
    {
        var serializer = Ours(new WorkerPool.Empty("q", 1));
        const string traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        var plain = new WorkerPool.Dispatch("q", [Jobs.Lease("q", "a"), Jobs.Lease("q", "b")]);
        var traced = new WorkerPool.Dispatch("q", [Jobs.Lease("q", "a"), new JobLease(Jobs.Envelope("q", "b") with { TraceParent = traceParent }, 1)]);

        Assert.Equal(1, serializer.ToBinary(plain)[0]);
        Assert.Equal(2, serializer.ToBinary(traced)[0]);
        var got = RoundTrip(traced).Jobs;
        Assert.Equal((null, traceParent), (got[0].Envelope.TraceParent, got[1].Envelope.TraceParent));
    }

    /// <summary>A string set in code with a lone surrogate must not make the whole Dispatch, and its neighbour jobs, unsendable.</summary>
    [Fact]
    public void A_Dispatch_with_a_lone_surrogate_in_a_string_still_crosses_the_wire()
    {
        var envelope = Jobs.Envelope("q", "surrogate") with { IdempotencyKey = "key-\ud800" };
        var dispatch = new WorkerPool.Dispatch("q", [new JobLease(envelope, 1), Jobs.Lease("q", "neighbour")]);

        var back = RoundTrip(dispatch);

        Assert.Equal("key-\ufffd", back.Jobs[0].Envelope.IdempotencyKey);
        Assert.Equal(dispatch.Jobs[1].Envelope.Id, back.Jobs[1].Envelope.Id);
    }

    [Fact]
    public void Corrupt_Dispatch_bytes_are_a_SerializationException_and_never_a_huge_allocation()
    {
        var serializer = Ours(new WorkerPool.Empty("q", 1));
        var dispatch = new WorkerPool.Dispatch("q", [Jobs.Lease("q", "a"), Jobs.Lease("q", "b")]);
        var bytes = serializer.ToBinary(dispatch);
        var manifest = serializer.Manifest(dispatch);

        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes[..^3], manifest)); // truncated
        Assert.Throws<SerializationException>(() => serializer.FromBinary([.. bytes, 0], manifest)); // trailing bytes
        Assert.Throws<SerializationException>(() => serializer.FromBinary([99, .. bytes[1..]], manifest)); // unknown format
        Assert.Throws<SerializationException>(() => serializer.FromBinary([], manifest));
        Assert.Throws<SerializationException>(() => serializer.FromBinary("{\"queue\":\"q\",\"jobs\":[]}"u8.ToArray(), manifest)); // the old JSON
        var hugeCount = bytes.ToArray();
        BitConverter.GetBytes(int.MaxValue).CopyTo(hugeCount, 3); // format byte, "q" (length + 1 byte), then the count
        Assert.Throws<SerializationException>(() => serializer.FromBinary(hugeCount, manifest));
        var badArgs = bytes.ToArray();
        badArgs[^1] = (byte)'{'; // the last job's args "{}" become "{{"
        Assert.Throws<SerializationException>(() => serializer.FromBinary(badArgs, manifest));
        var hugeArgs = bytes.ToArray();
        BitConverter.GetBytes(int.MaxValue).CopyTo(hugeArgs, bytes.Length - 6); // the last job's args length, before "{}"
        Assert.Throws<SerializationException>(() => serializer.FromBinary(hugeArgs, manifest));
    }

    [Fact]
    public void Every_wire_message_type_is_bound_to_our_serializer_and_has_a_short_manifest()
    {
        var serializer = Ours(new WorkerPool.Empty("q", 1));
        var wireTypes = typeof(IClusterJobsMessage).Assembly.GetTypes()
            .Where(t => typeof(IClusterJobsMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
            .ToList();
        Assert.Contains(typeof(WorkerPool.Dispatch), wireTypes);
        Assert.Contains(typeof(QueueRouter.Withdraw), wireTypes);
        var manifests = new HashSet<string>();
        foreach (var type in wireTypes)
        {
            Assert.IsType<ClusterJobsMessageSerializer>(Sys.Serialization.FindSerializerForType(type));
            var manifest = serializer.Manifest(RuntimeHelpers.GetUninitializedObject(type));
            Assert.InRange(manifest.Length, 1, 3);
            Assert.DoesNotContain(type.Name, manifest);
            Assert.True(manifests.Add(manifest), $"manifest '{manifest}' is used twice");
        }
    }

    [Fact]
    public void An_unknown_manifest_is_a_SerializationException()
    {
        var serializer = Ours(new WorkerPool.Empty("q", 1));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([], "zz"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary("{}"u8.ToArray(), typeof(WorkerPool.Empty).AssemblyQualifiedName!));
    }

    [Fact]
    public void Malformed_bytes_are_a_SerializationException()
    {
        var serializer = Ours(new WorkerPool.Empty("q", 1));
        var manifest = serializer.Manifest(new WorkerPool.Empty("q", 1));
        Assert.Throws<SerializationException>(() => serializer.FromBinary("{oops"u8.ToArray(), manifest));
        Assert.Throws<SerializationException>(() => serializer.FromBinary("null"u8.ToArray(), manifest));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([], serializer.Manifest(new QueueRouter.Demand(1, false))));
    }

    [Fact]
    public void The_bytes_carry_no_type_names()
    {
        var dispatch = new WorkerPool.Dispatch("q", [Jobs.Lease("q", "a")]);
        var text = Encoding.UTF8.GetString(Ours(dispatch).ToBinary(dispatch));
        Assert.DoesNotContain("ClusterJobs", text);
        Assert.DoesNotContain("$type", text);
    }

    [Fact]
    public void A_message_that_is_not_a_wire_message_is_refused()
    {
        var serializer = Ours(new WorkerPool.Empty("q", 1));
        Assert.Throws<ArgumentException>(() => serializer.Manifest("a string"));
        Assert.Throws<ArgumentException>(() => serializer.ToBinary(new WorkerActor.Run(Jobs.Lease("q", "a"))));
    }

    /// <summary>
    /// A producer may leave out "args" (it is not required in the envelope and the ingress accepts such envelopes); the
    /// Dispatch carrying that job must still cross the wire.
    /// </summary>
    [Fact]
    public void A_Dispatch_of_an_envelope_without_args_round_trips()
    {
        var envelope = ProtocolJson.DeserializeEnvelope("""{"v":1,"id":"q:noargs","task":"echo","queue":"q"}""")!;
        var dispatch = new WorkerPool.Dispatch("q", [new JobLease(envelope, 1)]);

        var back = RoundTrip(dispatch);

        Assert.Equal("q:noargs", back.Jobs.Single().Envelope.Id);
    }
}
