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
        var replay = PrepareReplay(old);
        ct.ThrowIfCancellationRequested(); // a replay sent with a token already cancelled would land unbeknown to the caller
        var replayed = await CallAsync($"replay job '{old.Id}'", async (db, resent) =>
            await ReplayedAsync(db, replay, await db.ScriptEvaluateAsync(ProducerScripts.Replay, replay.Keys, replay.Args).ConfigureAwait(false), resent)
                .ConfigureAwait(false), ct).ConfigureAwait(false);
        if (!replayed) throw new InvalidOperationException($"Job '{old.Id}' was replayed or changed meanwhile.");
        return replay.NewId;
    }

    /// <summary>A dead letter's replay, ready to send: the <see cref="ProducerScripts.Replay"/> script's keys and arguments.</summary>
    private sealed record PreparedReplay(string OldId, string NewId, RedisKey[] Keys, RedisValue[] Args);

    private PreparedReplay PrepareReplay(JobInfo old)
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
        return new PreparedReplay(jobId, envelope.Id, [q.Job(jobId), q.Dead, q.Ready, q.Job(envelope.Id)],
            [jobId, envelope.Id, ProtocolJson.Serialize(envelope), now, score, q.WakeChannel, q.EventsChannel,
                envelope.Task, (long)_options.RecordTtl.TotalMilliseconds]);
    }

    /// <summary>
    /// Whether the replay script's <paramref name="answer"/> means the new job was made: 1, or, sent again and refused,
    /// the new job is there (a try whose reply was lost made it; its id is this call's own).
    /// </summary>
    private static async Task<bool> ReplayedAsync(IDatabaseAsync db, PreparedReplay replay, RedisResult answer, bool resent) =>
        (long)answer == 1 || (resent && await db.HashGetAsync(replay.Keys[3], "replay_of").ConfigureAwait(false) == replay.OldId);

    /// <summary>Sends <paramref name="replays"/> in one round trip; whether each was made (<see cref="ReplayedAsync"/>).</summary>
    private static async Task<bool[]> ReplayManyAsync(IDatabase db, IReadOnlyList<PreparedReplay> replays, bool resent)
    {
        var answers = await db.SendAllAsync(replays, (batch, replay) => batch.ScriptEvaluateAsync(ProducerScripts.Replay, replay.Keys, replay.Args))
            .ConfigureAwait(false);
        // A refusal is checked whether or not this is a resend: a batch sent again after a failure may have had some of
        // its replays land, while the retry saw only the failure of one never sent (RedisRetry.Reached). The new job's
        // id is this call's own, so finding it is proof.
        var refused = Enumerable.Range(0, replays.Count).Where(i => (long)answers[i] != 1).ToList();
        var found = await db.SendAllAsync(refused, (batch, i) => ReplayedAsync(batch, replays[i], answers[i], resent: true)).ConfigureAwait(false);
        var made = answers.Select(answer => (long)answer == 1).ToArray();
        for (var k = 0; k < refused.Count; k++) made[refused[k]] = found[k];
        return made;
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
    /// <param name="ct">Stops the walk between pages (those replayed before stay replayed; a page already sent may still land).</param>
    public async Task<IReadOnlyList<string>> ReplayAllAsync(string queue, string? task, CancellationToken ct)
    {
        var q = _keys.Queue(queue);
        var replayed = new List<string>();
        var made = new HashSet<string>(); // this call's replays: one that failed again is not replayed again
        var walk = await DeadListWalk.StartAsync(this, q.Dead, $"replay the dead letters of queue '{queue}'", ct).ConfigureAwait(false);
        while (await walk.NextAsync(200, ct).ConfigureAwait(false) is { Count: > 0 } ids)
        {
            ct.ThrowIfCancellationRequested();
            var jobs = new Dictionary<string, JobInfo>();
            foreach (var info in await CallAsync(walk.What, db => ReadManyAsync(db, ids), ct).ConfigureAwait(false)) jobs.TryAdd(info.Id, info);
            var replays = new Dictionary<string, PreparedReplay>();
            foreach (var id in ids)
                if (!made.Contains(id) && jobs.GetValueOrDefault(id) is { State: JobState.DeadLettered, Envelope: not null, ReplayedAs: null } job &&
                    (task is null || job.Task == task))
                    replays[id] = PrepareReplay(job);
            // The page's replays in one round trip, then the walk told of each letter in the list's order.
            var sent = replays.Values.ToList();
            ct.ThrowIfCancellationRequested(); // a page sent with a token already cancelled would land unbeknown to the caller
            var outcome = await CallAsync(walk.What, (db, resent) => ReplayManyAsync(db, sent, resent), ct).ConfigureAwait(false);
            var madeNow = sent.Zip(outcome).ToDictionary(pair => pair.First.OldId, pair => pair.Second);
            var told = new HashSet<string>();
            foreach (var id in ids)
            {
                if (!replays.TryGetValue(id, out var replay)) walk.Stays(id);
                else if (!told.Add(id)) await walk.StaysIfStillThereAsync(id, ct).ConfigureAwait(false); // listed twice: replayed once
                else if (madeNow[id])
                {
                    walk.TookOut();
                    replayed.Add(replay.NewId);
                    made.Add(replay.NewId);
                }
                else await walk.StaysIfStillThereAsync(id, ct).ConfigureAwait(false); // changed meanwhile
            }
        }
        return replayed;
    }

    /// <summary>
    /// Deletes the dead letters of <paramref name="queue"/> (of <paramref name="task"/> only, if given) for good, each
    /// with its record and idempotency key (Sidekiq's "Delete All" of its dead set); returns how many. It goes through the
    /// list as it was when called, oldest first, 500 at a time (<see cref="DeadListWalk"/>), so dead letters that arrive
    /// meanwhile stay. A child whose split parent still waits is kept: its parent has yet to read its outcome. Each step
    /// is sent again while Redis cannot be reached (<see cref="JobClientOptions.CallRetryFor"/>); the count then leaves out
    /// the letters of a page whose first send landed though its reply was lost (they are deleted all the same).
    /// </summary>
    public async Task<long> PurgeDeadLettersAsync(string queue, string? task = null, CancellationToken ct = default)
    {
        var q = _keys.Queue(queue);
        long purged = 0;
        var walk = await DeadListWalk.StartAsync(this, q.Dead, $"purge the dead letters of queue '{queue}'", ct).ConfigureAwait(false);
        while (await walk.NextAsync(500, ct).ConfigureAwait(false) is { Count: > 0 } ids)
        {
            ct.ThrowIfCancellationRequested();
            var records = await CallAsync(walk.What, db => ReadForPurgeAsync(db, q, ids), ct).ConfigureAwait(false);
            var parents = records.Select(fields => fields[2]).Where(parent => !parent.IsNull).Select(parent => (string)parent!).Distinct().ToList();
            var waiting = await CallAsync(walk.What, db => WaitingParentsAsync(db, q, parents), ct).ConfigureAwait(false);
            var doomed = new List<(string Id, RedisKey Idempotency)>();
            foreach (var (id, fields) in ids.Zip(records))
            {
                if ((task is not null && fields[0] != task) || (!fields[2].IsNull && waiting.Contains((string)fields[2]!)))
                {
                    walk.Stays(id);
                    continue;
                }
                var envelope = fields[1].IsNull ? null : TryEnvelope((string)fields[1]!);
                doomed.Add((id, envelope?.IdempotencyKey is { } key ? q.Idempotency(key) : q.Job(id)));
            }
            // The page's deletions in one round trip. Safe to send again: a second send finds a letter gone and deletes
            // nothing (the count leaves out each letter whose first send landed).
            ct.ThrowIfCancellationRequested(); // a page sent with a token already cancelled would land unbeknown to the caller
            foreach (var deleted in await CallAsync(walk.What, db => PurgeManyAsync(db, q, doomed), ct).ConfigureAwait(false))
            {
                // Out of the list either way: by this call, or by an earlier try of it or someone else (0), both old letters
                // that no longer hold a place the walk must reach.
                walk.TookOut();
                purged += deleted;
            }
        }
        return purged;
    }

    /// <summary>The fields a purge decides by (task, envelope, parent) of each letter, in one round trip.</summary>
    private static Task<RedisValue[][]> ReadForPurgeAsync(IDatabase db, QueueKeys q, IReadOnlyList<string> ids) =>
        db.SendAllAsync(ids, (batch, id) => batch.HashGetAsync(q.Job(id), [(RedisValue)"task", "envelope", "parent"]));

    /// <summary>Which of <paramref name="parents"/> still wait for their children, in one round trip.</summary>
    private static async Task<HashSet<string>> WaitingParentsAsync(IDatabase db, QueueKeys q, IReadOnlyList<string> parents)
    {
        var states = await db.SendAllAsync(parents, (batch, parent) => batch.HashGetAsync(q.Job(parent), "state")).ConfigureAwait(false);
        return parents.Where((_, i) => states[i] == "waiting").ToHashSet();
    }

    /// <summary>Deletes each letter with <see cref="ProducerScripts.PurgeDead"/>, in one round trip; 1 or 0 for each.</summary>
    private static async Task<long[]> PurgeManyAsync(IDatabase db, QueueKeys q, IReadOnlyList<(string Id, RedisKey Idempotency)> letters) =>
        (await db.SendAllAsync(letters, (batch, letter) =>
            batch.ScriptEvaluateAsync(ProducerScripts.PurgeDead, [q.Dead, q.Job(letter.Id), letter.Idempotency], [letter.Id])).ConfigureAwait(false))
        .Select(deleted => (long)deleted).ToArray();

    private static JobEnvelope? TryEnvelope(string json)
    {
        try { return ProtocolJson.DeserializeEnvelope(json); }
        catch (System.Text.Json.JsonException) { return null; } // a malformed one (why it died, perhaps) has no key to free
    }
}
