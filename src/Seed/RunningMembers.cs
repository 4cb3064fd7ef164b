using ClusterJobs.Node.Hosting;
using ClusterJobs.Protocol;

namespace ClusterJobs.Seed;

/// <summary>
/// The nodes that run, as they say in Redis (<see cref="ClusterMemberRegistry"/>), for a seed that starts: listed after
/// its own address, they are asked first, and the seed founds a cluster only when none of them answers. Without
/// REDIS_URL the seed starts as before, on its own seeds alone.
/// </summary>
internal static class RunningMembers
{
    /// <summary>How long the seed gives Redis at start: a seed must come up even when Redis does not.</summary>
    private static readonly TimeSpan ReadFor = TimeSpan.FromSeconds(5);

    public static async Task<IReadOnlyList<string>> ReadAsync(ClusterBootstrap settings, TextWriter log, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        if (env("REDIS_URL") is not { Length: > 0 } url) return [];
        var prefix = env("CLUSTERJOBS_PREFIX") is { Length: > 0 } p ? p : RedisKeys.DefaultPrefix;
        try
        {
            using var timeout = new CancellationTokenSource(ReadFor);
            await using var redis = await RedisConnection.ConnectAsync(url, "clusterjobs-seed", cancellationToken: timeout.Token);
            var running = (await ClusterMemberRegistry.RunningAsync(redis.GetDatabase(), new RedisKeys(prefix).ClusterMembers(settings.SystemName),
                DateTimeOffset.UtcNow).WaitAsync(timeout.Token)).Where(a => !settings.Seeds.Contains(a)).ToList(); // its own address among them
            if (running.Count > 0) log.WriteLine($"clusterjobs-seed: {running.Count} member(s) run ({string.Join(", ", running.Take(5))}): joining their cluster if one answers");
            return running;
        }
        catch (Exception ex) when (ex is not ArgumentException)
        {
            log.WriteLine($"clusterjobs-seed: could not read the running members from Redis at {RedisConnection.Redact(url)} ({ex.Message}); " +
                          "starting on its own seeds");
            return [];
        }
    }
}
