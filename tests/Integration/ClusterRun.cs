using System.Collections.Concurrent;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>What a cluster test reads back about one job, straight from its hash (including <c>lost</c>, which
/// <see cref="JobInfo"/> does not carry).</summary>
public sealed record JobFacts(string Id, string? State, int Attempts, int Lost, string? Node, long? StartedAt, long? FinishedAt, string? Result)
{
    public bool Finished => State is "succeeded" or "failed" or "dead_lettered" or "cancelled";
    public DateTimeOffset? Started => StartedAt is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    public DateTimeOffset? Ended => FinishedAt is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
}

/// <summary>Helpers of the cluster specs: reading many jobs at once and waiting for a whole run to finish.</summary>
public static class ClusterRun
{
    private static readonly RedisValue[] Fields =
    [
        JobHashFields.State, JobHashFields.Attempts, JobHashFields.Lost, JobHashFields.Node,
        JobHashFields.StartedAt, JobHashFields.FinishedAt, JobHashFields.Result,
    ];

    /// <summary>The facts of every job in <paramref name="ids"/>, read in pipelined batches.</summary>
    public static async Task<IReadOnlyList<JobFacts>> ReadAsync(IDatabase db, RedisKeys keys, IReadOnlyList<string> ids)
    {
        var facts = new List<JobFacts>(ids.Count);
        foreach (var chunk in ids.Chunk(2_000))
        {
            var batch = db.CreateBatch();
            var reads = chunk.Select(id => batch.HashGetAsync(keys.ForJob(id).Job(id), Fields)).ToArray();
            batch.Execute();
            var values = await Task.WhenAll(reads);
            for (var i = 0; i < chunk.Length; i++)
            {
                var v = values[i];
                facts.Add(new JobFacts(chunk[i], (string?)v[0], (int)(Long(v[1]) ?? 0), (int)(Long(v[2]) ?? 0), (string?)v[3],
                    Long(v[4]), Long(v[5]), (string?)v[6]));
            }
        }
        return facts;
    }

    private static long? Long(RedisValue v) => v.IsNull ? null : long.TryParse((string?)v, out var l) ? l : null;

    /// <summary>
    /// Waits until every job is finished (succeeded, failed, dead-lettered or cancelled) and returns their facts; on
    /// timeout throws with how many are left and in which states. Only unfinished jobs are read again on each round.
    /// </summary>
    public static async Task<IReadOnlyList<JobFacts>> WaitAllFinishedAsync(IDatabase db, RedisKeys keys, IReadOnlyList<string> ids,
        TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        IReadOnlyList<string> open = ids;
        while (true)
        {
            IReadOnlyList<JobFacts> facts;
            try { facts = await ReadAsync(db, keys, open); }
            catch (RedisException) when (DateTime.UtcNow < deadline) { await Task.Delay(500); continue; }
            var left = facts.Where(f => !f.Finished).ToList();
            if (left.Count == 0) return await ReadAsync(db, keys, ids);
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{left.Count} of {ids.Count} jobs are not finished after {timeout}: " +
                    string.Join(", ", left.GroupBy(f => f.State ?? "(no record)").Select(g => $"{g.Count()} {g.Key}")));
            open = left.Select(f => f.Id).ToList();
            await Task.Delay(250);
        }
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Not within {timeout}: {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>Enqueues one job per index, <paramref name="parallel"/> at a time in batches; returns the ids in index order.</summary>
    public static async Task<string[]> EnqueueAsync(JobClient client, int count, Func<int, (string Task, object Args)> job, int parallel = 500)
    {
        var ids = new string[count];
        for (var start = 0; start < count; start += parallel)
        {
            var batch = Enumerable.Range(start, Math.Min(parallel, count - start)).ToArray();
            var enqueued = await Task.WhenAll(batch.Select(i => { var (task, args) = job(i); return client.EnqueueAsync(task, args); }));
            for (var k = 0; k < batch.Length; k++) ids[batch[k]] = enqueued[k];
        }
        return ids;
    }

    /// <summary>The longest time between <paramref name="times"/> (sorted), counting from <paramref name="from"/>.</summary>
    public static TimeSpan LongestGap(DateTimeOffset from, IEnumerable<DateTimeOffset> times)
    {
        var longest = TimeSpan.Zero;
        var previous = from;
        foreach (var t in times.Where(t => t >= from).Order())
        {
            if (t - previous > longest) longest = t - previous;
            previous = t;
        }
        return longest;
    }
}

/// <summary>
/// Listens to a queue's events channel (<c>id state</c> on every state change) on its own connection, noting when each
/// event arrived: a cheap way to count finished jobs during a run and to time what happened after a fault.
/// </summary>
public sealed class QueueEvents : IAsyncDisposable
{
    private readonly IConnectionMultiplexer _redis;
    private readonly ConcurrentQueue<(DateTimeOffset At, string Id, string State)> _events = new();
    private int _succeeded;

    private QueueEvents(IConnectionMultiplexer redis) => _redis = redis;

    public static async Task<QueueEvents> ListenAsync(string redisUrl, RedisKeys keys, string queue = "default")
    {
        var events = new QueueEvents(await RedisConnection.ConnectAsync(redisUrl, "tests-events"));
        await events._redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(keys.Queue(queue).EventsChannel), (_, message) =>
        {
            var text = (string?)message ?? "";
            var space = text.IndexOf(' ');
            if (space < 0) return;
            var state = text[(space + 1)..];
            events._events.Enqueue((DateTimeOffset.UtcNow, text[..space], state));
            if (state == "succeeded") Interlocked.Increment(ref events._succeeded);
        });
        return events;
    }

    /// <summary>Succeeded events seen so far (an id may count twice if it ever succeeded twice).</summary>
    public int Succeeded => Volatile.Read(ref _succeeded);

    public IEnumerable<DateTimeOffset> Times(string state) => _events.Where(e => e.State == state).Select(e => e.At);

    public IEnumerable<(DateTimeOffset At, string Id)> Of(string state) => _events.Where(e => e.State == state).Select(e => (e.At, e.Id));

    public async Task WaitForSucceededAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Succeeded < count)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"only {Succeeded} of {count} jobs succeeded within {timeout}");
            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync() => await _redis.DisposeAsync();
}
