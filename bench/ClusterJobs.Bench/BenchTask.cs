using System.Text.Json.Serialization;
using ClusterJobs.BenchKit;
using ClusterJobs.Node.Tasks;
using StackExchange.Redis;

namespace ClusterJobs.Bench;

/// <summary>The kit's job payload: enqueue time, how long to wait, the run's total, whether to record latency.</summary>
public sealed record BenchArgs(
    [property: JsonPropertyName("enq_ms")] double EnqMs,
    [property: JsonPropertyName("sleep_ms")] double SleepMs,
    [property: JsonPropertyName("total")] long Total,
    [property: JsonPropertyName("rec_lat")] int RecLat);

/// <summary>The metrics connection (the kit's db 1), shared by every job of the node.</summary>
public sealed class BenchMetrics(IConnectionMultiplexer redis)
{
    public IDatabase Db { get; } = redis.GetDatabase(1);
}

/// <summary>The kit's job body (bench/Shared/Kit.cs) as a ClusterJobs task handler.</summary>
public sealed class BenchTask(BenchMetrics metrics) : IJobHandler<BenchArgs>
{
    public Task HandleAsync(BenchArgs args, JobContext job, CancellationToken ct) =>
        Kit.RunBodyAsync(metrics.Db, args.EnqMs, args.SleepMs, args.Total, args.RecLat, ct);
}
