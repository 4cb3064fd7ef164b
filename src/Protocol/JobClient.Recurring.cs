using System.Text.Json;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>Recurring jobs (Celery beat, Hangfire's RecurringJob, BullMQ's job schedulers): schedules kept in Redis, fired by the nodes.</summary>
public sealed partial class JobClient
{
    /// <summary>
    /// Creates or updates the recurring schedule <paramref name="name"/> of <paramref name="options"/>' queue: at each
    /// occurrence of <paramref name="cron"/> (read in the options' time zone) a node serving that queue enqueues a job of
    /// <paramref name="task"/> with <paramref name="args"/>. One job per occurrence however many nodes serve the queue
    /// (its id is fixed by the occurrence); occurrences missed while no node served the queue make one job when a node
    /// is back, not one each. Calling it again with the same cron and time zone keeps the next run (so an app may declare
    /// its schedules at every start) and takes the new task, arguments and options from the next run on. Bad input
    /// (cron, time zone, name, options, arguments over the payload limit) throws <see cref="ArgumentException"/> and
    /// writes nothing.
    /// </summary>
    public async Task<RecurringJob> AddOrUpdateRecurringAsync(string name, string cron, string task, object? args = null,
        RecurringOptions? options = null, CancellationToken ct = default)
    {
        options ??= new RecurringOptions();
        RecurringRules.ValidateName(name);
        var expression = RecurringRules.ParseCron(cron);
        var zone = RecurringRules.FindTimeZone(options.TimeZone);
        var now = _options.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var next = RecurringRules.NextRunMs(expression, zone, now)
            ?? throw new ArgumentException($"The cron expression '{cron}' has no occurrence after now: the schedule would never run.", nameof(cron));
        var template = NewEnvelope(task, args, Checked(task, options.JobOptions())) with
        {
            Id = RecurringRules.JobId(options.Queue, name, 0), EnqueuedAt = 0,
        };
        // The payload limit and the checks a node makes, on the job as a run makes it (its id and time), now rather than
        // at every run.
        EnqueueCall(template with { Id = RecurringRules.JobId(options.Queue, name, LongestRunMs), EnqueuedAt = now });
        var q = _keys.Queue(options.Queue);
        ct.ThrowIfCancellationRequested();
        // Sent again while Redis cannot be reached: writing the same schedule twice keeps its next run (an app declaring its
        // schedules at start while Redis restarts starts once Redis is back).
        RedisValue[] values = [name, cron.Trim(), options.TimeZone, ProtocolJson.Serialize(template), next, now];
        await CallAsync($"write recurring job '{name}' of queue '{options.Queue}'",
            db => db.ScriptEvaluateAsync(ProducerScripts.UpsertRecurring, [q.RecurringSchedule(name), q.Recurring], values), ct).ConfigureAwait(false);
        return await GetRecurringAsync(options.Queue, name, ct).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Recurring job '{name}' was removed while it was written.");
    }

    /// <summary>A run's time with as many digits as any before the year 2286, for measuring a run's job.</summary>
    private const long LongestRunMs = 9_999_999_999_999;

    /// <summary>The recurring schedule <paramref name="name"/> of <paramref name="queue"/>; null when there is none.</summary>
    public Task<RecurringJob?> GetRecurringAsync(string queue, string name) => GetRecurringAsync(queue, name, CancellationToken.None);

    /// <inheritdoc cref="GetRecurringAsync(string, string)"/>
    /// <param name="ct">Stops the tries while Redis cannot be reached.</param>
    public Task<RecurringJob?> GetRecurringAsync(string queue, string name, CancellationToken ct)
    {
        RecurringRules.ValidateName(name);
        var q = _keys.Queue(queue);
        return CallAsync($"read recurring job '{name}' of queue '{queue}'", async db =>
        {
            var batch = db.CreateBatch();
            var score = batch.SortedSetScoreAsync(q.Recurring, name);
            var fields = batch.HashGetAllAsync(q.RecurringSchedule(name));
            batch.Execute();
            // Both awaited before either is read, so a failed read is never left unobserved; their errors are thrown below.
            try { await Task.WhenAll(score, fields).ConfigureAwait(false); }
            catch (Exception) { }
            return await score.ConfigureAwait(false) is { } s ? await ReadAsync(queue, name, s, fields).ConfigureAwait(false) : null;
        }, ct);
    }

    /// <summary>The recurring schedules of <paramref name="queue"/>, soonest next run first (those that run no more last).</summary>
    public Task<IReadOnlyList<RecurringJob>> ListRecurringAsync(string queue) =>
        CallAsync($"list the recurring jobs of queue '{queue}'", db => ListRecurringAsync(db, queue));

    private async Task<IReadOnlyList<RecurringJob>> ListRecurringAsync(IDatabase db, string queue)
    {
        var q = _keys.Queue(queue);
        var names = await db.SortedSetRangeByRankWithScoresAsync(q.Recurring).ConfigureAwait(false);
        var batch = db.CreateBatch();
        var reads = names.Select(n => (Name: (string)n.Element!, n.Score, Fields: batch.HashGetAllAsync(q.RecurringSchedule((string)n.Element!)))).ToList();
        batch.Execute();
        // Every read awaited (a failed one is never left unobserved); a key of another type is read as an error, not thrown.
        var found = await Task.WhenAll(reads.Select(r => ReadAsync(queue, r.Name, r.Score, r.Fields))).ConfigureAwait(false);
        return found.OfType<RecurringJob>().ToList();
    }

    /// <summary>One schedule from its hash; a key of another type (written by hand) is shown with an error, not thrown.</summary>
    private static async Task<RecurringJob?> ReadAsync(string queue, string name, double score, Task<HashEntry[]> fields)
    {
        try
        {
            return await fields.ConfigureAwait(false) is { Length: > 0 } entries ? RecurringJob.Read(queue, name, score, entries) : null;
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("WRONGTYPE", StringComparison.Ordinal))
        {
            return new RecurringJob
            {
                Name = name, Queue = queue, Cron = "", TimeZone = "", Error = "Its key is not a hash: write it again with a producer to replace it.",
                NextRunAt = double.IsFinite(score) ? UnixTime.FromMilliseconds((long)Math.Clamp(score, -1e15, 1e15)) : null,
            };
        }
    }

    /// <summary>
    /// Removes the recurring schedule <paramref name="name"/>; the jobs it made stay. Returns false when there was none.
    /// Sent again while Redis cannot be reached, for up to <see cref="JobClientOptions.CallRetryFor"/> (a try sent again
    /// that finds none answers true: an earlier try may have removed it); then throws <see cref="RedisUnavailableException"/>.
    /// </summary>
    public Task<bool> RemoveRecurringAsync(string queue, string name) => RemoveRecurringAsync(queue, name, CancellationToken.None);

    /// <inheritdoc cref="RemoveRecurringAsync(string, string)"/>
    /// <param name="ct">Stops the tries while Redis cannot be reached (a try already sent may still land).</param>
    public async Task<bool> RemoveRecurringAsync(string queue, string name, CancellationToken ct)
    {
        var (removed, resent) = await ScheduleScriptAsync($"remove recurring job '{name}' of queue '{queue}'", ProducerScripts.RemoveRecurring,
            queue, name, [name], ct).ConfigureAwait(false);
        return removed == 1 || resent;
    }

    /// <summary>
    /// Pauses the recurring schedule <paramref name="name"/> (django-celery-beat's <c>enabled = False</c>, sidekiq-cron's
    /// disable): no node fires it until <see cref="ResumeRecurringAsync(string, string)"/>, and writing it again with
    /// <see cref="AddOrUpdateRecurringAsync"/> (an app declaring its schedules at start) leaves it paused. Returns false
    /// when it was paused already; throws <see cref="KeyNotFoundException"/> when there is no such schedule. Sent again
    /// while Redis cannot be reached, as <see cref="RemoveRecurringAsync(string, string)"/> (a try sent again that finds
    /// it paused answers true).
    /// </summary>
    public Task<bool> PauseRecurringAsync(string queue, string name) => PauseRecurringAsync(queue, name, CancellationToken.None);

    /// <inheritdoc cref="PauseRecurringAsync(string, string)"/>
    /// <param name="ct">Stops the tries while Redis cannot be reached (a try already sent may still land).</param>
    public async Task<bool> PauseRecurringAsync(string queue, string name, CancellationToken ct)
    {
        var (paused, resent) = await ScheduleScriptAsync($"pause recurring job '{name}' of queue '{queue}'", ProducerScripts.PauseRecurring,
            queue, name, [name, _options.Clock.GetUtcNow().ToUnixTimeMilliseconds()], ct).ConfigureAwait(false);
        return paused == 0 ? throw NoSchedule(queue, name) : paused == 1 || resent;
    }

    /// <summary>
    /// Resumes the paused schedule <paramref name="name"/> from its cron's next occurrence after now: the runs it missed
    /// while paused are skipped, not made up. Returns false when it was not paused; throws
    /// <see cref="KeyNotFoundException"/> when there is no such schedule, and <see cref="InvalidOperationException"/>
    /// when a node stopped it (<see cref="RecurringJob.Error"/>: write it again with
    /// <see cref="AddOrUpdateRecurringAsync"/>, which leaves it paused, then resume it). Sent again while Redis cannot be
    /// reached, as <see cref="RemoveRecurringAsync(string, string)"/> (a try sent again that finds it running answers true).
    /// </summary>
    public Task<bool> ResumeRecurringAsync(string queue, string name) => ResumeRecurringAsync(queue, name, CancellationToken.None);

    /// <inheritdoc cref="ResumeRecurringAsync(string, string)"/>
    /// <param name="ct">Stops the tries while Redis cannot be reached (a try already sent may still land).</param>
    public async Task<bool> ResumeRecurringAsync(string queue, string name, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            var schedule = await GetRecurringAsync(queue, name, ct).ConfigureAwait(false) ?? throw NoSchedule(queue, name);
            if (schedule.Error is { } error) throw Stopped(name, error);
            if (schedule.PausedAt is null) return false;
            var next = RecurringRules.NextRunMs(RecurringRules.ParseCron(schedule.Cron), RecurringRules.FindTimeZone(schedule.TimeZone),
                _options.Clock.GetUtcNow().ToUnixTimeMilliseconds());
            RedisValue score = next is { } n ? n : "inf"; // a cron with no occurrence left resumes to "runs no more"
            var (resumed, resent) = await ScheduleScriptAsync($"resume recurring job '{name}' of queue '{queue}'", ProducerScripts.ResumeRecurring,
                queue, name, [name, score, schedule.Cron, schedule.TimeZone], ct).ConfigureAwait(false);
            switch (resumed)
            {
                case 0: throw NoSchedule(queue, name);
                case 3: throw Stopped(name, (await GetRecurringAsync(queue, name, ct).ConfigureAwait(false))?.Error ?? "(its error was cleared meanwhile)");
                case 4 when attempt < 5: continue; // rewritten with another cron meanwhile: the next run from the new one
                case 4: throw new InvalidOperationException($"Recurring job '{name}' kept being rewritten while it was resumed; try again.");
                default: return resumed == 1 || resent;
            }
        }
    }

    /// <summary>
    /// One of the schedule scripts on <paramref name="name"/>'s keys, sent again while Redis cannot be reached: its
    /// integer answer, and whether that came from a try sent again (when an earlier one may have landed).
    /// </summary>
    private Task<(long Reply, bool Resent)> ScheduleScriptAsync(string what, string script, string queue, string name, RedisValue[] args,
        CancellationToken ct)
    {
        RecurringRules.ValidateName(name);
        ct.ThrowIfCancellationRequested(); // a change sent with a token already cancelled would land unbeknown to the caller
        var q = _keys.Queue(queue);
        RedisKey[] keys = [q.RecurringSchedule(name), q.Recurring];
        return CallAsync(what, async (db, resent) =>
            ((long)await db.ScriptEvaluateAsync(script, keys, args).ConfigureAwait(false), resent), ct);
    }

    private static InvalidOperationException Stopped(string name, string error) =>
        new($"Recurring job '{name}' was stopped by a node ({error}): write it again to start it, then resume it.");

    private static KeyNotFoundException NoSchedule(string queue, string name) => new($"No recurring job '{name}' in queue '{queue}'.");

    /// <summary>
    /// Enqueues one job of the schedule <paramref name="name"/> now, outside its cron (Hangfire's "Trigger now"); its
    /// next run is unchanged. Returns the job's id; throws <see cref="KeyNotFoundException"/> when there is no such schedule.
    /// </summary>
    public async Task<string> TriggerRecurringAsync(string queue, string name, CancellationToken ct = default)
    {
        var schedule = await GetRecurringAsync(queue, name, ct).ConfigureAwait(false) ?? throw NoSchedule(queue, name);
        var template = schedule.Template
            ?? throw new InvalidOperationException($"Recurring job '{name}' has no readable job template: write it again with AddOrUpdateRecurringAsync.");
        var now = _options.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        // As a node's run of it (RecurringFirer): a job of its own, now, whatever a template written by hand holds
        return await EnqueueAsync(template with
        {
            Id = JobIds.New(queue), Queue = queue, EnqueuedAt = now, NotBefore = null, Attempt = 0, IdempotencyKey = null,
            TraceParent = null, TraceState = null,
        }, ct).ConfigureAwait(false);
    }
}
