using System.Text;
using System.Text.Json;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Ingress;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.Recurring;

/// <summary>A schedule a node stopped because it could not read or fire it, and why.</summary>
public sealed record StoppedSchedule(string Queue, string Name, string Error);

/// <summary>What one look at a queue's schedules did: schedules stopped, when the soonest run is due, and whether more were due than one look takes.</summary>
public sealed record FireRound(IReadOnlyList<StoppedSchedule> Stopped, long? NextRunMs, bool MoreDue)
{
    public static FireRound Combine(IEnumerable<FireRound> rounds)
    {
        var all = rounds.ToList();
        return new(all.SelectMany(r => r.Stopped).ToList(), all.Select(r => r.NextRunMs).Where(n => n is not null).Min(), all.Any(r => r.MoreDue));
    }
}

/// <summary>
/// The Redis side of one queue's recurring schedules: reads the runs that are due, works out each schedule's next run
/// (cron and time zone, with Cronos) and fires each run with one script call. Runs missed while nobody fired them
/// make one job: the next run is the first occurrence after now. A schedule it cannot read or fire is stopped with the
/// reason, so it neither blocks the queue's other schedules nor fires a job that would be dead-lettered at every run.
/// </summary>
public sealed class RecurringFirer(Func<IConnectionMultiplexer> redis, RedisKeys keys, string queue, string node, int maxPayloadBytes,
    TimeProvider? clock = null)
{
    /// <summary>Most runs fired in one call; more due are fired by the next call at once.</summary>
    public const int MaxPerCall = 100;
    private readonly QueueKeys _q = keys.Queue(queue);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    /// <summary>
    /// Fires the due runs. Throws when Redis cannot be reached or refuses what is not one schedule's fault; anything wrong
    /// with one schedule stops that one.
    /// </summary>
    public async Task<FireRound> FireDueAsync(CancellationToken ct)
    {
        var db = redis().GetDatabase();
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        // The soonest first: when nothing is due (most looks), that one read is the whole look.
        var soonest = await db.SortedSetRangeByRankWithScoresAsync(_q.Recurring, 0, 0).ConfigureAwait(false);
        if (soonest.Length == 0 || soonest[0].Score > now) return new FireRound([], NextRun(soonest), false);
        var due = await db.SortedSetRangeByScoreWithScoresAsync(_q.Recurring, double.NegativeInfinity, now, take: MaxPerCall).ConfigureAwait(false);
        var batch = db.CreateBatch();
        var reads = due.Select(d => (Name: (string)d.Element!, d.Score,
            Fields: batch.HashGetAsync(_q.RecurringSchedule((string)d.Element!), [(RedisValue)"cron", "time_zone", "template", "version"]))).ToList();
        batch.Execute();
        // The runs that can fire go in one round trip; those that cannot are stopped after, each saying why.
        var fires = new List<(string Name, double Score, RedisValue Version, Task<RedisResult> Fired)>();
        var faults = new List<(string Name, double Score, RedisValue Version, string Error)>();
        var firing = db.CreateBatch();
        foreach (var (name, score, read) in reads)
        {
            ct.ThrowIfCancellationRequested();
            RedisValue version = "";
            try
            {
                var fields = await read.ConfigureAwait(false);
                version = fields[3].IsNull ? "" : fields[3];
                if (FireCall(name, score, now, fields, out var error) is { } call)
                    fires.Add((name, score, version, firing.ScriptEvaluateAsync(RecurringScripts.Fire, call.Keys, call.Values)));
                else faults.Add((name, score, version, error!));
            }
            catch (RedisServerException ex) when (IsWrongType(ex))
            {
                faults.Add((name, score, version, RefusedBy(ex))); // a key of the wrong type written by hand
            }
        }
        firing.Execute();
        try { await Task.WhenAll(fires.Select(f => f.Fired)).ConfigureAwait(false); }
        catch (Exception) { } // each fire's own error is read below: none left unobserved
        foreach (var (name, score, version, fired) in fires)
        {
            try { await fired.ConfigureAwait(false); }
            catch (RedisServerException ex) when (IsWrongType(ex))
            {
                faults.Add((name, score, version, RefusedBy(ex)));
            }
        }
        var stopped = new List<StoppedSchedule>();
        foreach (var (name, score, version, fault) in faults)
        {
            var error = $"{fault} (found by node {node})";
            if ((long)await db.ScriptEvaluateAsync(RecurringScripts.Stop, [_q.Recurring, _q.RecurringSchedule(name)], [name, score, error, version])
                    .ConfigureAwait(false) == 1)
                stopped.Add(new StoppedSchedule(queue, name, error));
        }
        var after = await db.SortedSetRangeByRankWithScoresAsync(_q.Recurring, 0, 0).ConfigureAwait(false);
        return new FireRound(stopped, NextRun(after), due.Length == MaxPerCall);
    }

    private static string RefusedBy(Exception ex) => $"Redis refused it: {ex.Message}";

    /// <summary>
    /// The one refusal that is the schedule's own (a key of it written by hand with the wrong type). Any other (OOM, BUSY,
    /// READONLY after a failover) is Redis's state, passing, and would fail every run of the batch alike: the round
    /// throws and is tried again, rather than stopping every schedule it touched.
    /// </summary>
    private static bool IsWrongType(RedisServerException ex) => ex.Message.StartsWith("WRONGTYPE", StringComparison.Ordinal);

    /// <summary>The soonest schedule's run in unix ms (clamped: a score written by hand may be anything); null for none or none finite.</summary>
    private static long? NextRun(SortedSetEntry[] soonest) =>
        soonest.Length == 1 && double.IsFinite(soonest[0].Score) ? (long)Math.Clamp(soonest[0].Score, 0, 1e15) : null;

    /// <summary>The Fire script's keys and arguments for one due run; null (with the reason) when the schedule cannot be read or its job would not run.</summary>
    internal (RedisKey[] Keys, RedisValue[] Values)? FireCall(string name, double score, long now, RedisValue[] fields, out string? error)
    {
        error = null;
        try
        {
            RecurringRules.ValidateName(name);
            // Runs are whole unix ms: a score written by hand that is not one could never be matched by the Fire script.
            if (!double.IsFinite(score) || score != Math.Floor(score) || Math.Abs(score) > 1e15)
                throw new ArgumentException($"Its next run ({score}) is not a whole number of unix milliseconds.");
            var runMs = (long)score;
            if (fields[0].IsNull || fields[2].IsNull) throw new ArgumentException("The schedule has no cron expression or no job template.");
            var cron = RecurringRules.ParseCron((string)fields[0]!);
            var zone = RecurringRules.FindTimeZone(fields[1].IsNull ? RecurringRules.DefaultTimeZone : (string)fields[1]!);
            var template = ProtocolJson.DeserializeEnvelope((string)fields[2]!) ?? throw new ArgumentException("The job template is null.");
            var id = RecurringRules.JobId(queue, name, runMs);
            var envelope = template with
            {
                Id = id, Queue = queue, EnqueuedAt = now, NotBefore = null, Attempt = 0, IdempotencyKey = null,
                TraceParent = null, TraceState = null, // each run a trace of its own, even from a template written with one
            };
            var json = ProtocolJson.Serialize(envelope);
            // What the node taking the job would refuse (size, version, options) is refused here, once, not at every run.
            var taken = new TakenJob(id, Encoding.UTF8.GetBytes(json), 0);
            if (EnvelopeCheck.Parse(taken, queue, maxPayloadBytes) is null)
                throw new ArgumentException("Its job would be dead-lettered: " + ((JobOutcome.DeadLettered)EnvelopeCheck.Reject(taken, queue, maxPayloadBytes)).Error.Message);
            var readyScore = JobIds.ReadyScore(envelope.Priority, now);
            RedisValue nextRun = RecurringRules.NextRunMs(cron, zone, Math.Max(now, runMs)) is { } n ? n : "inf";
            return ([_q.Recurring, _q.RecurringSchedule(name), _q.Job(id), _q.Ready],
                [name, runMs, nextRun, id, json, now, readyScore, _q.WakeChannel, envelope.Task, _q.EventsChannel,
                 envelope.MaxAttempts?.ToString() ?? "", fields[3].IsNull ? "" : fields[3]]);
        }
        catch (Exception ex) when (ex is ArgumentException or JsonException)
        {
            error = ex.Message;
            return null;
        }
    }
}
