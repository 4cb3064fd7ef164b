using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Akka.Actor;
using Akka.Serialization;
using ClusterJobs.Node.Queues;
using ClusterJobs.Node.Routing;
using ClusterJobs.Node.Splits;
using ClusterJobs.Node.Workers;

namespace ClusterJobs.Node.Serialization;

/// <summary>
/// The one serializer for messages that cross nodes: System.Text.Json with source-generated metadata and short
/// manifests of our own, except the jobs of a Dispatch, which go in a compact binary layout
/// (<see cref="DispatchWireFormat"/>). Never type names from the wire: an unknown manifest is a SerializationException
/// (which remoting drops without tearing down the association).
/// </summary>
public sealed class ClusterJobsMessageSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 6471;
    private const string DispatchManifest = "pd";

    private static readonly Dictionary<Type, (string Manifest, JsonTypeInfo Info)> ByType = new()
    {
        [typeof(QueueRouter.Demand)] = ("rd", WireJson.Default.Demand),
        [typeof(QueueRouter.JobsCompleted)] = ("rc", WireJson.Default.JobsCompleted),
        [typeof(QueueRouter.RouterStatus)] = ("rs", WireJson.Default.RouterStatus),
        [typeof(QueueRouter.Took)] = ("rt", WireJson.Default.Took),
        [typeof(WorkerPool.Grant)] = ("pg", WireJson.Default.Grant),
        [typeof(WorkerPool.Empty)] = ("pe", WireJson.Default.Empty),
        [typeof(WorkerPool.WorkAvailable)] = ("pa", WireJson.Default.WorkAvailable),
        [typeof(WorkerPool.Withdrawn)] = ("pw", WireJson.Default.Withdrawn),
        [typeof(WorkerPool.PoolStatus)] = ("ps", WireJson.Default.PoolStatus),
        [typeof(QueueSettingsState)] = ("qs", WireJson.Default.QueueSettingsState),
        [typeof(QueueSettings.Change)] = ("qc", WireJson.Default.Change),
        [typeof(QueueSettings.Changed)] = ("qe", WireJson.Default.Changed),
        [typeof(SplitTracker.SplitStarted)] = ("ss", WireJson.Default.SplitStarted),
        [typeof(SplitTracker.ChildrenFinished)] = ("sf", WireJson.Default.ChildrenFinished),
        [typeof(SplitCoordinator.ChildrenEnded)] = ("se", WireJson.Default.ChildrenEnded),
        [typeof(SplitCoordinator.Tracked)] = ("st", WireJson.Default.Tracked),
        [typeof(SplitCoordinator.ChildrenRecorded)] = ("sr", WireJson.Default.ChildrenRecorded),
    };

    private static readonly Dictionary<string, object> Singletons = new()
    {
        ["rw"] = QueueRouter.Withdraw.Instance,
        ["rg"] = QueueRouter.GetStatus.Instance,
        ["qg"] = QueueSettings.Get.Instance,
        ["pq"] = WorkerPool.GetStatus.Instance,
    };

    private static readonly Dictionary<string, JsonTypeInfo> ByManifest =
        ByType.Values.ToDictionary(v => v.Manifest, v => v.Info);

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        QueueRouter.Withdraw => "rw",
        QueueRouter.GetStatus => "rg",
        QueueSettings.Get => "qg",
        WorkerPool.GetStatus => "pq",
        WorkerPool.Dispatch => DispatchManifest,
        _ when ByType.TryGetValue(o.GetType(), out var entry) => entry.Manifest,
        _ => throw new ArgumentException($"{o.GetType()} is not a ClusterJobs wire message."),
    };

    public override byte[] ToBinary(object obj)
    {
        if (obj is QueueRouter.Withdraw or QueueRouter.GetStatus or QueueSettings.Get or WorkerPool.GetStatus) return [];
        if (obj is WorkerPool.Dispatch dispatch) return DispatchWireFormat.Write(dispatch);
        if (!ByType.TryGetValue(obj.GetType(), out var entry))
            throw new ArgumentException($"{obj.GetType()} is not a ClusterJobs wire message.");
        return JsonSerializer.SerializeToUtf8Bytes(obj, entry.Info);
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (Singletons.TryGetValue(manifest, out var singleton)) return singleton;
        if (manifest == DispatchManifest) return DispatchWireFormat.Read(bytes);
        if (!ByManifest.TryGetValue(manifest, out var info))
            throw new SerializationException($"Unknown ClusterJobs message manifest '{manifest}'.");
        try
        {
            return JsonSerializer.Deserialize(bytes, info)
                ?? throw new SerializationException($"ClusterJobs message '{manifest}' was null.");
        }
        catch (JsonException ex)
        {
            throw new SerializationException($"ClusterJobs message '{manifest}' is malformed: {ex.Message}", ex);
        }
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(QueueRouter.Demand))]
[JsonSerializable(typeof(QueueRouter.JobsCompleted))]
[JsonSerializable(typeof(QueueRouter.RouterStatus))]
[JsonSerializable(typeof(QueueRouter.Took))]
[JsonSerializable(typeof(WorkerPool.Grant))]
[JsonSerializable(typeof(WorkerPool.Empty))]
[JsonSerializable(typeof(WorkerPool.WorkAvailable))]
[JsonSerializable(typeof(WorkerPool.Withdrawn))]
[JsonSerializable(typeof(WorkerPool.PoolStatus))]
[JsonSerializable(typeof(QueueSettingsState))]
[JsonSerializable(typeof(QueueSettings.Change))]
[JsonSerializable(typeof(QueueSettings.Changed))]
[JsonSerializable(typeof(SplitTracker.SplitStarted))]
[JsonSerializable(typeof(SplitTracker.ChildrenFinished))]
[JsonSerializable(typeof(SplitCoordinator.ChildrenEnded))]
[JsonSerializable(typeof(SplitCoordinator.Tracked))]
[JsonSerializable(typeof(SplitCoordinator.ChildrenRecorded))]
internal sealed partial class WireJson : JsonSerializerContext;
