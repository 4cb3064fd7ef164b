using System.Diagnostics;
using Polly;
using Polly.Retry;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>
/// Sends an enqueue (one call of the Enqueue script) again while Redis cannot be reached, for up to <see cref="JobClientOptions.EnqueueRetryFor"/> from
/// the first send (Celery's publish retry, ioredis's offline queue for BullMQ). Only failures of reaching Redis are
/// tried again; an error Redis answers with (a wrong type, a script error) is thrown at once.
/// </summary>
internal sealed class EnqueueRetry
{
    private static readonly ResiliencePropertyKey<long> FirstSend = new("clusterjobs.first-send");
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeSpan _budget;
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(50);

    public EnqueueRetry(TimeSpan budget)
    {
        _budget = budget;
        _pipeline = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && RedisConnection.IsUnreachable(ex) &&
                Stopwatch.GetElapsedTime(args.Context.Properties.GetValue(FirstSend, 0L)) < budget),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            Delay = FirstDelay * 2,
            MaxDelay = TimeSpan.FromSeconds(1),
            UseJitter = true,
        }).Build();
    }

    /// <summary>Runs the Enqueue script <paramref name="call"/> on <paramref name="db"/>, again while Redis cannot be reached.</summary>
    public async Task<RedisResult> SendAsync(IDatabase db, (RedisKey[] Keys, RedisValue[] Values) call, CancellationToken ct)
    {
        var firstSend = Stopwatch.GetTimestamp();
        try
        {
            return await Send(db, call).ConfigureAwait(false); // the pipeline only after a failure: nothing added to a normal send
        }
        catch (Exception ex) when (RedisConnection.IsUnreachable(ex))
        {
            if (Stopwatch.GetElapsedTime(firstSend) >= _budget) throw Unavailable(call, ex);
        }
        await Task.Delay(FirstDelay, ct).ConfigureAwait(false);
        var context = ResilienceContextPool.Shared.Get(ct);
        context.Properties.Set(FirstSend, firstSend);
        try
        {
            return await _pipeline.ExecuteAsync(static (_, state) => new ValueTask<RedisResult>(Send(state.db, state.call)), context, (db, call))
                .ConfigureAwait(false);
        }
        catch (Exception ex) when (RedisConnection.IsUnreachable(ex))
        {
            throw Unavailable(call, ex);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private static Task<RedisResult> Send(IDatabase db, (RedisKey[] Keys, RedisValue[] Values) call) =>
        db.ScriptEvaluateAsync(ProducerScripts.Enqueue, call.Keys, call.Values);

    /// <summary>The error after the last try; the job's id is the Enqueue script's first argument.</summary>
    private RedisUnavailableException Unavailable((RedisKey[] Keys, RedisValue[] Values) call, Exception ex)
    {
        var jobId = (string?)call.Values[0];
        var tried = _budget > TimeSpan.Zero ? $"for {_budget.TotalSeconds:0.#} s" : "once";
        return new RedisUnavailableException(
            $"Could not enqueue job '{jobId}': Redis could not be reached ({ex.Message}); tried {tried}. The job may or " +
            "may not have been written: GetAsync on its id tells, and enqueueing it again with the same JobIdSuffix or " +
            "IdempotencyKey makes no second job.", ex);
    }
}
