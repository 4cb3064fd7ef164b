using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>
/// The producer client: enqueue jobs, read their state, wait for them and cancel them. Thread-safe; keep one per app.
/// </summary>
public sealed partial class JobClient : IAsyncDisposable
{
    private readonly IConnectionMultiplexer _redis;
    private readonly bool _ownsConnection;
    private readonly RedisKeys _keys;
    private readonly JobClientOptions _options;
    private readonly JobWaiters _waiters;
    private readonly EnqueueRetry _retry;
    private readonly RedisRetry _calls;

    public JobClient(IConnectionMultiplexer redis, JobClientOptions? options = null)
        : this(redis, options ?? new JobClientOptions(), ownsConnection: false) { }

    private JobClient(IConnectionMultiplexer redis, JobClientOptions options, bool ownsConnection)
    {
        options.Validate();
        _redis = redis;
        _options = options;
        _ownsConnection = ownsConnection;
        _keys = new RedisKeys(options.KeyPrefix);
        // A wait rides outages out by itself (it reads again when Redis answers), so its reads are tried once.
        _waiters = new JobWaiters(redis, ReadOnceAsync);
        _retry = new EnqueueRetry(options.EnqueueRetryFor);
        _calls = new RedisRetry(options.CallRetryFor);
    }

    /// <summary>
    /// Connects to <paramref name="redisUrl"/> and prepares the client (<see cref="PrepareAsync"/>); the client owns and
    /// disposes that connection. A Redis still loading its dataset after a restart is waited for, until
    /// <paramref name="cancellationToken"/>, which also ends a connect attempt under way at once.
    /// </summary>
    public static async Task<JobClient> ConnectAsync(string redisUrl, JobClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new JobClientOptions();
        var client = new JobClient(await RedisConnection.ConnectAsync(ConnectionOptions(redisUrl, options), redisUrl,
                cancellationToken: cancellationToken).ConfigureAwait(false),
            options, ownsConnection: true);
        try
        {
            await client.PrepareAsync().ConfigureAwait(false);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false); // no connection left reconnecting behind a failed call
            throw;
        }
        return client;
    }

    /// <summary>
    /// The StackExchange.Redis configuration <see cref="ConnectAsync"/> connects with: <paramref name="redisUrl"/>'s
    /// settings, the client name <c>clusterjobs-client</c>, and <see cref="JobClientOptions.RedisIo"/>'s threads.
    /// </summary>
    public static ConfigurationOptions ConnectionOptions(string redisUrl, JobClientOptions options) =>
        RedisConnection.Options(redisUrl, "clusterjobs-client", options.RedisIo);

    /// <summary>
    /// Readies the client for its first enqueue, which is often a web app's first request: the Enqueue script is loaded
    /// into Redis (so that call sends its hash, not its text) and the envelope serializer has run once, which took most of
    /// a first call's 60-90 ms here (docs/benchmarks.md). <see cref="ConnectAsync"/> calls it; call it at start-up for a
    /// client built on a connection of your own. Best-effort: a server that refuses <c>SCRIPT LOAD</c> (an ACL, say)
    /// still gets the script with the first call, as without it.
    /// </summary>
    public async Task PrepareAsync()
    {
        ProtocolJson.Serialize(new JobEnvelope { Id = JobIds.New("prepare"), Task = "prepare", Queue = "prepare", Args = EmptyArgs });
        foreach (var endpoint in _redis.GetEndPoints())
        {
            var server = _redis.GetServer(endpoint);
            if (!server.IsConnected || server.IsReplica) continue;
            try { await server.ScriptLoadAsync(ProducerScripts.Enqueue).ConfigureAwait(false); }
            catch (RedisServerException) { } // refused (NOPERM...): the first enqueue sends the script's text instead
        }
    }

    public RedisKeys Keys => _keys;

    /// <summary>
    /// Enqueues <paramref name="task"/> with <paramref name="args"/> (an object bound by name, or an array bound by
    /// position). The job record and its queue entry are written in one atomic script. Returns the job id; with an
    /// idempotency key that already has a job, returns that job's id and enqueues nothing.
    /// </summary>
    public async Task<string> EnqueueAsync(string task, object? args = null, EnqueueOptions? options = null, CancellationToken ct = default)
    {
        options = Checked(task, options);
        return await EnqueueAsync(NewEnvelope(task, args, options), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Enqueues one job of <paramref name="task"/> for each item of <paramref name="argsList"/>, all with
    /// <paramref name="options"/> (Sidekiq's <c>push_bulk</c>); returns their ids in the same order. As
    /// <see cref="EnqueueManyAsync(IEnumerable{JobRequest}, CancellationToken)"/>, but options that name one job
    /// (<see cref="EnqueueOptions.JobIdSuffix"/>, <see cref="EnqueueOptions.IdempotencyKey"/>) are refused: every job of
    /// the list would get the same.
    /// </summary>
    public Task<IReadOnlyList<string>> EnqueueManyAsync(string task, IEnumerable<object?> argsList, EnqueueOptions? options = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(argsList);
        options = Checked(task, options); // once for the list
        if (options.JobIdSuffix is not null || options.IdempotencyKey is not null)
            throw new ArgumentException("JobIdSuffix and IdempotencyKey name one job: give each job its own in a JobRequest.", nameof(options));
        return SendManyAsync(argsList.Select(args => NewEnvelope(task, args, options)), ct);
    }

    /// <summary>
    /// Enqueues <paramref name="jobs"/>, each with its own task, arguments and options, pipelined in one round trip
    /// instead of one each (BullMQ's <c>addBulk</c>); returns their ids in the same order (with an idempotency key that
    /// already has a job, that job's id). Every job is built and checked before any is sent, so a bad one (arguments over
    /// the payload limit, an invalid option) throws and enqueues nothing. Each job is written atomically, as by
    /// <see cref="EnqueueAsync(string, object?, EnqueueOptions?, CancellationToken)"/>, but the list is not one
    /// transaction: if the connection fails midway, some may have been enqueued.
    /// </summary>
    public Task<IReadOnlyList<string>> EnqueueManyAsync(IEnumerable<JobRequest> jobs, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        return SendManyAsync(jobs.Select(j => NewEnvelope(j.Task, j.Args, Checked(j.Task, j.Options))), ct);
    }

    /// <summary>Checks every envelope, then sends them all before awaiting any reply.</summary>
    private async Task<IReadOnlyList<string>> SendManyAsync(IEnumerable<JobEnvelope> envelopes, CancellationToken ct)
    {
        var built = envelopes.ToList();
        var send = ProducerTracing.StartSend(built);
        try
        {
            var calls = built.Select(e => EnqueueCall(ProducerTracing.Stamped(e, send))).ToList();
            ct.ThrowIfCancellationRequested();
            // not awaited one by one: StackExchange.Redis writes them back to back on the connection
            var sent = calls.Select(call => Send(call, ct)).ToList();
            return (await Task.WhenAll(sent).ConfigureAwait(false)).Select(EnqueuedId).ToList();
        }
        catch (Exception ex)
        {
            ProducerTracing.Failed(send, ex);
            throw;
        }
        finally
        {
            ProducerTracing.End(send);
        }
    }

    private static EnqueueOptions Checked(string task, EnqueueOptions? options)
    {
        if (string.IsNullOrWhiteSpace(task)) throw new ArgumentException("The task name is empty.", nameof(task));
        options ??= new EnqueueOptions();
        options.Validate();
        return options;
    }

    private JobEnvelope NewEnvelope(string task, object? args, EnqueueOptions options)
    {
        var now = _options.Clock.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        long? notBefore = options.RunAt?.ToUnixTimeMilliseconds() ?? (options.Countdown is { } c ? nowMs + (long)c.TotalMilliseconds : null);
        var id = options.JobIdSuffix is null ? JobIds.New(options.Queue) : $"{options.Queue}:{options.JobIdSuffix}";
        return new JobEnvelope
        {
            Id = id,
            Task = task,
            Queue = options.Queue,
            Args = args switch
            {
                null => EmptyArgs,
                JsonElement e => e,
                _ => JsonSerializer.SerializeToElement(args, args.GetType(), _options.ArgumentJson),
            },
            Priority = options.Priority,
            EnqueuedAt = nowMs,
            NotBefore = notBefore,
            MaxAttempts = options.MaxAttempts,
            BackoffMs = (long?)options.Backoff?.TotalMilliseconds,
            BackoffMaxMs = (long?)options.BackoffMax?.TotalMilliseconds,
            SoftTimeoutMs = (long?)options.SoftTimeout?.TotalMilliseconds,
            HardTimeoutMs = (long?)options.HardTimeout?.TotalMilliseconds,
            ParentId = options.ParentId,
            RootId = options.RootId ?? options.ParentId,
            IdempotencyKey = options.IdempotencyKey,
        };
    }

    /// <summary>Enqueues a ready-made envelope (after validating it as a node would).</summary>
    public async Task<string> EnqueueAsync(JobEnvelope envelope, CancellationToken ct = default)
    {
        var send = ProducerTracing.StartSend(envelope);
        try
        {
            var call = EnqueueCall(ProducerTracing.Stamped(envelope, send));
            ct.ThrowIfCancellationRequested();
            return EnqueuedId(await Send(call, ct).ConfigureAwait(false));
        }
        catch (Exception ex)
        {
            ProducerTracing.Failed(send, ex);
            throw;
        }
        finally
        {
            ProducerTracing.End(send);
        }
    }

    /// <summary>The Enqueue script's keys and arguments for <paramref name="envelope"/>, checked as a node would check it.</summary>
    private (RedisKey[] Keys, RedisValue[] Values) EnqueueCall(JobEnvelope envelope)
    {
        if (envelope.Args.ValueKind == JsonValueKind.Undefined) envelope = envelope with { Args = EmptyArgs };
        if (JobEnvelopeRules.Problem(envelope) is { } problem) throw new ArgumentException(problem, nameof(envelope));
        var json = ProtocolJson.Serialize(envelope);
        var size = Encoding.UTF8.GetByteCount(json);
        if (size > _options.MaxPayloadBytes) throw new PayloadTooLargeException(size, _options.MaxPayloadBytes);
        var q = _keys.Queue(envelope.Queue);
        if (JobIds.QueueOf(envelope.Id) != envelope.Queue)
            throw new ArgumentException($"Job id '{envelope.Id}' does not belong to queue '{envelope.Queue}'.", nameof(envelope));
        var idem = envelope.IdempotencyKey;
        return ([q.Job(envelope.Id), q.Ready, q.Scheduled, idem is null ? q.Job(envelope.Id) : q.Idempotency(idem)],
            [
                envelope.Id, json, envelope.EnqueuedAt, JobIds.ReadyScore(envelope.Priority, envelope.EnqueuedAt),
                envelope.NotBefore ?? 0, (long)_options.IdempotencyTtl.TotalMilliseconds, q.WakeChannel,
                idem is null ? "0" : "1", envelope.MaxAttempts?.ToString() ?? "", envelope.Task, q.EventsChannel,
            ]);
    }

    private Task<RedisResult> Send((RedisKey[] Keys, RedisValue[] Values) call, CancellationToken ct) =>
        _retry.SendAsync(Db, call, ct);

    /// <summary>The Enqueue script's reply: the job's id (with an idempotency key already taken, that key's job).</summary>
    private static string EnqueuedId(RedisResult result) => (string)((RedisResult[])result!)[1]!;

    /// <summary>
    /// The job's state, result, error, attempts and timestamps; null when no such job (or its record expired). Read
    /// again while Redis cannot be reached, for up to <see cref="JobClientOptions.CallRetryFor"/>; then throws
    /// <see cref="RedisUnavailableException"/> naming the job.
    /// </summary>
    public Task<JobInfo?> GetAsync(string jobId) => GetAsync(jobId, CancellationToken.None);

    /// <inheritdoc cref="GetAsync(string)"/>
    /// <param name="ct">Stops the tries while Redis cannot be reached.</param>
    public async Task<JobInfo?> GetAsync(string jobId, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var key = _keys.ForJob(jobId).Job(jobId);
        var fields = await CallAsync($"read job '{jobId}'", db => db.HashGetAllAsync(key), ct).ConfigureAwait(false);
        return fields.Length == 0 ? null : JobRecord.Read(jobId, fields);
    }

    /// <summary>One read of a job, for the waiters.</summary>
    private async Task<JobInfo?> ReadOnceAsync(string jobId)
    {
        var fields = await Db.HashGetAllAsync(_keys.ForJob(jobId).Job(jobId)).ConfigureAwait(false);
        return fields.Length == 0 ? null : JobRecord.Read(jobId, fields);
    }

    /// <summary>
    /// <paramref name="attempt"/>, given up on when <paramref name="ct"/> is cancelled; an attempt given up on may still
    /// fail later, and its error is read then, so that it is never left unobserved.
    /// </summary>
    private static Task<T> Abandonable<T>(Task<T> attempt, CancellationToken ct)
    {
        if (!ct.CanBeCanceled) return attempt;
        attempt.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return attempt.WaitAsync(ct);
    }

    /// <summary>
    /// A call that is safe to send again (a read, a write that changes nothing the second time), sent again while Redis
    /// cannot be reached for up to <see cref="JobClientOptions.CallRetryFor"/>; then a <see cref="RedisUnavailableException"/>
    /// saying what could not be done (<paramref name="what"/>: "list the dead letters of queue 'emails'").
    /// </summary>
    internal Task<T> CallAsync<T>(string what, Func<IDatabase, Task<T>> call, CancellationToken ct = default) =>
        CallAsync(what, (db, _) => call(db), ct);

    /// <summary>
    /// As <see cref="CallAsync{T}(string, Func{IDatabase, Task{T}}, CancellationToken)"/>; <paramref name="call"/> is
    /// also told whether this try sends the call again (an earlier try may have landed: a write reads its answer so).
    /// </summary>
    internal async Task<T> CallAsync<T>(string what, Func<IDatabase, bool, Task<T>> call, CancellationToken ct = default)
    {
        try { return await _calls.RunAsync((Db, call, ct), static (s, resent) => Abandonable(s.call(s.Db, resent), s.ct), ct).ConfigureAwait(false); }
        catch (Exception ex) when (RedisConnection.IsUnreachable(ex))
        {
            throw new RedisUnavailableException($"Could not {what}: Redis could not be reached ({ex.Message}); tried {_calls.Tried}.", ex) { Unreachable = true };
        }
    }

    /// <summary>
    /// Waits until the job reaches a terminal state (succeeded, failed, dead-lettered, cancelled) and returns it.
    /// Woken by Redis pub/sub, not by polling. Throws <see cref="TimeoutException"/> after <paramref name="timeout"/>.
    /// </summary>
    public Task<JobInfo> WaitAsync(string jobId, TimeSpan timeout, CancellationToken ct = default) =>
        timeout != Timeout.InfiniteTimeSpan && (timeout < TimeSpan.Zero || timeout > LongestWait)
            ? throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be from 0 to 49 days, or Timeout.InfiniteTimeSpan.")
            : _waiters.WaitAsync(jobId, _keys.ForJob(jobId).EventsChannel, timeout, ct);

    /// <summary>The longest wait a timer holds (uint.MaxValue - 1 ms, about 49.7 days).</summary>
    private static readonly TimeSpan LongestWait = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>
    /// Cancels a job from anywhere: one not started ends Cancelled at once; a running one has its handler's token
    /// cancelled by the node running it and ends Cancelled (wait for it with <see cref="WaitAsync"/>). Returns true when
    /// cancelled or cancellation was requested, false when the job had already finished; throws
    /// <see cref="KeyNotFoundException"/> when there is no such job. Sent again while Redis cannot be reached, for up to
    /// <see cref="JobClientOptions.CallRetryFor"/> (a try that finds the job cancelled answers true: an earlier try may
    /// have landed); then throws <see cref="RedisUnavailableException"/> naming the job.
    /// </summary>
    public Task<bool> CancelAsync(string jobId) => CancelAsync(jobId, CancellationToken.None);

    /// <inheritdoc cref="CancelAsync(string)"/>
    /// <param name="ct">Stops the tries while Redis cannot be reached (a try already sent may still land).</param>
    public async Task<bool> CancelAsync(string jobId, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested(); // a cancel sent with a token already cancelled would land unbeknown to the caller
        var q = _keys.ForJob(jobId);
        RedisKey[] keys = [q.Job(jobId), q.Ready, q.Scheduled, q.Stats];
        RedisValue[] args = [jobId, _options.Clock.GetUtcNow().ToUnixTimeMilliseconds(), (long)_options.RecordTtl.TotalMilliseconds, q.EventsChannel, q.CancelChannel];
        var (reply, resent) = await CallAsync($"cancel job '{jobId}'", async (db, resent) =>
            (await db.ScriptEvaluateAsync(ProducerScripts.Cancel, keys, args).ConfigureAwait(false), resent), ct).ConfigureAwait(false);
        if (reply.IsNull) throw new KeyNotFoundException($"No job '{jobId}'.");
        if (reply.Resp2Type == ResultType.Integer) return (long)reply is 1 or 2;
        return resent && (string?)reply == JobState.Cancelled.ToWire();
    }

    /// <summary>
    /// The jobs of <paramref name="jobIds"/> (all of one queue), read in one round trip, in the same order; those with no
    /// record (expired, never there) are left out. Read again while Redis cannot be reached, as <see cref="GetAsync(string)"/>.
    /// </summary>
    public Task<IReadOnlyList<JobInfo>> GetManyAsync(IReadOnlyList<string> jobIds) =>
        jobIds.Count == 0 ? Task.FromResult<IReadOnlyList<JobInfo>>([]) : CallAsync($"read {jobIds.Count} job(s)", db => ReadManyAsync(db, jobIds));

    private async Task<IReadOnlyList<JobInfo>> ReadManyAsync(IDatabase db, IReadOnlyList<string> jobIds)
    {
        var ids = jobIds.Where(JobIds.IsValid).ToList();
        var records = await db.SendAllAsync(ids, (batch, id) => batch.HashGetAllAsync(_keys.ForJob(id).Job(id))).ConfigureAwait(false);
        var jobs = new List<JobInfo>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
            if (records[i] is { Length: > 0 } entries) jobs.Add(JobRecord.Read(ids[i], entries));
        return jobs;
    }

    private IDatabase Db => _redis.GetDatabase();

    private static JsonElement EmptyArgs => JobEnvelope.EmptyArgs;

    public async ValueTask DisposeAsync()
    {
        await _waiters.DisposeAsync().ConfigureAwait(false);
        if (_ownsConnection) await _redis.DisposeAsync().ConfigureAwait(false);
    }
}
