using ClusterJobs.BenchKit;
using StackExchange.Redis;

namespace ClusterJobs.HangfirePeer;

/// <summary>The kit's job body (bench/Shared/Kit.cs) as a Hangfire job method.</summary>
public static class BenchJob
{
    // Hangfire runs a static job method with no instance; the server sets the metrics database once at its start.
    private static IDatabase? _metrics;

    public static void UseMetrics(IDatabase metrics) => _metrics = metrics;

    public static Task Run(double enqMs, double sleepMs, long total, int recLat) =>
        Kit.RunBodyAsync(_metrics ?? throw new InvalidOperationException("BenchJob.UseMetrics was not called"), enqMs, sleepMs, total, recLat);
}
