using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>Many commands in one round trip.</summary>
internal static class RedisBatches
{
    /// <summary>
    /// Sends one command per item in one batch (one round trip) and awaits them all, so a failed one is never left
    /// unobserved; the answers in the items' order, or the first failure thrown.
    /// </summary>
    public static async Task<T[]> SendAllAsync<TItem, T>(this IDatabase db, IReadOnlyList<TItem> items, Func<IBatch, TItem, Task<T>> send)
    {
        if (items.Count == 0) return [];
        var batch = db.CreateBatch();
        var sent = new Task<T>[items.Count];
        for (var i = 0; i < items.Count; i++) sent[i] = send(batch, items[i]);
        batch.Execute();
        return await Task.WhenAll(sent).ConfigureAwait(false);
    }
}
