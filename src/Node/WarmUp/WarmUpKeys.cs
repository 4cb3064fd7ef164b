using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.WarmUp;

/// <summary>
/// Where warm-ups keep their throwaway jobs: each under a key prefix of its own (<c>cj:warmup:&lt;32 hex&gt;</c>),
/// listed in the sorted set <c>cj:warmups</c> by start time (Redis's clock, so nodes' clocks do not matter), so that
/// what a node killed during its warm-up left behind is deleted by a later warm-up once it is clearly stale. A warm-up
/// deletes its own keys by name; only a stale one's leftovers cost a scan of the keyspace.
/// </summary>
internal sealed class WarmUpKeys(IConnectionMultiplexer redis, string keyPrefix)
{
    private const int PageSize = 1000;
    private readonly IDatabase _db = redis.GetDatabase();

    public string Registry => $"{keyPrefix}:warmups";
    /// <summary>What every warm-up's prefix starts with; 32 hex digits (a Guid) follow.</summary>
    private string WarmUpBase => $"{keyPrefix}:warmup:";
    private int PrefixLength => WarmUpBase.Length + 32;

    /// <summary>A fresh prefix for one warm-up, listed before any key is made under it.</summary>
    public async Task<string> RegisterAsync()
    {
        var prefix = $"{WarmUpBase}{Guid.NewGuid():N}";
        await _db.SortedSetAddAsync(Registry, prefix, await NowMsAsync().ConfigureAwait(false)).ConfigureAwait(false);
        return prefix;
    }

    /// <summary>
    /// Deletes the keys of <paramref name="own"/> (this node's warm-up of <paramref name="ownJobs"/> jobs, if it
    /// registered one) by name, then those of every warm-up that started longer ago than <paramref name="staleAge"/>
    /// (their nodes died in them) in one scan of the keyspace, which only such a leftover costs; then their registry
    /// entries, unless a primary could not be scanned (a later sweep finishes the job). The entry of
    /// <paramref name="own"/> stays when <paramref name="keepOwnEntry"/> (its private node may still write: a later
    /// sweep deletes what it leaves). Returns how many stale warm-ups it deleted.
    /// </summary>
    public async Task<int> CleanUpAsync(string? own, int ownJobs, bool keepOwnEntry, TimeSpan staleAge)
    {
        if (own is not null)
        {
            await DeleteOwnAsync(own, ownJobs).ConfigureAwait(false);
            if (!keepOwnEntry) await _db.SortedSetRemoveAsync(Registry, own).ConfigureAwait(false);
        }
        var before = await NowMsAsync().ConfigureAwait(false) - (long)staleAge.TotalMilliseconds;
        // Only what a warm-up registers is swept: a stray member must not become a pattern that deletes other keys.
        var stale = (await _db.SortedSetRangeByScoreAsync(Registry, double.NegativeInfinity, before).ConfigureAwait(false))
            .Select(e => e.ToString()).Where(IsWarmUpPrefix).ToList();
        if (stale.Count == 0 || !await DeleteKeysUnderAsync(stale.ToHashSet()).ConfigureAwait(false)) return 0;
        await _db.SortedSetRemoveAsync(Registry, stale.Select(e => (RedisValue)e).ToArray()).ConfigureAwait(false);
        return stale.Count;
    }

    /// <summary>
    /// The keys a warm-up under <paramref name="prefix"/> makes: its queue's sets and the hashes of its jobs, whose ids
    /// it chose (<c>warmup:0</c> to <c>warmup:&lt;jobs - 1&gt;</c>). All carry the queue's hash tag: one slot.
    /// </summary>
    public static IEnumerable<RedisKey> KeysOf(string prefix, int jobs)
    {
        var queue = new RedisKeys(prefix).Queue(JobPathWarmUp.Queue);
        RedisKey[] sets = [queue.Ready, queue.Scheduled, queue.Leased, queue.Dead, queue.Waiting, queue.Stats];
        return sets.Concat(Enumerable.Range(0, jobs).Select(i => (RedisKey)queue.Job(JobId(i))));
    }

    /// <summary>What follows <c>warmup:</c> in the id of a warm-up's job number <paramref name="index"/>.</summary>
    public static string JobIdSuffix(int index) => index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string JobId(int index) => $"{JobPathWarmUp.Queue}:{JobIdSuffix(index)}";

    // Multi-key DELs: a warm-up's keys share one hash tag, so each DEL stays in one Redis Cluster slot.
    private async Task DeleteOwnAsync(string prefix, int jobs)
    {
        foreach (var chunk in KeysOf(prefix, jobs).Chunk(PageSize))
            await _db.KeyDeleteAsync(chunk, CommandFlags.DemandMaster).ConfigureAwait(false);
    }

    /// <summary>One SCAN over every warm-up's keys, deleting those under <paramref name="prefixes"/>; false when a primary was not reachable.</summary>
    private async Task<bool> DeleteKeysUnderAsync(HashSet<string> prefixes)
    {
        var pattern = EscapeGlob(WarmUpBase) + "*";
        var prefixLength = PrefixLength;
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
                var name = key.ToString();
                if (name.Length <= prefixLength || name[prefixLength] != ':' || !prefixes.Contains(name[..prefixLength])) continue;
                page.Add(key);
                if (page.Count == PageSize) await DeleteAsync(page).ConfigureAwait(false);
            }
            await DeleteAsync(page).ConfigureAwait(false);
        }
        return complete;
    }

    public bool IsWarmUpPrefix(string entry) =>
        entry.StartsWith(WarmUpBase, StringComparison.Ordinal) && entry.Length == PrefixLength &&
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
