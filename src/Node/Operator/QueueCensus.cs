using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.Operator;

/// <summary>Where a queue's jobs wait or run, as the operator API lists them.</summary>
public enum JobPlace { Ready, Scheduled, Running, Waiting }

/// <summary>How many jobs of one queue are in each place Redis keeps them.</summary>
/// <param name="Ready">Waiting to run now (the ready set).</param>
/// <param name="Scheduled">Waiting for their time: countdowns, ETAs, retries after their backoff.</param>
/// <param name="Running">Leased by a node (running, or about to).</param>
/// <param name="Waiting">Split parents waiting for their children.</param>
/// <param name="Dead">Dead-lettered, waiting for an operator.</param>
public sealed record QueueCounts(long Ready, long Scheduled, long Running, long Waiting, long Dead);

/// <summary>Outcomes the nodes recorded for a queue since its first job (its stats hash): jobs/s are their change over time.</summary>
/// <param name="Retrying">Failed attempts that will run again.</param>
/// <param name="DeadLettered">Jobs dead-lettered: out of attempts, bad input, or lost with their node too often.</param>
/// <param name="Failed">Split parents failed by a child.</param>
/// <param name="Cancelled">Jobs cancelled: by a node, or by the Cancel script before any node took them.</param>
public sealed record QueueTotals(long Succeeded, long Retrying, long DeadLettered, long Failed, long Cancelled);

/// <summary>What <see cref="QueueCensus.CountAsync"/> found of one queue.</summary>
/// <param name="HasRecurring">It holds recurring schedules (a queue can hold nothing else and still be a queue).</param>
/// <param name="Problem">Keys of it Redis refused to read, and why; null when none.</param>
public sealed record QueueTally(QueueCounts Jobs, QueueTotals Totals, bool HasRecurring, string? Problem);

/// <summary>
/// Counts a queue's jobs straight from its Redis keys, and finds the queues that have keys at all (queues no node
/// serves included: jobs piling up where nobody takes them are what an operator most needs to see).
/// </summary>
public sealed class QueueCensus(Func<IConnectionMultiplexer> redis, RedisKeys keys, TimeProvider? clock = null)
{
    /// <summary>Queues found in Redis are looked for again after this long: finding them walks the whole keyspace.</summary>
    public static readonly TimeSpan DiscoveryCacheFor = TimeSpan.FromSeconds(10);

    private static readonly string[] QueueKeySuffixes = ["ready", "scheduled", "leased", "dead", "waiting", "stats", "recurring"];
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private Task<IReadOnlyList<string>>? _refreshing;
    private (IReadOnlyList<string> Queues, DateTimeOffset At)? _discovered;
    // Queues forgotten here, by the scan count when forgotten: a scan begun before a forget may still have found the
    // queue, and must not bring it back.
    private readonly Dictionary<string, long> _forgotten = new(StringComparer.Ordinal);
    private long _scans;

    /// <summary>
    /// Each queue's counts, totals and whether it holds recurring schedules, in one round trip. A key of a queue that Redis
    /// refuses to read (written by hand with another type) counts 0 and is named in that queue's problem: it never fails
    /// the other queues, nor the rest of its own.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, QueueTally>> CountAsync(IEnumerable<string> queues)
    {
        var batch = redis().GetDatabase().CreateBatch();
        var reads = queues.Distinct().Select(name =>
        {
            var q = keys.Queue(name);
            return (Name: name, Keys: q, Ready: batch.SortedSetLengthAsync(q.Ready), Scheduled: batch.SortedSetLengthAsync(q.Scheduled),
                Running: batch.SortedSetLengthAsync(q.Leased), Waiting: batch.SetLengthAsync(q.Waiting), Dead: batch.ListLengthAsync(q.Dead),
                Stats: batch.HashGetAsync(q.Stats, [(RedisValue)"succeeded", "retrying", "dead_lettered", "failed", "cancelled"]),
                Recurring: batch.KeyExistsAsync(q.Recurring));
        }).ToList();
        batch.Execute();
        var counts = new Dictionary<string, QueueTally>();
        foreach (var r in reads)
        {
            var refused = new List<string>();
            async Task<T> Read<T>(Task<T> read, string key, T otherwise)
            {
                try { return await read.ConfigureAwait(false); }
                catch (RedisServerException ex)
                {
                    refused.Add($"{key}: {ex.Message}");
                    return otherwise;
                }
            }
            var stats = await Read(r.Stats, r.Keys.Stats, new RedisValue[5]);
            long Total(int i) => stats[i].TryParse(out long n) ? n : 0;
            var jobs = new QueueCounts(await Read(r.Ready, r.Keys.Ready, 0L), await Read(r.Scheduled, r.Keys.Scheduled, 0L),
                await Read(r.Running, r.Keys.Leased, 0L), await Read(r.Waiting, r.Keys.Waiting, 0L), await Read(r.Dead, r.Keys.Dead, 0L));
            counts[r.Name] = new QueueTally(jobs, new QueueTotals(Total(0), Total(1), Total(2), Total(3), Total(4)), await r.Recurring,
                refused.Count == 0 ? null : $"Redis refused to read {string.Join("; ", refused)} (a key written by hand with another type?)");
        }
        return counts;
    }

    /// <summary>
    /// Names of the queues that have any of their keys in Redis, sorted. Found by SCAN, a page at a time, so Redis never
    /// blocks on it; at most every <see cref="DiscoveryCacheFor"/>, in the background: callers get the last list at
    /// once (only the very first waits), and one that gives up does not abandon the walk for the others.
    /// </summary>
    public Task<IReadOnlyList<string>> DiscoverAsync(CancellationToken ct = default)
    {
        Task<IReadOnlyList<string>> refreshing;
        lock (_gate)
        {
            var last = _discovered;
            var fresh = last is { } l && _clock.GetUtcNow() - l.At < DiscoveryCacheFor;
            if (!fresh && _refreshing is null) _refreshing = ScanAsync();
            if (last is { } known) return Task.FromResult(known.Queues);
            refreshing = _refreshing!;
        }
        return refreshing.WaitAsync(ct);
    }

    private async Task<IReadOnlyList<string>> ScanAsync()
    {
        await Task.Yield(); // return to the caller first, which records this task before it can end
        long scan;
        lock (_gate) scan = ++_scans;
        try
        {
            var found = new SortedSet<string>(StringComparer.Ordinal);
            // Matches cj:{queue}:ready and its siblings (the letters are their first ones) but not the job hashes.
            var pattern = $"{EscapeGlob(keys.Prefix)}:{{*}}:[rsldw]*";
            foreach (var server in redis().GetServers().Where(s => s.IsConnected && !s.IsReplica))
                await foreach (var key in server.KeysAsync(pattern: pattern, pageSize: 1000))
                    if (QueueOf(key!) is { } queue) found.Add(queue);
            IReadOnlyList<string> queues;
            lock (_gate)
            {
                queues = found.Where(name => !(_forgotten.TryGetValue(name, out var at) && at >= scan)).ToList();
                foreach (var (name, at) in _forgotten.ToList())
                    if (at < scan) _forgotten.Remove(name); // this scan began after that forget: it saw the truth
                _discovered = (queues, _clock.GetUtcNow());
            }
            return queues;
        }
        finally
        {
            lock (_gate) _refreshing = null;
        }
    }

    /// <summary>
    /// Forgets a queue that holds nothing (no job ready, scheduled, running, waiting or dead, no recurring job): deletes
    /// its outcome totals, the key that kept it listed after its last job, and drops it from the list at once (other
    /// nodes' lists at their next scan). Returns null when forgotten, else the place that still holds something (ready,
    /// scheduled, leased, waiting, dead or recurring); <see cref="KeyNotFoundException"/> when Redis holds nothing of
    /// the queue at all.
    /// </summary>
    public async Task<string?> ForgetAsync(string queue)
    {
        var q = keys.Queue(queue);
        var held = (string?)await redis().GetDatabase().ScriptEvaluateAsync(ForgetScript,
            [q.Ready, q.Scheduled, q.Leased, q.Waiting, q.Dead, q.Recurring, q.Stats]);
        if (held is { Length: > 0 } and not "nothing") return held;
        lock (_gate)
        {
            _forgotten[queue] = _scans;
            if (_discovered is { } known) _discovered = (known.Queues.Where(name => name != queue).ToList(), known.At);
        }
        return held == "nothing" ? throw new KeyNotFoundException($"No queue '{queue}': Redis holds nothing of it.") : null;
    }

    // Empty sets, lists and hashes do not exist in Redis, so EXISTS tells whether a place holds anything.
    private const string ForgetScript = """
        local places = {'ready', 'scheduled', 'leased', 'waiting', 'dead', 'recurring'}
        for i = 1, 6 do
          if redis.call('EXISTS', KEYS[i]) == 1 then return places[i] end
        end
        if redis.call('DEL', KEYS[7]) == 0 then return 'nothing' end
        return ''
        """;

    /// <summary>
    /// The ids in one place of a queue, in the order they leave it: ready ones next-to-run first, scheduled ones soonest
    /// due first, running ones by lease (the longest unrenewed first), waiting split parents in no order.
    /// </summary>
    public async Task<IReadOnlyList<string>> ListAsync(string queue, JobPlace place, int offset, int count)
    {
        var q = keys.Queue(queue);
        var db = redis().GetDatabase();
        var ids = place switch
        {
            JobPlace.Ready => await db.SortedSetRangeByRankAsync(q.Ready, offset, offset + count - 1),
            JobPlace.Scheduled => await db.SortedSetRangeByRankAsync(q.Scheduled, offset, offset + count - 1),
            JobPlace.Running => await db.SortedSetRangeByRankAsync(q.Leased, offset, offset + count - 1),
            _ => (await db.SetMembersAsync(q.Waiting)).Skip(offset).Take(count).ToArray(),
        };
        return ids.Select(id => (string)id!).ToList();
    }

    /// <summary>The queue a key like <c>cj:{emails}:ready</c> belongs to; null for any other key.</summary>
    internal string? QueueOf(string key)
    {
        var head = keys.Prefix + ":{";
        if (!key.StartsWith(head, StringComparison.Ordinal)) return null;
        var close = key.IndexOf("}:", head.Length, StringComparison.Ordinal);
        if (close < 0 || !QueueKeySuffixes.Contains(key[(close + 2)..])) return null;
        var name = key[head.Length..close];
        try
        {
            JobIds.ValidateQueueName(name);
            return name;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static string EscapeGlob(string text) =>
        string.Concat(text.Select(c => c is '*' or '?' or '[' or ']' or '\\' ? "\\" + c : c.ToString()));
}
