using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>
/// Waiters for terminal job states: one pub/sub subscription per queue's events channel, shared by every waiter.
/// A waiter subscribes first and then reads the state, so a completion between the two is never missed; after a
/// reconnect (when pub/sub messages may have been lost) every waiter re-reads its job. A Redis that cannot be reached
/// for a while (restarting, loading its data) is waited out within each waiter's timeout: before, a wait begun during
/// an outage threw, and left its queue's failed subscription behind for every later wait on that client.
/// </summary>
internal sealed class JobWaiters : IAsyncDisposable
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(100), LastRetry = TimeSpan.FromSeconds(2);
    private readonly IConnectionMultiplexer _redis;
    private readonly Func<string, Task<JobInfo?>> _read;
    private readonly Dictionary<string, Task> _subscriptions = []; // locked on itself
    private readonly Dictionary<string, List<TaskCompletionSource<JobInfo>>> _waiting = []; // locked on itself
    private readonly Action<RedisChannel, RedisValue> _onMessage;
    private readonly CancellationTokenSource _disposing = new();

    public JobWaiters(IConnectionMultiplexer redis, Func<string, Task<JobInfo?>> read)
    {
        _redis = redis;
        _read = read;
        _onMessage = OnMessage;
        _redis.ConnectionRestored += OnConnectionRestored;
    }

    public async Task<JobInfo> WaitAsync(string jobId, string channel, TimeSpan timeout, CancellationToken ct)
    {
        var tcs = new TaskCompletionSource<JobInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        Add(jobId, tcs);
        try
        {
            using var timer = new CancellationTokenSource(timeout);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token, _disposing.Token);
            try
            {
                await SubscribeAsync(channel, wait.Token).ConfigureAwait(false);
                CheckAsync(jobId).Forget(); // reads again while Redis cannot be reached, until this waiter is gone
                return await tcs.Task.WaitAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw new OperationCanceledException(ct);
            }
            catch (OperationCanceledException) when (timer.IsCancellationRequested && !_disposing.IsCancellationRequested)
            {
                // A short timeout can end before the first read has answered: a job found finished now is returned.
                var (last, state) = await LastStateAsync(jobId).ConfigureAwait(false);
                if (last is not null && last.State.IsTerminal()) return last;
                throw new TimeoutException($"Job '{jobId}' did not finish within {timeout}; {state}.");
            }
        }
        finally
        {
            Remove(jobId, tcs);
        }
    }

    /// <summary>
    /// Subscribes to the queue's events channel once per client. A subscription that failed is not kept, and its
    /// handler is taken back: StackExchange.Redis registers it before sending SUBSCRIBE and would keep it (and
    /// subscribe it again on reconnect), so each failed try would add one more call per message.
    /// </summary>
    private async Task SubscribeAsync(string channel, CancellationToken ct)
    {
        for (var delay = FirstRetry; ; delay = Next(delay))
        {
            Task subscription;
            lock (_subscriptions) // so that the handler is registered exactly once per kept subscription
            {
                if (!_subscriptions.TryGetValue(channel, out subscription!))
                    _subscriptions[channel] = subscription = _redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(channel), _onMessage);
            }
            try
            {
                await subscription.WaitAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (subscription.IsCompleted)
            {
                lock (_subscriptions)
                {
                    if (_subscriptions.TryGetValue(channel, out var kept) && kept == subscription)
                    {
                        _subscriptions.Remove(channel);
                        _redis.GetSubscriber().Unsubscribe(RedisChannel.Literal(channel), _onMessage, CommandFlags.FireAndForget);
                    }
                }
                if (!RedisConnection.IsUnreachable(ex)) throw;
            }
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
    }

    /// <summary>One handler for every channel: a message is "&lt;job id&gt; &lt;state&gt;".</summary>
    private void OnMessage(RedisChannel _, RedisValue message)
    {
        var text = (string?)message;
        var space = text?.IndexOf(' ') ?? -1;
        if (space <= 0) return;
        if (!JobStates.TryFromWire(text![(space + 1)..], out var state) || !state.IsTerminal()) return;
        var id = text[..space];
        if (IsWaitedFor(id)) CheckAsync(id).Forget();
    }

    /// <summary>Reads the job and ends its waits if it is done; while Redis cannot be reached, reads again as long as anyone waits.</summary>
    private async Task CheckAsync(string jobId)
    {
        for (var delay = FirstRetry; IsWaitedFor(jobId); delay = Next(delay))
        {
            JobInfo? info;
            try { info = await _read(jobId).ConfigureAwait(false); }
            catch (Exception ex) when (RedisConnection.IsUnreachable(ex))
            {
                await Task.Delay(delay).ConfigureAwait(false);
                continue;
            }
            catch (Exception ex) { End(jobId, tcs => tcs.TrySetException(ex)); return; }
            if (info is null) End(jobId, tcs => tcs.TrySetException(new KeyNotFoundException($"No job '{jobId}'.")));
            else if (info.State.IsTerminal()) End(jobId, tcs => tcs.TrySetResult(info));
            return;
        }
    }

    /// <summary>
    /// The job as read now (null when gone or unreadable), and its state in words for a timeout's message. Within a
    /// second: the wait's own time is up, and a read held while Redis cannot be reached would wait out StackExchange.Redis's
    /// timeout (5 s) past it.
    /// </summary>
    private async Task<(JobInfo? Job, string State)> LastStateAsync(string jobId)
    {
        try
        {
            var last = await _read(jobId).WaitAsync(LastReadLimit).ConfigureAwait(false);
            return (last, $"it is {last?.State.ToWire() ?? "gone"}");
        }
        catch (TimeoutException)
        {
            return (null, $"its state could not be read within {LastReadLimit.TotalSeconds:0} s");
        }
        catch (Exception ex) when (RedisConnection.IsUnreachable(ex) || ex is RedisException)
        {
            var cause = ex is RedisUnavailableException { InnerException: { } inner } ? inner.Message : ex.Message;
            return (null, RedisConnection.IsUnreachable(ex) ? $"its state could not be read: Redis could not be reached ({cause})"
                : $"its state could not be read: {cause}");
        }
    }

    private static readonly TimeSpan LastReadLimit = TimeSpan.FromSeconds(1);

    private static TimeSpan Next(TimeSpan delay) => delay * 2 < LastRetry ? delay * 2 : LastRetry;

    private void Add(string jobId, TaskCompletionSource<JobInfo> tcs)
    {
        lock (_waiting)
        {
            if (!_waiting.TryGetValue(jobId, out var list)) _waiting[jobId] = list = [];
            list.Add(tcs);
        }
    }

    private void Remove(string jobId, TaskCompletionSource<JobInfo> tcs)
    {
        lock (_waiting)
        {
            if (_waiting.TryGetValue(jobId, out var list) && list.Remove(tcs) && list.Count == 0) _waiting.Remove(jobId);
        }
    }

    private bool IsWaitedFor(string jobId)
    {
        lock (_waiting) return _waiting.ContainsKey(jobId);
    }

    private void End(string jobId, Action<TaskCompletionSource<JobInfo>> end)
    {
        List<TaskCompletionSource<JobInfo>>? list;
        lock (_waiting)
        {
            if (!_waiting.Remove(jobId, out list)) return;
        }
        foreach (var tcs in list) end(tcs);
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        string[] ids;
        lock (_waiting) ids = [.. _waiting.Keys];
        foreach (var id in ids) CheckAsync(id).Forget();
    }

    public async ValueTask DisposeAsync()
    {
        _redis.ConnectionRestored -= OnConnectionRestored;
        await _disposing.CancelAsync().ConfigureAwait(false); // waiters still subscribing or waiting end, cancelled
        string[] channels;
        lock (_subscriptions) channels = [.. _subscriptions.Keys];
        foreach (var channel in channels)
        {
            // This client's handler only: the connection may be shared (a node's own clients, an app's subscribers).
            try { await _redis.GetSubscriber().UnsubscribeAsync(RedisChannel.Literal(channel), _onMessage, CommandFlags.FireAndForget).ConfigureAwait(false); }
            catch (Exception) { /* the connection may already be gone */ }
        }
        List<TaskCompletionSource<JobInfo>>[] all;
        lock (_waiting)
        {
            all = [.. _waiting.Values];
            _waiting.Clear();
        }
        foreach (var list in all)
            foreach (var tcs in list) tcs.TrySetCanceled();
    }
}

internal static class TaskExtensions
{
    /// <summary>Runs a task without awaiting it; its exceptions are observed, not rethrown.</summary>
    public static void Forget(this Task task) =>
        task.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
}
