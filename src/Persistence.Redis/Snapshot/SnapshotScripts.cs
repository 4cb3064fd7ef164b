namespace ClusterJobs.Persistence.Redis.Snapshot;

/// <summary>
/// The snapshot store's Lua scripts (docs/persistence.md). KEYS[1] = index sorted set (member <c>seqNr:timestamp</c>,
/// score = seqNr), KEYS[2] = data hash (field = seqNr). Timestamps are 19-digit zero-padded tick strings, so the
/// scripts compare them as strings, exactly (ticks exceed the 2^53 a Lua number holds).
/// </summary>
internal static class SnapshotScripts
{
    /// <summary>ARGV: seqNr, timestamp, entry. Replaces any snapshot at that sequence number.</summary>
    public const string Save = """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
        redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. ARGV[2])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        return 1
        """;

    /// <summary>
    /// ARGV: maxSeqNr, minSeqNr, maxTimestamp, minTimestamp. Walks the index from the highest sequence number down,
    /// reading metadata only, and returns {seqNr, timestamp, entry} of the first match, or nil. One payload is read.
    /// </summary>
    public const string Load = """
        local page = 64
        local offset = 0
        while true do
          local members = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', offset, page)
          for _, member in ipairs(members) do
            local sep = string.find(member, ':', 1, true)
            local ts = string.sub(member, sep + 1)
            if ts <= ARGV[3] and ts >= ARGV[4] then
              local seq = string.sub(member, 1, sep - 1)
              local entry = redis.call('HGET', KEYS[2], seq)
              if entry then return {seq, ts, entry} end
            end
          end
          if #members < page then return nil end
          offset = offset + page
        end
        """;

    /// <summary>
    /// ARGV: minSeqNr, maxSeqNr, minTimestamp, maxTimestamp. Deletes every snapshot in both ranges; returns how many.
    /// Deleting one snapshot by its metadata is the same call with minSeqNr = maxSeqNr.
    /// </summary>
    public const string Delete = """
        local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2])
        local deleted = 0
        for _, member in ipairs(members) do
          local sep = string.find(member, ':', 1, true)
          local ts = string.sub(member, sep + 1)
          if ts <= ARGV[4] and ts >= ARGV[3] then
            redis.call('ZREM', KEYS[1], member)
            redis.call('HDEL', KEYS[2], string.sub(member, 1, sep - 1))
            deleted = deleted + 1
          end
        end
        return deleted
        """;
}
