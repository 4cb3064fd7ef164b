using StackExchange.Redis;

namespace ClusterJobs.Node.WarmUp;

/// <summary>
/// Where warm-ups keep their throwaway jobs: each under a key prefix of its own (<c>cj:warmup:&lt;32 hex&gt;</c>),
/// listed in the sorted set <c>cj:warmups</c> by start time (Redis's clock, so nodes' clocks do not matter), so that
/// what a node killed during its warm-up left behind is deleted by a later warm-up once it is clearly stale.
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
        await _db.SortedSetAddAsync(Registry, prefix, await NowMsAsync().ConfigureAwait(false)).ConfigureAwait(false);
        return prefix;
    }

    /// <summary>Deletes the keys of warm-ups that started longer ago than <paramref name="age"/> (their nodes died in them).</summary>
    public async Task<int> SweepStaleAsync(TimeSpan age)
    {
        var before = await NowMsAsync().ConfigureAwait(false) - (long)age.TotalMilliseconds;
        var stale = await _db.SortedSetRangeByScoreAsync(Registry, double.NegativeInfinity, before).ConfigureAwait(false);
        var swept = 0;
        foreach (var entry in stale.Select(e => e.ToString()))
        {
            // Only what a warm-up registers is swept: a stray member must not become a pattern that deletes other keys.
            if (!IsWarmUpPrefix(entry)) continue;
            await RemoveAsync(entry).ConfigureAwait(false);
            swept++;
        }
        return swept;
    }

    /// <summary>
    /// Deletes every key under <paramref name="prefix"/>, then (when <paramref name="keepEntry"/> is false and every
    /// primary was scanned) its entry in the registry; otherwise the entry stays for a later sweep to finish the job.
    /// </summary>
    public async Task RemoveAsync(string prefix, bool keepEntry = false)
    {
        var pattern = EscapeGlob(prefix) + ":*";
        var complete = true;
        foreach (var endpoint in redis.GetEndPoints())
        {
            var server = redis.GetServer(endpoint);
            if (server.IsReplica) continue;
            if (!server.IsConnected)
            {
                complete = false;
                continue;
            }
            var page = new List<RedisKey>(PageSize);
            await foreach (var key in server.KeysAsync(_db.Database, pattern, PageSize).ConfigureAwait(false))
            {
                page.Add(key);
                if (page.Count == PageSize) await DeleteAsync(page).ConfigureAwait(false);
            }
            await DeleteAsync(page).ConfigureAwait(false);
        }
        if (complete && !keepEntry) await _db.SortedSetRemoveAsync(Registry, prefix).ConfigureAwait(false);
    }

    public bool IsWarmUpPrefix(string entry) =>
        entry.StartsWith($"{keyPrefix}:warmup:", StringComparison.Ordinal) &&
        entry.Length == keyPrefix.Length + ":warmup:".Length + 32 &&
        entry[^32..].All(char.IsAsciiHexDigitLower);

    // One DEL per key, pipelined: the keys carry different hash tags, and a multi-key DEL would fail on a Redis Cluster.
    private async Task DeleteAsync(List<RedisKey> keys)
    {
        await Task.WhenAll(keys.Select(k => _db.KeyDeleteAsync(k, CommandFlags.DemandMaster))).ConfigureAwait(false);
        keys.Clear();
    }

    private async Task<long> NowMsAsync()
    {
        var server = redis.GetServer(redis.GetEndPoints().First());
        return new DateTimeOffset(await server.TimeAsync().ConfigureAwait(false), TimeSpan.Zero).ToUnixTimeMilliseconds();
    }

    /// <summary>The prefix as a SCAN pattern that matches only itself (a configured prefix may hold glob characters).</summary>
    public static string EscapeGlob(string text) =>
        string.Concat(text.Select(c => c is '*' or '?' or '[' or ']' or '\\' ? $"\\{c}" : c.ToString()));
}
