namespace ClusterJobs.Node.Workers;

/// <summary>
/// Ids whose cancellation was requested while no worker of this pool ran them: a job is "running" in Redis from the
/// moment a node leases it, so a cancel can come while the job still waits in a router's read-ahead or is on its way
/// here, and would be lost. The pool checks this before it starts a job. Bounded: an id is kept for a while (longer than
/// a leased job waits to start) and at most so many are kept, oldest dropped first.
/// </summary>
internal sealed class RecentCancels(TimeSpan keepFor, int maxIds = 10_000)
{
    private readonly Dictionary<string, DateTime> _until = new();
    private readonly Queue<(string Id, DateTime Until)> _order = new();

    public int Count => _until.Count;

    public void Add(string id, DateTime now)
    {
        Expire(now);
        while (_until.Count >= maxIds && _order.TryDequeue(out var oldest)) Forget(oldest);
        var until = now + keepFor;
        _until[id] = until;
        _order.Enqueue((id, until));
    }

    /// <summary>True (and forgotten) when <paramref name="id"/>'s cancellation was requested lately.</summary>
    public bool Take(string id, DateTime now)
    {
        Expire(now);
        return _until.Remove(id);
    }

    private void Expire(DateTime now)
    {
        while (_order.TryPeek(out var head) && head.Until <= now) Forget(_order.Dequeue());
    }

    // An id added again later has a later deadline: only its own entry forgets it.
    private void Forget((string Id, DateTime Until) entry)
    {
        if (_until.TryGetValue(entry.Id, out var until) && until == entry.Until) _until.Remove(entry.Id);
    }
}
