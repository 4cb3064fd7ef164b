using System.Diagnostics;
using Polly;
using Polly.Retry;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>
/// Makes one Redis call again while Redis cannot be reached, for up to a budget from the first try (Celery's publish
/// retry, ioredis's offline queue for BullMQ): an enqueue for <see cref="JobClientOptions.EnqueueRetryFor"/>, the other
/// calls that are safe to send again (reads, a cancel, a replay, a schedule's write, removal, pause or resume) for
/// <see cref="JobClientOptions.CallRetryFor"/>. Only failures of reaching Redis are tried again; an error
/// Redis answers with (a wrong type, a script error) is thrown at once. The first try runs outside the retry pipeline.
/// </summary>
internal sealed class RedisRetry
{
    private static readonly ResiliencePropertyKey<long> FirstTry = new("clusterjobs.first-try");
    private static readonly ResiliencePropertyKey<bool> MayHaveLanded = new("clusterjobs.may-have-landed");
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(50);
    private readonly ResiliencePipeline _pipeline;

    public RedisRetry(TimeSpan budget)
    {
        Budget = budget;
        _pipeline = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && RedisConnection.IsUnreachable(ex) &&
                Stopwatch.GetElapsedTime(args.Context.Properties.GetValue(FirstTry, 0L)) < budget),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            Delay = FirstDelay * 2,
            MaxDelay = TimeSpan.FromSeconds(1),
            UseJitter = true,
            OnRetry = args =>
            {
                if (Reached(args.Outcome.Exception!)) args.Context.Properties.Set(MayHaveLanded, true);
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    public TimeSpan Budget { get; }

    /// <summary>"for 10 s", or "once" with no budget: for the error after the last try.</summary>
    public string Tried => Budget > TimeSpan.Zero ? $"for {Budget.TotalSeconds:0.#} s" : "once";

    /// <summary>
    /// Runs <paramref name="call"/> (given <paramref name="state"/>, and whether an earlier try may have landed: it was
    /// sent, and its reply lost) until it succeeds, fails otherwise than by not reaching Redis, or the budget is spent;
    /// then throws the last error.
    /// </summary>
    public async Task<T> RunAsync<TState, T>(TState state, Func<TState, bool, Task<T>> call, CancellationToken ct)
    {
        var firstTry = Stopwatch.GetTimestamp();
        bool reached;
        try
        {
            return await call(state, false).ConfigureAwait(false);
        }
        catch (Exception ex) when (RedisConnection.IsUnreachable(ex))
        {
            if (Stopwatch.GetElapsedTime(firstTry) >= Budget) throw;
            reached = Reached(ex);
        }
        return await RetryAsync(firstTry, state, call, ct, reached).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether a try that failed may have reached Redis and run there with its reply lost: StackExchange.Redis says when it
    /// was never written (no connection to write it to, or timed out in its backlog); anything else may have landed.
    /// </summary>
    internal static bool Reached(Exception ex) => ex switch
    {
        RedisConnectionException c => !NeverWritten(c.CommandStatus),
        RedisTimeoutException t => !NeverWritten(t.Commandstatus),
        _ => true,
    };

    private static bool NeverWritten(CommandStatus status) => status is CommandStatus.WaitingToBeSent or CommandStatus.WaitingInBacklog;

    /// <summary>
    /// The tries after a first one (begun at <paramref name="firstTry"/>) that could not reach Redis;
    /// <paramref name="firstMayHaveLanded"/>: that one was sent.
    /// </summary>
    public async Task<T> RetryAsync<TState, T>(long firstTry, TState state, Func<TState, bool, Task<T>> call, CancellationToken ct,
        bool firstMayHaveLanded = true)
    {
        await Task.Delay(FirstDelay, ct).ConfigureAwait(false);
        var context = ResilienceContextPool.Shared.Get(ct);
        context.Properties.Set(FirstTry, firstTry);
        context.Properties.Set(MayHaveLanded, firstMayHaveLanded);
        try
        {
            return await _pipeline.ExecuteAsync(static (c, s) => new ValueTask<T>(s.call(s.state, c.Properties.GetValue(MayHaveLanded, true))),
                context, (call, state)).ConfigureAwait(false);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }
}

/// <summary>One call of the Enqueue script, sent again while Redis cannot be reached (<see cref="RedisRetry"/>).</summary>
internal sealed class EnqueueRetry(TimeSpan budget)
{
    private readonly RedisRetry _retry = new(budget);

    /// <summary>
    /// Runs the Enqueue script <paramref name="call"/> on <paramref name="db"/>, again while Redis cannot be reached. The
    /// first try is awaited here, not through <see cref="RedisRetry.RunAsync"/>: one async frame per enqueue on the
    /// producer's hot path, as before the retry was shared.
    /// </summary>
    public async Task<RedisResult> SendAsync(IDatabase db, (RedisKey[] Keys, RedisValue[] Values) call, CancellationToken ct)
    {
        var firstTry = Stopwatch.GetTimestamp();
        try
        {
            return await Send(db, call).ConfigureAwait(false);
        }
        catch (Exception ex) when (RedisConnection.IsUnreachable(ex))
        {
            if (Stopwatch.GetElapsedTime(firstTry) >= _retry.Budget) throw Unavailable(call, ex);
        }
        try
        {
            return await _retry.RetryAsync(firstTry, (db, call), static (s, _) => Send(s.db, s.call), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (RedisConnection.IsUnreachable(ex))
        {
            throw Unavailable(call, ex);
        }
    }

    private static Task<RedisResult> Send(IDatabase db, (RedisKey[] Keys, RedisValue[] Values) call) =>
        db.ScriptEvaluateAsync(ProducerScripts.Enqueue, call.Keys, call.Values);

    /// <summary>The error after the last try; the job's id is the Enqueue script's first argument.</summary>
    private RedisUnavailableException Unavailable((RedisKey[] Keys, RedisValue[] Values) call, Exception ex)
    {
        var jobId = (string?)call.Values[0];
        return new RedisUnavailableException(
            $"Could not enqueue job '{jobId}': Redis could not be reached ({ex.Message}); tried {_retry.Tried}. The job may or " +
            "may not have been written: GetAsync on its id tells, and enqueueing it again with the same JobIdSuffix or " +
            "IdempotencyKey makes no second job.", ex);
    }
}
