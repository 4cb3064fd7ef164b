using System.Collections.Concurrent;
using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>
/// Waiters for terminal job states: one pub/sub subscription per queue's events channel, shared by every waiter.
/// A waiter subscribes first and then reads the state, so a completion between the two is never missed; after a
/// reconnect (when pub/sub messages may have been lost) every waiter re-reads its job.
/// </summary>
internal sealed class JobWaiters : IAsyncDisposable
{
    private readonly IConnectionMultiplexer _redis;
    private readonly Func<string, Task<JobInfo?>> _read;
    private readonly ConcurrentDictionary<string, Task> _subscriptions = new();
    private readonly ConcurrentDictionary<string, ConcurrentBag<TaskCompletionSource<JobInfo>>> _waiting = new();

    public JobWaiters(IConnectionMultiplexer redis, Func<string, Task<JobInfo?>> read)
    {
        _redis = redis;
        _read = read;
        _redis.ConnectionRestored += OnConnectionRestored;
    }

    public async Task<JobInfo> WaitAsync(string jobId, string channel, TimeSpan timeout, CancellationToken ct)
    {
        var tcs = new TaskCompletionSource<JobInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting.GetOrAdd(jobId, _ => []).Add(tcs);
        try
        {
            await _subscriptions.GetOrAdd(channel, Subscribe).ConfigureAwait(false);
            await CheckAsync(jobId).ConfigureAwait(false);
            return await tcs.Task.WaitAsync(timeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var last = await _read(jobId).ConfigureAwait(false);
            throw new TimeoutException($"Job '{jobId}' did not finish within {timeout}; it is {last?.State.ToWire() ?? "gone"}.");
        }
        finally
        {
            if (_waiting.TryGetValue(jobId, out var bag) && bag.IsEmpty) _waiting.TryRemove(jobId, out _);
        }
    }

    private Task Subscribe(string channel) =>
        _redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(channel), (_, message) =>
        {
            var text = (string?)message;
            var space = text?.IndexOf(' ') ?? -1;
            if (space <= 0) return;
            if (!JobStates.TryFromWire(text![(space + 1)..], out var state) || !state.IsTerminal()) return;
            var id = text[..space];
            if (_waiting.ContainsKey(id)) CheckAsync(id).Forget();
        });

    private async Task CheckAsync(string jobId)
    {
        if (!_waiting.ContainsKey(jobId)) return;
        JobInfo? info;
        try { info = await _read(jobId).ConfigureAwait(false); }
        catch (Exception ex) { Fail(jobId, ex); return; }
        if (info is null) { Fail(jobId, new KeyNotFoundException($"No job '{jobId}'.")); return; }
        if (!info.State.IsTerminal()) return;
        if (_waiting.TryRemove(jobId, out var bag))
            foreach (var tcs in bag) tcs.TrySetResult(info);
    }

    private void Fail(string jobId, Exception ex)
    {
        if (_waiting.TryRemove(jobId, out var bag))
            foreach (var tcs in bag) tcs.TrySetException(ex);
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        foreach (var id in _waiting.Keys) CheckAsync(id).Forget();
    }

    public async ValueTask DisposeAsync()
    {
        _redis.ConnectionRestored -= OnConnectionRestored;
        foreach (var channel in _subscriptions.Keys)
        {
            try { await _redis.GetSubscriber().UnsubscribeAsync(RedisChannel.Literal(channel)).ConfigureAwait(false); }
            catch (Exception) { /* the connection may already be gone */ }
        }
        foreach (var bag in _waiting.Values)
            foreach (var tcs in bag) tcs.TrySetCanceled();
    }
}

internal static class TaskExtensions
{
    /// <summary>Runs a task without awaiting it; its exceptions are observed, not rethrown.</summary>
    public static void Forget(this Task task) =>
        task.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
}
