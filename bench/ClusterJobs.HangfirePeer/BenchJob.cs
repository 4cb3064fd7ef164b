using StackExchange.Redis;

namespace ClusterJobs.HangfirePeer;

/// <summary>
/// The job body every peer of the kit runs (../shared/bench-peers/README.md), as a Hangfire job method: start = now;
/// wait sleep_ms (asynchronously); one pipelined round trip to the metrics db: [RPUSH bench:lat (start - enq_ms)] +
/// INCR bench:done; the first and the last job stamp bench:t_first / bench:t_last.
/// </summary>
public static class BenchJob
{
    // Hangfire runs a static job method with no instance; the server sets the metrics database once at its start.
    private static IDatabase? _metrics;

    public static void UseMetrics(IDatabase metrics) => _metrics = metrics;

    public static async Task Run(double enqMs, double sleepMs, long total, int recLat)
    {
        var metrics = _metrics ?? throw new InvalidOperationException("BenchJob.UseMetrics was not called");
        var start = NowMs();
        if (sleepMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(sleepMs));
        var batch = metrics.CreateBatch();
        var latency = recLat != 0 ? batch.ListRightPushAsync("bench:lat", start - enqMs) : null;
        var done = batch.StringIncrementAsync("bench:done");
        batch.Execute();
        var n = await done;
        if (latency is not null) await latency;
        if (n == 1) await metrics.StringSetAsync("bench:t_first", NowMs());
        if (n == total) await metrics.StringSetAsync("bench:t_last", NowMs());
    }

    public static double NowMs() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;
}
