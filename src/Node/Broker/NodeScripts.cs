namespace ClusterJobs.Node.Broker;

/// <summary>
/// The node's Lua scripts. Each works on one queue's keys (one hash tag): KEYS name the queue's sets, and job hashes
/// are the queue's job prefix (ARGV) plus the id, in the same slot. Every script handles a batch in one round trip.
/// </summary>
internal static class NodeScripts
{
    /// <summary>
    /// A Lua function the scripts that put a job in its ready set start with: at its <c>ready_score</c> (as read), or at
    /// the front (0) when the record's score is missing or not a number (written by hand), so that the job is queued
    /// rather than the script failing after its first writes (Redis keeps those) and stranding it.
    /// </summary>
    private const string Requeue = """
        local function requeue(ready, score, id)
          local added = redis.pcall('ZADD', ready, score or 0, id)
          if type(added) == 'table' and added.err then redis.call('ZADD', ready, 0, id) end
        end

        """;

    /// <summary>
    /// Promotes due delayed jobs, then leases up to N ready jobs to this node.
    /// KEYS: ready, scheduled, leased, dead, stats. ARGV: job prefix, now, max, lease deadline, node, events channel,
    /// missing-record error json, record ttl ms, wake channel.
    /// Returns the number of ids popped, then a flat array: id, envelope, attempt, phase ('' or 'reduce') for each job
    /// taken (ids without a record are dead-lettered here; ids cancelled while their node was lost end cancelled here),
    /// and id, false, 0, '' for each id whose key is not a hash (no job record: it leaves the queue, the key untouched).
    /// Redis keeps a script's writes when a later command fails, so it fails, if at all, before its first write: the
    /// queue's keys are read first (a key written by hand with another type), and what one job's record holds (a key
    /// that is not a hash, a ready score that is not a number) touches that job alone, never its neighbours in the batch.
    /// </summary>
    public const string Take = Requeue + """
        local prefix, now = ARGV[1], ARGV[2]
        redis.call('ZCARD', KEYS[1]) redis.call('ZCARD', KEYS[3]) redis.call('LLEN', KEYS[4])
        local stats = {}
        local out = {0}
        local function notJob(id)
          out[#out + 1] = id
          out[#out + 1] = false
          out[#out + 1] = 0
          out[#out + 1] = ''
        end
        local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
        for _, id in ipairs(due) do
          local k = prefix .. id
          local score = redis.pcall('HGET', k, 'ready_score')
          redis.call('ZREM', KEYS[2], id)
          -- (a key that is not a hash, or none, is no job record: it leaves the schedule, the key untouched)
          if type(score) == 'string' or (not score and redis.call('EXISTS', k) == 1) then
            requeue(KEYS[1], score, id)
            redis.call('HSET', k, 'state', 'queued')
          elseif score then notJob(id) end
        end
        local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[3])
        -- first how many ids left the queue (some may end here, below), so a short batch is not taken for an empty queue
        out[1] = #popped / 2
        local leases = {}
        for i = 1, #popped, 2 do
          local id = popped[i]
          local k = prefix .. id
          local fields = redis.pcall('HMGET', k, 'envelope', 'cancel_requested', 'phase', 'attempts')
          if fields.err then
            notJob(id) -- a key that is not a hash is no job record: it leaves the queue, the key untouched
          elseif fields[1] and fields[2] then
            -- cancelled while its node was lost: it ends here instead of running again
            redis.call('HSET', k, 'state', 'cancelled', 'finished_at', now)
            redis.call('PEXPIRE', k, ARGV[8])
            redis.call('PUBLISH', ARGV[6], id .. ' cancelled')
            stats.cancelled = (stats.cancelled or 0) + 1
          elseif fields[1] then
            local attempt = (tonumber(fields[4]) or 0) + 1
            redis.call('HSET', k, 'state', 'running', 'started_at', now, 'node', ARGV[5], 'attempts', attempt)
            leases[#leases + 1] = ARGV[4]
            leases[#leases + 1] = id
            out[#out + 1] = id
            out[#out + 1] = fields[1]
            out[#out + 1] = attempt
            out[#out + 1] = fields[3] or ''
          else
            redis.call('HSET', k, 'state', 'dead_lettered', 'error', ARGV[7], 'finished_at', now)
            redis.call('RPUSH', KEYS[4], id)
            redis.call('PUBLISH', ARGV[6], id .. ' dead_lettered')
            stats.dead_lettered = (stats.dead_lettered or 0) + 1
          end
        end
        -- one variadic ZADD for the batch (in chunks: Lua's unpack has a stack limit)
        for i = 1, #leases, 1000 do
          redis.call('ZADD', KEYS[3], unpack(leases, i, math.min(i + 999, #leases)))
        end
        -- last, and a counter a hand made no integer is skipped: the jobs are what must not fail
        for field, n in pairs(stats) do redis.pcall('HINCRBY', KEYS[5], field, n) end
        return out
        """;

    /// <summary>
    /// Records finished attempts of jobs this queue leased, and counts their outcomes in the queue's stats hash (what
    /// the operator API shows as totals). KEYS: leased, scheduled, dead, ready, stats.
    /// ARGV: job prefix, now, record ttl ms, events channel, wake channel, node that ran the attempt, then per job:
    /// id, outcome, payload, due, started ('' keeps the started_at the Take script wrote).
    /// Outcomes: s = succeeded (payload = result json), r = retry at due (payload = error json),
    /// d = dead-lettered (payload = error json), c = cancelled, q = back to ready untouched (not run).
    /// A job no longer running here (already finished, cancelled or reclaimed) is left alone.
    /// Returns the number recorded, then <c>parent, child</c> for each recorded child job that ended (succeeded,
    /// dead-lettered or cancelled) while its parent still waits, for the parent's split coordinator.
    /// </summary>
    public const string Complete = Requeue + """
        local prefix, now, ttl, events = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        -- the queue's keys read before any write (see Take); a job's record that is not a hash is left alone
        redis.call('ZCARD', KEYS[1]) redis.call('ZCARD', KEYS[2]) redis.call('LLEN', KEYS[3]) redis.call('ZCARD', KEYS[4])
        local done = 0
        local finished = {}
        local unleased = {}
        local tally = {}
        for i = 7, #ARGV, 5 do
          local id, outcome, payload, due = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
          local k = prefix .. id
          local fields = redis.pcall('HMGET', k, 'state', 'parent', 'attempts', 'started_at')
          if fields[1] == 'running' then
            unleased[#unleased + 1] = id
            local started = ARGV[i + 4]
            if started == '' then started = fields[4] or now end
            local state
            if outcome == 's' then
              state = 'succeeded'
              redis.call('HSET', k, 'state', state, 'result', payload, 'finished_at', now, 'node', ARGV[6], 'started_at', started)
              redis.call('PEXPIRE', k, ttl)
            elseif outcome == 'r' then
              state = 'retrying'
              redis.call('HSET', k, 'state', state, 'error', payload, 'error:' .. (fields[3] or '0'), payload, 'node', ARGV[6],
                'started_at', started)
              redis.call('ZADD', KEYS[2], due, id)
            elseif outcome == 'd' then
              state = 'dead_lettered'
              redis.call('HSET', k, 'state', state, 'error', payload, 'finished_at', now,
                'error:' .. (fields[3] or '0'), payload, 'node', ARGV[6], 'started_at', started)
              redis.call('RPUSH', KEYS[3], id)
            elseif outcome == 'c' then
              state = 'cancelled'
              redis.call('HSET', k, 'state', state, 'finished_at', now, 'node', ARGV[6], 'started_at', started)
              redis.call('PEXPIRE', k, ttl)
            else
              state = 'queued'
              requeue(KEYS[4], redis.call('HGET', k, 'ready_score'), id)
              redis.call('HSET', k, 'state', state, 'attempts', math.max((tonumber(fields[3]) or 1) - 1, 0))
              redis.call('PUBLISH', ARGV[5], id)
            end
            redis.call('PUBLISH', events, id .. ' ' .. state)
            tally[state] = (tally[state] or 0) + 1
            if fields[2] and (state == 'succeeded' or state == 'dead_lettered' or state == 'cancelled')
                and redis.pcall('HGET', prefix .. fields[2], 'state') == 'waiting' then
              finished[#finished + 1] = fields[2]
              finished[#finished + 1] = id
            end
            done = done + 1
          end
        end
        -- one increment per outcome for the batch ('queued': handed back unrun, not an outcome)
        for state, n in pairs(tally) do
          if state ~= 'queued' then redis.pcall('HINCRBY', KEYS[5], state, n) end
        end
        -- one variadic ZREM for the batch (in chunks: Lua's unpack has a stack limit)
        for i = 1, #unleased, 1000 do
          redis.call('ZREM', KEYS[1], unpack(unleased, i, math.min(i + 999, #unleased)))
        end
        table.insert(finished, 1, done)
        return finished
        """;

    /// <summary>
    /// A running job splits into children: they are enqueued in the same queue, the parent leaves its lease and waits
    /// (holding no worker slot) until they are done; its id joins the waiting set, which the queue's split coordinators
    /// are started from. KEYS: parent hash, leased, ready, waiting.
    /// ARGV: job prefix, parent id, now, child policy ('fail' or 'collect'), wake channel, events channel, then per
    /// child: id, envelope, ready score. Returns the number of children, or -1 when the parent no longer runs here.
    /// </summary>
    public const string Split = """
        if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return -1 end
        -- the queue's keys read before any write (see Take)
        redis.call('ZCARD', KEYS[2]) redis.call('ZCARD', KEYS[3]) redis.call('SCARD', KEYS[4])
        redis.call('ZREM', KEYS[2], ARGV[2])
        local n = 0
        for i = 7, #ARGV, 3 do
          local cid, env, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
          local ck = ARGV[1] .. cid
          if redis.call('EXISTS', ck) == 0 then
            redis.call('HSET', ck, 'envelope', env, 'state', 'queued', 'attempts', 0, 'ready_score', score,
              'enqueued_at', ARGV[3], 'parent', ARGV[2])
            redis.call('ZADD', KEYS[3], score, cid)
          end
          n = n + 1
        end
        redis.call('HSET', KEYS[1], 'state', 'waiting', 'children_total', n, 'children_pending', n,
          'child_policy', ARGV[4], 'phase', 'split', 'split_at', ARGV[3])
        redis.call('SADD', KEYS[4], ARGV[2])
        redis.call('PUBLISH', ARGV[5], ARGV[2])
        redis.call('PUBLISH', ARGV[6], ARGV[2] .. ' waiting')
        return n
        """;

    /// <summary>
    /// A split coordinator ends its parent's wait, only while the parent is still waiting. KEYS: parent hash, ready,
    /// waiting, stats. ARGV: parent id, now, record ttl ms, events channel, wake channel, mode, error json, then field, value
    /// pairs. Mode 'reduce': the pairs (<c>child:&lt;id&gt;</c> results, <c>child_error:&lt;id&gt;</c> errors) go into the
    /// parent, which is queued again with phase 'reduce'. Mode 'fail': the parent fails with the error.
    /// Returns {0} when the parent no longer waits, {1} reduced, {2, grandparent id or ''} failed.
    /// </summary>
    public const string FinishSplit = Requeue + """
        -- the queue's keys read before any write (see Take)
        redis.call('ZCARD', KEYS[2]) redis.call('SCARD', KEYS[3])
        if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then
          redis.call('SREM', KEYS[3], ARGV[1])
          return {0}
        end
        if ARGV[6] == 'reduce' then
          requeue(KEYS[2], redis.call('HGET', KEYS[1], 'ready_score'), ARGV[1])
          redis.call('SREM', KEYS[3], ARGV[1])
          for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
          redis.call('HSET', KEYS[1], 'state', 'queued', 'phase', 'reduce', 'children_pending', 0)
          redis.call('PUBLISH', ARGV[5], ARGV[1])
          redis.call('PUBLISH', ARGV[4], ARGV[1] .. ' queued')
          return {1}
        end
        redis.call('SREM', KEYS[3], ARGV[1])
        redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[7], 'finished_at', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        redis.call('PUBLISH', ARGV[4], ARGV[1] .. ' failed')
        redis.pcall('HINCRBY', KEYS[4], 'failed', 1) -- a counter a hand made no integer is skipped
        return {2, redis.call('HGET', KEYS[1], 'parent') or ''}
        """;

    /// <summary>Extends the leases of jobs still leased. KEYS: leased. ARGV: new deadline, ids...</summary>
    public const string Renew = """
        local n = 0
        for i = 2, #ARGV do
          if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
            redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
            n = n + 1
          end
        end
        return n
        """;

    /// <summary>
    /// Returns jobs whose delivery was lost (lease expired, or their node left) to the ready set. A lost delivery does
    /// not use up one of the job's attempts; a job lost max-lost times is dead-lettered (it may be what kills nodes).
    /// KEYS: leased, ready, dead, stats. ARGV: job prefix, now, wake channel, events channel, max lost, lost error json,
    /// record ttl ms, mode ('expired': up to ARGV[9] expired leases; 'ids': the ids from ARGV[9] on).
    /// </summary>
    public const string Reclaim = Requeue + """
        local prefix, now = ARGV[1], ARGV[2]
        -- the queue's keys read before any write (see Take)
        redis.call('ZCARD', KEYS[2]) redis.call('LLEN', KEYS[3])
        local ids
        if ARGV[8] == 'expired' then
          ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[9]))
        else
          ids = {}
          for i = 9, #ARGV do ids[#ids + 1] = ARGV[i] end
        end
        local n = 0
        for _, id in ipairs(ids) do
          if redis.call('ZREM', KEYS[1], id) == 1 then
            local k = prefix .. id
            local fields = redis.pcall('HMGET', k, 'state', 'attempts', 'lost')
            if fields[1] == 'running' then
              n = n + 1
              local lost = (tonumber(fields[3]) or 0) + 1
              if lost >= tonumber(ARGV[5]) then
                redis.call('HSET', k, 'state', 'dead_lettered', 'error', ARGV[6], 'finished_at', now,
                  'attempts', math.max((tonumber(fields[2]) or 1) - 1, 0), 'lost', lost)
                redis.call('RPUSH', KEYS[3], id)
                redis.call('PUBLISH', ARGV[4], id .. ' dead_lettered')
                redis.pcall('HINCRBY', KEYS[4], 'dead_lettered', 1)
              else
                requeue(KEYS[2], redis.call('HGET', k, 'ready_score'), id)
                redis.call('HSET', k, 'state', 'queued', 'attempts', math.max((tonumber(fields[2]) or 1) - 1, 0), 'lost', lost)
                redis.call('PUBLISH', ARGV[3], id)
                redis.call('PUBLISH', ARGV[4], id .. ' queued')
              end
            end
          end
        end
        return n
        """;
}
