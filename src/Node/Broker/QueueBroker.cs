using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Node.Broker;

/// <summary>A leased job as Redis holds it: the envelope stays UTF-8 bytes (parsed once, without a detour through UTF-16).</summary>
public readonly record struct TakenJob(string Id, byte[] Envelope, int Attempt, string? Phase = null);

/// <summary>
/// What one take leased (<see cref="Jobs"/>), how many ids it removed from the queue (<see cref="Popped"/>), and the ids
/// it found with a key that is not a job hash (<see cref="NotJobs"/>: written by hand; they left the queue, their keys
/// untouched).
/// </summary>
public sealed record TakenBatch(IReadOnlyList<TakenJob> Jobs, int Popped, IReadOnlyList<string>? NotJobs = null)
{
    public static readonly TakenBatch Empty = new([], 0);
}

/// <summary>What a Complete call recorded: how many outcomes, and which child jobs ended (for their parents' coordinators).</summary>
public sealed record CompleteResult(int Recorded, IReadOnlyList<FinishedChild> FinishedChildren)
{
    public static readonly CompleteResult None = new(0, []);
}

/// <summary>A child job ended (succeeded, dead-lettered or cancelled): its parent may be able to go on.</summary>
public sealed record FinishedChild(string ParentId, string ChildId);

/// <summary>A child's state as its parent's coordinator reads it: the state, and its result or error JSON.</summary>
public sealed record ChildState(string ChildId, string? State, string? ResultJson, string? ErrorJson);

/// <summary>A waiting parent as Redis has it: its state, how many children it split into, and whether it collects failures.</summary>
public sealed record SplitParent(string? State, int ChildrenTotal, bool CollectFailures, long SplitAt);

/// <summary>A child job to enqueue under a splitting parent: its id, envelope and ready score.</summary>
public sealed record ChildEnvelope(string Id, string EnvelopeJson, double ReadyScore);

/// <summary>The node's side of one queue in Redis: take, record, renew and reclaim, each one batched script call.</summary>
public sealed class QueueBroker
{
    private readonly IConnectionMultiplexer _redis;
    private readonly TimeProvider _clock;
    private readonly string _node;
    private readonly BrokerSettings _settings;

    public QueueBroker(IConnectionMultiplexer redis, RedisKeys keys, string queue, string node, BrokerSettings settings, TimeProvider? clock = null)
    {
        _redis = redis;
        Keys = keys.Queue(queue);
        _node = node;
        _settings = settings;
        _clock = clock ?? TimeProvider.System;
    }

    public QueueKeys Keys { get; }

    private IDatabase Db => _redis.GetDatabase();
    private long Now => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Leases up to <paramref name="max"/> ready jobs (promoting due delayed jobs first). <see cref="TakenBatch.Popped"/>
    /// counts the ids that left the queue, jobs ended by the script (cancelled, or without a record) included.
    /// </summary>
    public async Task<TakenBatch> TakeAsync(int max)
    {
        var now = Now;
        var missing = ProtocolJson.Serialize(new JobError
        {
            Type = "MissingJobRecord",
            Message = "The queue held this id but Redis has no job hash for it (it expired or a producer wrote only the queue entry).",
            Node = _node,
            At = now,
        });
        var raw = (RedisResult[]?)await Db.ScriptEvaluateAsync(NodeScripts.Take,
            [Keys.Ready, Keys.Scheduled, Keys.Leased, Keys.Dead, Keys.Stats],
            [Keys.JobPrefix, now, max, now + (long)_settings.LeaseDuration.TotalMilliseconds, _node, Keys.EventsChannel, missing,
             (long)_settings.ResultTtl.TotalMilliseconds, Keys.WakeChannel])
            .ConfigureAwait(false);
        if (raw is null || raw.Length == 0) return TakenBatch.Empty;
        var jobs = new List<TakenJob>((raw.Length - 1) / 4);
        List<string>? notJobs = null;
        for (var at = 1; at + 3 < raw.Length; at += 4)
        {
            if (raw[at + 1].IsNull)
            {
                (notJobs ??= []).Add((string)raw[at]!);
                continue;
            }
            var phase = (string?)raw[at + 3];
            jobs.Add(new TakenJob((string)raw[at]!, (byte[])raw[at + 1]!, (int)raw[at + 2], string.IsNullOrEmpty(phase) ? null : phase));
        }
        return new TakenBatch(jobs, (int)raw[0], notJobs);
    }

    /// <summary>Records a batch of outcomes; returns how many were still running here and got recorded, and the child jobs that ended.</summary>
    public async Task<CompleteResult> CompleteAsync(IReadOnlyCollection<JobOutcome> outcomes)
    {
        if (outcomes.Count == 0) return CompleteResult.None;
        var args = new RedisValue[6 + outcomes.Count * 5];
        args[0] = Keys.JobPrefix;
        args[1] = Now;
        args[2] = (long)_settings.ResultTtl.TotalMilliseconds;
        args[3] = Keys.EventsChannel;
        args[4] = Keys.WakeChannel;
        args[5] = _node;
        var i = 6;
        foreach (var o in outcomes)
        {
            args[i++] = o.JobId;
            args[i++] = o.Code.ToString();
            args[i++] = o.Payload;
            args[i++] = o.DueAt;
            args[i++] = o.StartedAt is { } started ? started : RedisValue.EmptyString;
        }
        var raw = (RedisResult[])(await Db.ScriptEvaluateAsync(NodeScripts.Complete,
            [Keys.Leased, Keys.Scheduled, Keys.Dead, Keys.Ready, Keys.Stats], args).ConfigureAwait(false))!;
        if (raw.Length == 1) return new CompleteResult((int)raw[0], []);
        var children = new FinishedChild[(raw.Length - 1) / 2];
        for (var c = 0; c < children.Length; c++) children[c] = new FinishedChild((string)raw[1 + c * 2]!, (string)raw[2 + c * 2]!);
        return new CompleteResult((int)raw[0], children);
    }

    /// <summary>Enqueues a running job's children and makes it wait for them; returns the number of children, -1 when the job no longer runs here.</summary>
    public async Task<int> SplitAsync(string parentId, IReadOnlyList<ChildEnvelope> children, bool collectFailures)
    {
        var args = new RedisValue[6 + children.Count * 3];
        args[0] = Keys.JobPrefix;
        args[1] = parentId;
        args[2] = Now;
        args[3] = collectFailures ? "collect" : "fail";
        args[4] = Keys.WakeChannel;
        args[5] = Keys.EventsChannel;
        var i = 6;
        foreach (var child in children)
        {
            args[i++] = child.Id;
            args[i++] = child.EnvelopeJson;
            args[i++] = child.ReadyScore;
        }
        return (int)await Db.ScriptEvaluateAsync(NodeScripts.Split, [Keys.Job(parentId), Keys.Leased, Keys.Ready, Keys.Waiting], args)
            .ConfigureAwait(false);
    }

    /// <summary>The split parents of this queue still waiting for their children.</summary>
    public async Task<IReadOnlyList<string>> WaitingParentsAsync() =>
        (await Db.SetMembersAsync(Keys.Waiting).ConfigureAwait(false)).Select(v => (string)v!).ToList();

    /// <summary>A split parent's state, number of children and failure policy.</summary>
    public async Task<SplitParent> ReadSplitParentAsync(string parentId)
    {
        var v = await Db.HashGetAsync(Keys.Job(parentId), [JobHashFields.State, JobHashFields.ChildrenTotal, "child_policy", "split_at"]).ConfigureAwait(false);
        return new SplitParent((string?)v[0], v[1].TryParse(out int total) ? total : 0, (string?)v[2] == "collect",
            v[3].TryParse(out long splitAt) ? splitAt : 0);
    }

    /// <summary>Children's states, results and errors, in one pipelined round trip.</summary>
    public async Task<IReadOnlyList<ChildState>> ReadChildStatesAsync(IReadOnlyList<string> childIds)
    {
        var batch = Db.CreateBatch();
        var reads = childIds.Select(id => batch.HashGetAsync(Keys.Job(id), [JobHashFields.State, "result", "error"])).ToList();
        batch.Execute();
        var values = await Task.WhenAll(reads).ConfigureAwait(false);
        return childIds.Select((id, i) => new ChildState(id, (string?)values[i][0], (string?)values[i][1], (string?)values[i][2])).ToList();
    }

    /// <summary>Shows how many children a waiting parent still waits for (only while it waits).</summary>
    public Task SetChildrenPendingAsync(string parentId, int pending) =>
        Db.ScriptEvaluateAsync("if redis.call('HGET', KEYS[1], 'state') == 'waiting' then redis.call('HSET', KEYS[1], 'children_pending', ARGV[1]) end",
            [Keys.Job(parentId), Keys.Ready], [pending]);

    /// <summary>Takes a parent that no longer waits (gone, or ended) out of the waiting set, so no coordinator starts for it again.</summary>
    public Task ForgetWaitingAsync(string parentId) =>
        Db.ScriptEvaluateAsync("if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then redis.call('SREM', KEYS[3], ARGV[1]) end",
            [Keys.Job(parentId), Keys.Ready, Keys.Waiting], [parentId]);

    /// <summary>
    /// Ends a parent's wait: queued for its reduce step with the children's outcomes (<paramref name="error"/> null), or
    /// failed with <paramref name="error"/>. Returns null when the parent no longer waited; on failure, the grandparent
    /// id (empty when none) whose coordinator must hear of it.
    /// </summary>
    public async Task<SplitFinish> FinishSplitAsync(string parentId, IReadOnlyList<ChildResult> outcomes, JobError? error)
    {
        var args = new List<RedisValue>(7 + outcomes.Count * 2)
        {
            parentId, Now, (long)_settings.ResultTtl.TotalMilliseconds, Keys.EventsChannel, Keys.WakeChannel,
            error is null ? "reduce" : "fail", error is null ? "" : ProtocolJson.Serialize(error),
        };
        if (error is null)
            foreach (var o in outcomes)
            {
                args.Add((o.Succeeded ? "child:" : "child_error:") + o.JobId);
                args.Add(o.Json);
            }
        var raw = (RedisResult[])(await Db.ScriptEvaluateAsync(NodeScripts.FinishSplit, [Keys.Job(parentId), Keys.Ready, Keys.Waiting, Keys.Stats],
            args.ToArray()).ConfigureAwait(false))!;
        return (int)raw[0] switch
        {
            0 => SplitFinish.NoLongerWaiting,
            1 => SplitFinish.Reduced,
            _ => new SplitFinish(true, true, (string?)raw[1] is { Length: > 0 } grandparent ? grandparent : null),
        };
    }

    /// <summary>A waiting parent's children outcomes, in split order (children ids end in <c>.&lt;index&gt;</c>).</summary>
    public async Task<IReadOnlyList<ChildResult>> ReadChildrenAsync(string parentId)
    {
        var fields = await Db.HashGetAllAsync(Keys.Job(parentId)).ConfigureAwait(false);
        var children = new List<(int Index, ChildResult Result)>();
        foreach (var field in fields)
        {
            var name = (string)field.Name!;
            var succeeded = name.StartsWith("child:", StringComparison.Ordinal);
            if (!succeeded && !name.StartsWith("child_error:", StringComparison.Ordinal)) continue;
            var id = name[(name.IndexOf(':') + 1)..];
            var index = int.TryParse(id.AsSpan(id.LastIndexOf('.') + 1), out var n) ? n : int.MaxValue;
            children.Add((index, new ChildResult(id, succeeded, (string)field.Value!)));
        }
        return children.OrderBy(c => c.Index).Select(c => c.Result).ToList();
    }

    /// <summary>Records a running job's progress and publishes it (<c>id progress percent message</c>).</summary>
    public async Task ReportProgressAsync(string jobId, int percent, string? message)
    {
        var db = Db;
        var tx = db.CreateTransaction();
        _ = tx.HashSetAsync(Keys.Job(jobId), [new(JobHashFields.ProgressPercent, percent), new(JobHashFields.ProgressMessage, message ?? "")]);
        _ = tx.PublishAsync(RedisChannel.Literal(Keys.EventsChannel), $"{jobId} progress {percent} {message}".TrimEnd());
        await tx.ExecuteAsync().ConfigureAwait(false);
    }

    /// <summary>Extends the leases of jobs this node still runs; returns how many were still leased.</summary>
    public async Task<int> RenewAsync(IReadOnlyCollection<string> jobIds)
    {
        if (jobIds.Count == 0) return 0;
        var args = new RedisValue[1 + jobIds.Count];
        args[0] = Now + (long)_settings.LeaseDuration.TotalMilliseconds;
        var i = 1;
        foreach (var id in jobIds) args[i++] = id;
        return (int)await Db.ScriptEvaluateAsync(NodeScripts.Renew, [Keys.Leased], args).ConfigureAwait(false);
    }

    /// <summary>Puts jobs with expired leases back in the ready set; returns how many.</summary>
    public Task<int> ReclaimExpiredAsync(int limit = 1000) => ReclaimAsync("expired", [limit]);

    /// <summary>Puts these jobs (whose worker node is gone) back in the ready set; returns how many.</summary>
    public Task<int> ReclaimAsync(IReadOnlyCollection<string> jobIds) =>
        jobIds.Count == 0 ? Task.FromResult(0) : ReclaimAsync("ids", jobIds.Select(id => (RedisValue)id).ToArray());

    private async Task<int> ReclaimAsync(string mode, RedisValue[] tail)
    {
        var now = Now;
        var lostError = ProtocolJson.Serialize(new JobError
        {
            Type = "DeliveryLost",
            Message = $"The job's node was lost while running it {_settings.MaxLostDeliveries} times; it may be what crashes its node.",
            At = now,
        });
        RedisValue[] args = [Keys.JobPrefix, now, Keys.WakeChannel, Keys.EventsChannel, _settings.MaxLostDeliveries, lostError,
            (long)_settings.ResultTtl.TotalMilliseconds, mode, .. tail];
        return (int)await Db.ScriptEvaluateAsync(NodeScripts.Reclaim, [Keys.Leased, Keys.Ready, Keys.Dead, Keys.Stats], args)
            .ConfigureAwait(false);
    }
}

/// <summary>How FinishSplit went: whether the parent still waited, whether it failed, and its own parent if it failed.</summary>
public sealed record SplitFinish(bool WasWaiting, bool Failed, string? GrandparentId)
{
    public static readonly SplitFinish NoLongerWaiting = new(false, false, null);
    public static readonly SplitFinish Reduced = new(true, false, null);
}

public sealed record BrokerSettings
{
    /// <summary>How long a taken job stays leased without renewal before another node may take it.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(8);
    public TimeSpan ResultTtl { get; init; } = JobDefaults.ResultTtl;
    /// <summary>A job whose node is lost this many times is dead-lettered instead of requeued.</summary>
    public int MaxLostDeliveries { get; init; } = 5;
}
