namespace ClusterJobs.Persistence.Redis.Journal;

/// <summary>The journal's Lua script (docs/persistence.md, "Write script").</summary>
internal static class JournalScripts
{
    /// <summary>
    /// Appends the events of one persistence id, all or nothing.
    /// KEYS[1] = events sorted set, KEYS[2] = highest sequence number.
    /// ARGV[1] = the new highest (the last sequence number below); ARGV[2..] = sequence number, entry, ... ascending.
    /// Refuses the whole call, writing nothing, when a sequence number is not above the stored highest (and the one
    /// before it in the call), or is already in the sorted set: returns {0, refused seqNr, stored highest}.
    /// Otherwise ZADDs every entry, raises highest to ARGV[1] and returns {1}.
    /// Sequence numbers travel as decimal strings and are compared as Lua numbers (exact up to 2^53).
    /// </summary>
    public const string Append = """
        local stored = redis.call('GET', KEYS[2]) or '0'
        local previous = tonumber(stored)
        local n = #ARGV
        for i = 2, n, 2 do
          local seq = tonumber(ARGV[i])
          if seq <= previous or redis.call('ZCOUNT', KEYS[1], ARGV[i], ARGV[i]) > 0 then
            return {0, ARGV[i], stored}
          end
          previous = seq
        end
        local batch = {}
        for i = 2, n, 2 do
          batch[#batch + 1] = ARGV[i]
          batch[#batch + 1] = ARGV[i + 1]
          if #batch >= 1000 then
            redis.call('ZADD', KEYS[1], unpack(batch))
            batch = {}
          end
        end
        if #batch > 0 then redis.call('ZADD', KEYS[1], unpack(batch)) end
        redis.call('SET', KEYS[2], ARGV[1])
        return {1}
        """;
}
