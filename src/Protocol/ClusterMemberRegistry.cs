using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>
/// Where a cluster's nodes say that they run (<see cref="RedisKeys.ClusterMembers"/>: address → unix ms last seen), so
/// that a seed started again while they run joins their cluster rather than founding a second one beside it: with only
/// itself to join, a restarted seed was a cluster of its own, and every node started after it joined that one (two
/// routers per queue, each with half the members).
/// </summary>
public static class ClusterMemberRegistry
{
    /// <summary>How often a member says it runs.</summary>
    public static readonly TimeSpan Beat = TimeSpan.FromSeconds(3);

    /// <summary>A member not heard of for this long is taken for gone, and its entry removed by the next beat of any member.</summary>
    public static readonly TimeSpan Stale = TimeSpan.FromSeconds(15);

    /// <summary>KEYS: the members hash. ARGV: this address, now ms, stale before ms, key ttl ms. Drops stale entries.</summary>
    private const string BeatScript = """
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        local all = redis.call('HGETALL', KEYS[1])
        for i = 1, #all, 2 do
          if (tonumber(all[i + 1]) or 0) < tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], all[i]) end
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        return 1
        """;

    /// <summary>Says that <paramref name="address"/> runs, now.</summary>
    public static Task BeatAsync(IDatabaseAsync db, RedisKey members, string address, DateTimeOffset now) =>
        db.ScriptEvaluateAsync(BeatScript, [members],
            [address, now.ToUnixTimeMilliseconds(), (now - Stale).ToUnixTimeMilliseconds(), (long)(Stale * 4).TotalMilliseconds]);

    /// <summary>Takes <paramref name="address"/> off (a member that leaves), without waiting for Redis's answer.</summary>
    public static void Leave(IDatabase db, RedisKey members, string address) => db.HashDelete(members, address, CommandFlags.FireAndForget);

    /// <summary>The members heard of within <see cref="Stale"/>, most recently heard first.</summary>
    public static async Task<IReadOnlyList<string>> RunningAsync(IDatabaseAsync db, RedisKey members, DateTimeOffset now)
    {
        var since = (now - Stale).ToUnixTimeMilliseconds();
        return (await db.HashGetAllAsync(members).ConfigureAwait(false))
            .Select(e => (Address: (string)e.Name!, Seen: e.Value.TryParse(out long ms) ? ms : 0))
            .Where(e => e.Seen >= since).OrderByDescending(e => e.Seen).Select(e => e.Address).ToList();
    }
}
