using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>Dead letters: list, replay and purge the jobs that ran out of attempts (Sidekiq's dead set, Celery's failed tasks).</summary>
public sealed partial class JobClient
{
    /// <summary>
    /// Dead-lettered jobs of <paramref name="queue"/>, oldest first, optionally only those of <paramref name="task"/>:
    /// each with its error (why it was dead-lettered) and its history of failed attempts. Without a task, a page of the
    /// dead list: <paramref name="offset"/> and <paramref name="count"/> are positions in it (an id whose record is gone
    /// leaves its page one short); with one, they count that task's dead letters.
    /// </summary>
    public async Task<IReadOnlyList<JobInfo>> ListDeadLettersAsync(string queue, string? task = null, int offset = 0, int count = 100)
    {
        if (offset < 0 || count < 1) throw new ArgumentException("offset must be >= 0 and count >= 1.");
        var q = _keys.Queue(queue);
        var what = $"list the dead letters of queue '{queue}'";
        // Every dead letter: the page straight from the list (a filter must read the records before it to skip them).
        if (task is null)
            return await GetManyAsync((await CallAsync(what, db => db.ListRangeAsync(q.Dead, offset, (long)offset + count - 1)).ConfigureAwait(false))
                .Select(id => (string)id!).ToList()).ConfigureAwait(false);
        var found = new List<JobInfo>();
        var skipped = 0;
        const int page = 500;
        for (long start = 0; found.Count < count; start += page)
        {
            var from = start;
            var ids = await CallAsync(what, db => db.ListRangeAsync(q.Dead, from, from + page - 1)).ConfigureAwait(false);
            if (ids.Length == 0) break;
            foreach (var info in await GetManyAsync(ids.Select(id => (string)id!).ToList()).ConfigureAwait(false))
            {
                if (info.Task != task) continue;
                if (skipped++ < offset) continue;
                found.Add(info);
                if (found.Count == count) break;
            }
        }
        return found;
    }

    /// <summary>
    /// Replays a dead-lettered job: a new job with the same task and arguments, fresh attempts, and <c>replay_of</c>
    /// pointing at the original (whose record gets <c>replayed_as</c>). Returns the new job's id. Sent again while Redis
    /// cannot be reached, for up to <see cref="JobClientOptions.CallRetryFor"/> for its read and again for its write (a try
    /// that finds the new job it sent already made answers its id: an earlier try landed); then throws
    /// <see cref="RedisUnavailableException"/>.
    /// </summary>
    public Task<string> ReplayAsync(string jobId) => ReplayAsync(jobId, CancellationToken.None);

    /// <inheritdoc cref="ReplayAsync(string)"/>
    /// <param name="ct">Stops the tries while Redis cannot be reached (a try already sent may still land).</param>
    public async Task<string> ReplayAsync(string jobId, CancellationToken ct)
    {
        var old = await GetAsync(jobId, ct).ConfigureAwait(false) ?? throw new KeyNotFoundException($"No job '{jobId}'.");
        return await ReplayAsync(old, ct).ConfigureAwait(false);
    }

    private async Task<string> ReplayAsync(JobInfo old, CancellationToken ct)
    {
        var jobId = old.Id;
        if (old.State != JobState.DeadLettered)
            throw new InvalidOperationException($"Job '{jobId}' is {old.State.ToWire()}, not dead-lettered: only dead letters are replayed.");
        if (old.ReplayedAs is not null)
            throw new InvalidOperationException($"Job '{jobId}' was replayed already, as '{old.ReplayedAs}'.");
        var original = old.Envelope ?? throw new InvalidOperationException($"Job '{jobId}' has no readable envelope to replay.");
        var q = _keys.ForJob(jobId);
        var now = _options.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var envelope = original with
        {
            Id = JobIds.New(q.Name), EnqueuedAt = now, NotBefore = null, Attempt = 0, ReplayOf = jobId,
            RootId = original.RootId, IdempotencyKey = null,
        };
        var score = JobIds.ReadyScore(envelope.Priority, now);
        RedisKey[] keys = [q.Job(jobId), q.Dead, q.Ready, q.Job(envelope.Id)];
        RedisValue[] args = [jobId, envelope.Id, ProtocolJson.Serialize(envelope), now, score, q.WakeChannel, q.EventsChannel,
            envelope.Task, (long)_options.RecordTtl.TotalMilliseconds];
        ct.ThrowIfCancellationRequested(); // a replay sent with a token already cancelled would land unbeknown to the caller
        var replayed = await CallAsync($"replay job '{jobId}'", async (db, resent) =>
        {
            if ((long)await db.ScriptEvaluateAsync(ProducerScripts.Replay, keys, args).ConfigureAwait(false) == 1) return true;
            // Sent again and refused: a try whose reply was lost may have made the new job (its id is this call's own).
            return resent && await db.HashGetAsync(keys[3], "replay_of").ConfigureAwait(false) == args[0];
        }, ct).ConfigureAwait(false);
        if (!replayed) throw new InvalidOperationException($"Job '{jobId}' was replayed or changed meanwhile.");
        return envelope.Id;
    }

    /// <summary>
    /// Replays every dead letter of <paramref name="queue"/> (of <paramref name="task"/> only, if given); returns the new
    /// ids. It goes through the dead list as it was when called, oldest first, 200 at a time (<see cref="DeadListWalk"/>):
    /// a replay that fails again meanwhile is a new dead letter at the list's end and is not replayed again (or the call
    /// would chase a failing task for ever). Letters it cannot replay (no readable envelope, replayed already, record
    /// gone) stay where they are. Each step is sent again while Redis cannot be reached (<see cref="JobClientOptions.CallRetryFor"/>);
    /// a call that fails midway has replayed what it returned no id for, and those letters have left the list: calling it
    /// again replays the rest.
    /// </summary>
    public Task<IReadOnlyList<string>> ReplayAllAsync(string queue, string? task = null) => ReplayAllAsync(queue, task, CancellationToken.None);

    /// <inheritdoc cref="ReplayAllAsync(string, string?)"/>
    /// <param name="ct">Stops the walk between letters (those replayed before stay replayed).</param>
    public async Task<IReadOnlyList<string>> ReplayAllAsync(string queue, string? task, CancellationToken ct)
    {
        var q = _keys.Queue(queue);
        var replayed = new List<string>();
        var made = new HashSet<string>(); // this call's replays: one that failed again is not replayed again
        var walk = await DeadListWalk.StartAsync(this, q.Dead, $"replay the dead letters of queue '{queue}'", ct).ConfigureAwait(false);
        while (await walk.NextAsync(200, ct).ConfigureAwait(false) is { Count: > 0 } ids)
        {
            var jobs = new Dictionary<string, JobInfo>();
            foreach (var info in await CallAsync(walk.What, db => ReadManyAsync(db, ids), ct).ConfigureAwait(false)) jobs.TryAdd(info.Id, info);
            foreach (var id in ids)
            {
                if (made.Contains(id) || jobs.GetValueOrDefault(id) is not { State: JobState.DeadLettered, Envelope: not null, ReplayedAs: null } job ||
                    (task is not null && job.Task != task))
                {
                    walk.Stays(id);
                    continue;
                }
                try
                {
                    var newId = await ReplayAsync(job, ct).ConfigureAwait(false);
                    walk.TookOut();
                    replayed.Add(newId);
                    made.Add(newId);
                }
                catch (InvalidOperationException) { await walk.StaysIfStillThereAsync(id, ct).ConfigureAwait(false); } // changed meanwhile
            }
        }
        return replayed;
    }

    /// <summary>
    /// Deletes the dead letters of <paramref name="queue"/> (of <paramref name="task"/> only, if given) for good, each
    /// with its record and idempotency key (Sidekiq's "Delete All" of its dead set); returns how many. It goes through the
    /// list as it was when called, oldest first, 500 at a time (<see cref="DeadListWalk"/>), so dead letters that arrive
    /// meanwhile stay. A child whose split parent still waits is kept: its parent has yet to read its outcome. Each step
    /// is sent again while Redis cannot be reached (<see cref="JobClientOptions.CallRetryFor"/>).
    /// </summary>
    public async Task<long> PurgeDeadLettersAsync(string queue, string? task = null, CancellationToken ct = default)
    {
        var q = _keys.Queue(queue);
        long purged = 0;
        var walk = await DeadListWalk.StartAsync(this, q.Dead, $"purge the dead letters of queue '{queue}'", ct).ConfigureAwait(false);
        while (await walk.NextAsync(500, ct).ConfigureAwait(false) is { Count: > 0 } ids)
        {
            var records = await CallAsync(walk.What, db => ReadForPurgeAsync(db, q, ids), ct).ConfigureAwait(false);
            foreach (var (id, fields) in ids.Zip(records))
            {
                ct.ThrowIfCancellationRequested();
                var parent = fields[2];
                var waitingParent = !parent.IsNull &&
                    await CallAsync(walk.What, db => db.HashGetAsync(q.Job((string)parent!), "state"), ct).ConfigureAwait(false) == "waiting";
                if ((task is not null && fields[0] != task) || waitingParent)
                {
                    walk.Stays(id);
                    continue;
                }
                var envelope = fields[1].IsNull ? null : TryEnvelope((string)fields[1]!);
                RedisKey idempotency = envelope?.IdempotencyKey is { } key ? q.Idempotency(key) : q.Job(id);
                // Safe to send again: a second send finds the letter gone and deletes nothing (the count is one short).
                var deleted = (long)await CallAsync(walk.What,
                    db => db.ScriptEvaluateAsync(ProducerScripts.PurgeDead, [q.Dead, q.Job(id), idempotency], [id]), ct).ConfigureAwait(false);
                if (deleted == 1) walk.TookOut();
                purged += deleted;
            }
        }
        return purged;
    }

    /// <summary>The fields a purge decides by (task, envelope, parent) of each letter, in one round trip.</summary>
    private static async Task<RedisValue[][]> ReadForPurgeAsync(IDatabase db, QueueKeys q, IReadOnlyList<string> ids)
    {
        var batch = db.CreateBatch();
        var reads = ids.Select(id => batch.HashGetAsync(q.Job(id), [(RedisValue)"task", "envelope", "parent"])).ToList();
        batch.Execute();
        return await Task.WhenAll(reads).ConfigureAwait(false); // every read awaited: none left unobserved when one fails
    }

    private static JobEnvelope? TryEnvelope(string json)
    {
        try { return ProtocolJson.DeserializeEnvelope(json); }
        catch (System.Text.Json.JsonException) { return null; } // a malformed one (why it died, perhaps) has no key to free
    }
}
