using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Runs a <see cref="ThreadPoolStarvationGuard"/> every <c>interval</c> on a thread of its own: a starved thread pool
/// runs no timer callbacks, and even the actors' timers reached them only once the pool had grown (seen in a spec:
/// the worker pool's 1 s tick arrived 6 s late), so neither could notice the starvation in time.
/// </summary>
public sealed class ThreadPoolStarvationWatch(ThreadPoolStarvationGuard guard, TimeSpan interval, ILogger<ThreadPoolStarvationWatch> logger)
    : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stop = new();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        new Thread(Watch) { IsBackground = true, Name = "clusterjobs-threadpool-watch" }.Start();
        return Task.CompletedTask;
    }

    private void Watch()
    {
        // Waits on the stop handle, not a timer: nothing here needs the thread pool.
        while (!_stop.Token.WaitHandle.WaitOne(interval))
        {
            if (guard.Check())
                logger.LogWarning("Handlers are blocking thread-pool threads (queued work is not being run): raised the thread pool's minimum to {Threads} threads. Prefer async handlers.",
                    guard.Reserve);
            if (guard.Raised) return; // it stays raised: nothing left to watch
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stop.Cancel();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}
