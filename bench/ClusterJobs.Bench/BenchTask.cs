using System.Text.Json.Serialization;
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

/// <summary>
/// The job body every peer runs (../shared/bench-peers/README.md): start = now; wait sleep_ms (asynchronously); one
/// pipelined round trip to the metrics db: [RPUSH bench:lat (start - enq_ms)] + INCR bench:done; the first and the
/// last job stamp bench:t_first / bench:t_last.
/// </summary>
public sealed class BenchTask(BenchMetrics metrics) : IJobHandler<BenchArgs>
{
    public async Task HandleAsync(BenchArgs args, JobContext job, CancellationToken ct)
    {
        var start = NowMs();
        if (args.SleepMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(args.SleepMs), ct);
        var batch = metrics.Db.CreateBatch();
        var latency = args.RecLat != 0 ? batch.ListRightPushAsync("bench:lat", start - args.EnqMs) : null;
        var done = batch.StringIncrementAsync("bench:done");
        batch.Execute();
        var n = await done;
        if (latency is not null) await latency;
        if (n == 1) await metrics.Db.StringSetAsync("bench:t_first", NowMs());
        if (n == args.Total) await metrics.Db.StringSetAsync("bench:t_last", NowMs());
    }

    public static double NowMs() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;
}
