using System.Text.Json;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.Recurring;

/// <summary>A schedule a node stopped because it could not read it, and why.</summary>
public sealed record StoppedSchedule(string Queue, string Name, string Error);

/// <summary>What one look at a queue's schedules did: runs fired, schedules stopped, and when the soonest run is due.</summary>
public sealed record FireRound(int Fired, IReadOnlyList<StoppedSchedule> Stopped, long? NextRunMs, bool MoreDue)
{
    public static FireRound Combine(IReadOnlyCollection<FireRound> rounds) => new(
        rounds.Sum(r => r.Fired), rounds.SelectMany(r => r.Stopped).ToList(),
        rounds.Select(r => r.NextRunMs).Where(n => n is not null).Min(), rounds.Any(r => r.MoreDue));
}

/// <summary>
/// The Redis side of one queue's recurring schedules: reads the runs that are due, works out each schedule's next run
/// (cron and time zone, with Cronos) and fires each run with one script call. Runs missed while nobody fired them
/// make one job: the next run is the first occurrence after now.
/// </summary>
public sealed class RecurringFirer(Func<IConnectionMultiplexer> redis, RedisKeys keys, string queue, TimeProvider? clock = null)
{
    /// <summary>Most runs fired in one call; more due are fired by the next call at once.</summary>
    public const int MaxPerCall = 100;
    private readonly QueueKeys _q = keys.Queue(queue);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    public string Queue => queue;

    public async Task<FireRound> FireDueAsync(CancellationToken ct)
    {
        var db = redis().GetDatabase();
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var due = await db.SortedSetRangeByScoreWithScoresAsync(_q.Recurring, double.NegativeInfinity, now, take: MaxPerCall).ConfigureAwait(false);
        var fired = 0;
        var stopped = new List<StoppedSchedule>();
        if (due.Length > 0)
        {
            var batch = db.CreateBatch();
            var reads = due.Select(d => (Name: (string)d.Element!, RunMs: (long)d.Score,
                Fields: batch.HashGetAsync(_q.RecurringSchedule((string)d.Element!), [(RedisValue)"cron", "time_zone", "template", "updated_at"]))).ToList();
            batch.Execute();
            foreach (var (name, runMs, read) in reads)
            {
                ct.ThrowIfCancellationRequested();
                var fields = await read.ConfigureAwait(false);
                var call = FireCall(name, runMs, now, fields, out var error);
                if (call is null)
                {
                    if ((long)await db.ScriptEvaluateAsync(RecurringScripts.Stop, [_q.Recurring, _q.RecurringSchedule(name)], [name, runMs, error])
                            .ConfigureAwait(false) == 1)
                        stopped.Add(new StoppedSchedule(queue, name, error!));
                    continue;
                }
                fired += (int)(long)await db.ScriptEvaluateAsync(RecurringScripts.Fire, call.Value.Keys, call.Value.Values).ConfigureAwait(false);
            }
        }
        var soonest = await db.SortedSetRangeByRankWithScoresAsync(_q.Recurring, 0, 0).ConfigureAwait(false);
        long? next = soonest.Length == 1 && double.IsFinite(soonest[0].Score) ? (long)soonest[0].Score : null;
        return new FireRound(fired, stopped, next, due.Length == MaxPerCall);
    }

    /// <summary>The Fire script's keys and arguments for one due run; null (with the reason) when the schedule cannot be read.</summary>
    private (RedisKey[] Keys, RedisValue[] Values)? FireCall(string name, long runMs, long now, RedisValue[] fields, out string? error)
    {
        error = null;
        try
        {
            if (fields[0].IsNull || fields[2].IsNull) throw new ArgumentException("The schedule has no cron expression or no job template.");
            var cron = RecurringRules.ParseCron((string)fields[0]!);
            var zone = RecurringRules.FindTimeZone(fields[1].IsNull ? RecurringRules.DefaultTimeZone : (string)fields[1]!);
            var template = ProtocolJson.DeserializeEnvelope((string)fields[2]!) ?? throw new ArgumentException("The job template is null.");
            if (string.IsNullOrWhiteSpace(template.Task)) throw new ArgumentException("The job template names no task.");
            var id = RecurringRules.JobId(queue, name, runMs);
            var envelope = template with { Id = id, Queue = queue, EnqueuedAt = now, NotBefore = null, Attempt = 0, IdempotencyKey = null };
            var score = JobIds.ReadyScore(envelope.Priority, now);
            RedisValue nextRun = RecurringRules.NextRunMs(cron, zone, Math.Max(now, runMs)) is { } n ? n : "inf";
            return ([_q.Recurring, _q.RecurringSchedule(name), _q.Job(id), _q.Ready],
                [name, runMs, nextRun, id, ProtocolJson.Serialize(envelope), now, score, _q.WakeChannel, envelope.Task, _q.EventsChannel,
                 envelope.MaxAttempts?.ToString() ?? "", fields[3].IsNull ? "" : fields[3]]);
        }
        catch (Exception ex) when (ex is ArgumentException or JsonException)
        {
            error = ex.Message;
            return null;
        }
    }
}
