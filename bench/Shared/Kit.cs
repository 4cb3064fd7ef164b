using System.Diagnostics;
using StackExchange.Redis;

namespace ClusterJobs.BenchKit;

/// <summary>
/// The benchmark kit's contract (../shared/bench-peers/README.md), shared as source by our .NET peers (ClusterJobs and
/// Hangfire) so that both run the same body and the same producer pacing.
/// </summary>
public static class Kit
{
    /// <summary>Wall-clock milliseconds since the Unix epoch, as the kit stamps enqueue and start times.</summary>
    public static double NowMs() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;

    /// <summary>The producer's pacing: job i is due at t0 + i/rate (an absolute schedule: no drift); rate 0 is no pacing.</summary>
    public static async Task PaceAsync(Stopwatch clock, int i, double rate)
    {
        if (rate <= 0) return;
        var due = TimeSpan.FromSeconds(i / rate) - clock.Elapsed;
        if (due > TimeSpan.Zero) await Task.Delay(due);
    }

    /// <summary>
    /// The job body every peer runs: start = now; wait sleep_ms (asynchronously); one pipelined round trip to the
    /// metrics db: [RPUSH bench:lat (start - enq_ms)] + INCR bench:done; the first and the last job stamp
    /// bench:t_first / bench:t_last.
    /// </summary>
    public static async Task RunBodyAsync(IDatabase metrics, double enqMs, double sleepMs, long total, int recLat, CancellationToken ct = default)
    {
        var start = NowMs();
        if (sleepMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(sleepMs), ct);
        var batch = metrics.CreateBatch();
        var latency = recLat != 0 ? batch.ListRightPushAsync("bench:lat", start - enqMs) : null;
        var done = batch.StringIncrementAsync("bench:done");
        batch.Execute();
        var n = await done;
        if (latency is not null) await latency;
        if (n == 1) await metrics.StringSetAsync("bench:t_first", NowMs());
        if (n == total) await metrics.StringSetAsync("bench:t_last", NowMs());
    }
}
