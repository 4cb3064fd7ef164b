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
        return await GetRecurringAsync(options.Queue, name).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Recurring job '{name}' was removed while it was written.");
    }

    /// <summary>A run's time with as many digits as any before the year 2286, for measuring a run's job.</summary>
    private const long LongestRunMs = 9_999_999_999_999;

    /// <summary>The recurring schedule <paramref name="name"/> of <paramref name="queue"/>; null when there is none.</summary>
    public Task<RecurringJob?> GetRecurringAsync(string queue, string name)
    {
        RecurringRules.ValidateName(name);
        var q = _keys.Queue(queue);
        return CallAsync($"read recurring job '{name}' of queue '{queue}'", async db =>
        {
            var batch = db.CreateBatch();
            var score = batch.SortedSetScoreAsync(q.Recurring, name);
            var fields = batch.HashGetAllAsync(q.RecurringSchedule(name));
            batch.Execute();
            return await score.ConfigureAwait(false) is { } s ? await ReadAsync(queue, name, s, fields).ConfigureAwait(false) : null;
        });
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
        var found = new List<RecurringJob>(reads.Count);
        foreach (var (name, score, fields) in reads)
            if (await ReadAsync(queue, name, score, fields).ConfigureAwait(false) is { } schedule) found.Add(schedule);
        return found;
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
                NextRunAt = double.IsFinite(score) ? RecurringJob.At((long)Math.Clamp(score, -1e15, 1e15)) : null,
            };
        }
    }

    /// <summary>Removes the recurring schedule <paramref name="name"/>; the jobs it made stay. Returns false when there was none.</summary>
    public async Task<bool> RemoveRecurringAsync(string queue, string name)
    {
        RecurringRules.ValidateName(name);
        var q = _keys.Queue(queue);
        return (long)await Db.ScriptEvaluateAsync(ProducerScripts.RemoveRecurring, [q.RecurringSchedule(name), q.Recurring], [name])
            .ConfigureAwait(false) == 1;
    }

    /// <summary>
    /// Pauses the recurring schedule <paramref name="name"/> (django-celery-beat's <c>enabled = False</c>, sidekiq-cron's
    /// disable): no node fires it until <see cref="ResumeRecurringAsync"/>, and writing it again with
    /// <see cref="AddOrUpdateRecurringAsync"/> (an app declaring its schedules at start) leaves it paused. Returns false
    /// when it was paused already; throws <see cref="KeyNotFoundException"/> when there is no such schedule.
    /// </summary>
    public async Task<bool> PauseRecurringAsync(string queue, string name)
    {
        RecurringRules.ValidateName(name);
        var q = _keys.Queue(queue);
        var paused = (long)await Db.ScriptEvaluateAsync(ProducerScripts.PauseRecurring, [q.RecurringSchedule(name), q.Recurring],
            [name, _options.Clock.GetUtcNow().ToUnixTimeMilliseconds()]).ConfigureAwait(false);
        return paused == 0 ? throw NoSchedule(queue, name) : paused == 1;
    }

    /// <summary>
    /// Resumes the paused schedule <paramref name="name"/> from its cron's next occurrence after now: the runs it missed
    /// while paused are skipped, not made up. Returns false when it was not paused; throws
    /// <see cref="KeyNotFoundException"/> when there is no such schedule, and <see cref="InvalidOperationException"/>
    /// when a node stopped it (<see cref="RecurringJob.Error"/>: write it again with
    /// <see cref="AddOrUpdateRecurringAsync"/>, which leaves it paused, then resume it).
    /// </summary>
    public async Task<bool> ResumeRecurringAsync(string queue, string name)
    {
        var q = _keys.Queue(queue);
        for (var attempt = 1; ; attempt++)
        {
            var schedule = await GetRecurringAsync(queue, name).ConfigureAwait(false) ?? throw NoSchedule(queue, name);
            if (schedule.Error is { } error) throw Stopped(name, error);
            if (schedule.PausedAt is null) return false;
            var next = RecurringRules.NextRunMs(RecurringRules.ParseCron(schedule.Cron), RecurringRules.FindTimeZone(schedule.TimeZone),
                _options.Clock.GetUtcNow().ToUnixTimeMilliseconds());
            RedisValue score = next is { } n ? n : "inf"; // a cron with no occurrence left resumes to "runs no more"
            var resumed = (long)await Db.ScriptEvaluateAsync(ProducerScripts.ResumeRecurring, [q.RecurringSchedule(name), q.Recurring],
                [name, score, schedule.Cron, schedule.TimeZone]).ConfigureAwait(false);
            switch (resumed)
            {
                case 0: throw NoSchedule(queue, name);
                case 3: throw Stopped(name, (await GetRecurringAsync(queue, name).ConfigureAwait(false))?.Error ?? "(its error was cleared meanwhile)");
                case 4 when attempt < 5: continue; // rewritten with another cron meanwhile: the next run from the new one
                case 4: throw new InvalidOperationException($"Recurring job '{name}' kept being rewritten while it was resumed; try again.");
                default: return resumed == 1;
            }
        }
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
        var schedule = await GetRecurringAsync(queue, name).ConfigureAwait(false) ?? throw NoSchedule(queue, name);
        var template = schedule.Template
            ?? throw new InvalidOperationException($"Recurring job '{name}' has no readable job template: write it again with AddOrUpdateRecurringAsync.");
        var now = _options.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        return await EnqueueAsync(template with { Id = JobIds.New(queue), Queue = queue, EnqueuedAt = now, TraceParent = null, TraceState = null }, ct).ConfigureAwait(false);
    }
}
