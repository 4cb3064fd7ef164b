using StackExchange.Redis;

namespace ClusterJobs.Node.WarmUp;

/// <summary>
/// Where warm-ups keep their throwaway jobs: each under a key prefix of its own (<c>cj:warmup:&lt;id&gt;</c>), listed
/// in the sorted set <c>cj:warmups</c> by start time, so that what a node killed during its warm-up left behind is
/// deleted by a later warm-up once it is clearly stale.
/// </summary>
internal sealed class WarmUpKeys(IConnectionMultiplexer redis, string keyPrefix)
{
    private const int PageSize = 1000;
    private readonly IDatabase _db = redis.GetDatabase();

    public string Registry => $"{keyPrefix}:warmups";

    /// <summary>A fresh prefix for one warm-up, listed before any key is made under it.</summary>
    public async Task<string> RegisterAsync()
    {
        var prefix = $"{keyPrefix}:warmup:{Guid.NewGuid():N}";
        await _db.SortedSetAddAsync(Registry, prefix, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).ConfigureAwait(false);
        return prefix;
    }

    /// <summary>Deletes the keys of warm-ups that started longer ago than <paramref name="age"/> (their nodes died in them).</summary>
    public async Task<int> SweepStaleAsync(TimeSpan age)
    {
        var before = DateTimeOffset.UtcNow.Add(-age).ToUnixTimeMilliseconds();
        var stale = await _db.SortedSetRangeByScoreAsync(Registry, double.NegativeInfinity, before).ConfigureAwait(false);
        foreach (var prefix in stale) await RemoveAsync(prefix!).ConfigureAwait(false);
        return stale.Length;
    }

    /// <summary>Deletes every key under <paramref name="prefix"/>, then its entry in the registry.</summary>
    public async Task RemoveAsync(string prefix)
    {
        var pattern = EscapeGlob(prefix) + ":*";
        foreach (var endpoint in redis.GetEndPoints())
        {
            var server = redis.GetServer(endpoint);
            if (!server.IsConnected || server.IsReplica) continue;
            var page = new List<RedisKey>(PageSize);
            await foreach (var key in server.KeysAsync(_db.Database, pattern, PageSize).ConfigureAwait(false))
            {
                page.Add(key);
                if (page.Count == PageSize) await DeleteAsync(page).ConfigureAwait(false);
            }
            await DeleteAsync(page).ConfigureAwait(false);
        }
        await _db.SortedSetRemoveAsync(Registry, prefix).ConfigureAwait(false);
    }

    // One DEL per key, pipelined: the keys carry different hash tags, and a multi-key DEL would fail on a Redis Cluster.
    private async Task DeleteAsync(List<RedisKey> keys)
    {
        await Task.WhenAll(keys.Select(k => _db.KeyDeleteAsync(k, CommandFlags.DemandMaster))).ConfigureAwait(false);
        keys.Clear();
    }

    /// <summary>The prefix as a SCAN pattern that matches only itself (a configured prefix may hold glob characters).</summary>
    public static string EscapeGlob(string text) =>
        string.Concat(text.Select(c => c is '*' or '?' or '[' or ']' or '\\' ? $"\\{c}" : c.ToString()));
}
