namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Handlers run on the .NET thread pool, and so do the node's Redis calls (their socket reads too, unless
/// CLUSTERJOBS_REDIS_IO=dedicated, and their continuations). A handler that blocks
/// its thread (sync I/O, <c>.Result</c>) holds one; enough of them starve the pool, and the pool only adds about two
/// threads a second. Raising the pool's minimum to the node's slots up front avoids that, but then every burst of
/// async handlers also starts a thread per queued handler: 80-90 threads on two cores, preempting each other.
/// So the minimum is raised only once starvation is seen: between two checks the pool completed fewer work items than
/// were already queued at the first, and work is still queued (a busy but healthy pool completes thousands a second).
/// </summary>
public sealed class ThreadPoolStarvationGuard(int reserve, Func<long> pending, Func<long> completed, Action<int> raiseMinimum)
{
    private long _lastCompleted = -1;
    private long _lastPending;

    /// <summary>Watches the process's thread pool; raises its minimum worker threads to <paramref name="reserve"/>.</summary>
    public static ThreadPoolStarvationGuard ForThreadPool(int reserve) => new(reserve,
        () => ThreadPool.PendingWorkItemCount, () => ThreadPool.CompletedWorkItemCount, RaiseThreadPoolMinimum);

    /// <summary>Raises (never lowers) the thread pool's minimum worker threads; I/O threads stay as they are.</summary>
    public static void RaiseThreadPoolMinimum(int minimum)
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, minimum), io);
    }

    public int Reserve { get; } = reserve;

    /// <summary>True once the minimum was raised (it stays raised).</summary>
    public bool Raised { get; private set; }

    /// <summary>Called periodically (<see cref="ThreadPoolStarvationWatch"/>); returns true when this call raised the minimum.</summary>
    public bool Check()
    {
        if (Raised) return false;
        var done = completed();
        var queued = pending();
        var stalled = _lastCompleted >= 0 && queued > 0 && done - _lastCompleted < _lastPending;
        (_lastCompleted, _lastPending) = (done, queued);
        if (!stalled) return false;
        raiseMinimum(Reserve);
        Raised = true;
        return true;
    }
}
