using ClusterJobs.Node.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterJobs.Node.Tests;

/// <summary>
/// The thread pool's minimum is raised to the node's reserve only when handlers starve it (queued work not run), so
/// async handlers never get a thread each.
/// </summary>
public sealed class ThreadPoolStarvationGuardSpecs
{
    private long _pending;
    private long _completed;
    private readonly List<int> _raised = [];

    private ThreadPoolStarvationGuard Guard() => new(reserve: 520, () => _pending, () => _completed, _raised.Add);

    [Fact]
    public void A_busy_pool_that_runs_what_was_queued_keeps_its_minimum()
    {
        var guard = Guard();
        for (var tick = 0; tick < 10; tick++)
        {
            _pending = 300;          // work is always queued under load...
            Assert.False(guard.Check());
            _completed += 40_000;    // ...and far more than that is run before the next tick
        }
        Assert.Empty(_raised);
        Assert.False(guard.Raised);
    }

    [Fact]
    public void Queued_work_that_is_not_run_raises_the_minimum_to_the_reserve_once()
    {
        var guard = Guard();
        _pending = 5;
        Assert.False(guard.Check()); // the first look has nothing to compare with
        _completed += 2;             // blocked handlers: fewer items ran than were waiting
        _pending = 12;
        Assert.True(guard.Check());
        Assert.Equal([520], _raised);
        Assert.True(guard.Raised);

        _completed += 0;
        Assert.False(guard.Check()); // raised once; it stays raised
        Assert.Single(_raised);
    }

    [Fact]
    public void An_idle_pool_is_not_starved()
    {
        var guard = Guard();
        for (var tick = 0; tick < 5; tick++) Assert.False(guard.Check());
        Assert.Empty(_raised);
    }

    [Fact]
    public void Raising_the_thread_pool_minimum_never_lowers_it_and_leaves_io_threads_alone()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        try
        {
            ThreadPoolStarvationGuard.RaiseThreadPoolMinimum(workers + 3);
            ThreadPool.GetMinThreads(out var raised, out var ioAfter);
            Assert.Equal(workers + 3, raised);
            Assert.Equal(io, ioAfter);

            ThreadPoolStarvationGuard.RaiseThreadPoolMinimum(1);
            ThreadPool.GetMinThreads(out var notLowered, out _);
            Assert.Equal(workers + 3, notLowered);
        }
        finally { ThreadPool.SetMinThreads(workers, io); }
    }

    [Fact]
    public async Task The_watch_checks_on_its_own_thread_and_raises_the_minimum_when_starved()
    {
        var raised = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Queued work that never runs: what handlers blocking every thread-pool thread look like.
        var starved = new ThreadPoolStarvationGuard(reserve: 64, pending: () => 10, completed: () => 0, raiseMinimum: n => raised.TrySetResult(n));
        using var watch = new ThreadPoolStarvationWatch(starved, TimeSpan.FromMilliseconds(20), NullLogger<ThreadPoolStarvationWatch>.Instance);
        await watch.StartAsync(CancellationToken.None);

        Assert.Equal(64, await raised.Task.WaitAsync(TimeSpan.FromSeconds(5)));
        await watch.StopAsync(CancellationToken.None);
    }
}
