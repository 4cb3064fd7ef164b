using StackExchange.Redis;

namespace ClusterJobs.Protocol;

/// <summary>
/// A walk through a queue's dead list as it was when the walk began, for calls that take letters out of it as they go
/// (replay-all, purge) while nodes append new ones at its end and other callers may take letters out too.
/// <list type="bullet">
/// <item>It reads page by page from just after the letters that stayed (<see cref="Stays"/>), and keeps its place by the
/// last of them: when that letter is no longer where it was (someone took letters out behind it), it starts again from
/// the head, so no old letter is missed (those taken out are gone; those that stayed are read again and stay again).</item>
/// <item>It ends after the letter that was last when it began (found by id, so letters taken out before it by others do
/// not move the end).</item>
/// <item>If that letter was taken out by someone else, it ends where the old letters must end: letters only move toward
/// the head, so they all lie within the length it began with, less the letters it took out itself
/// (<see cref="TookOut"/>). A new letter falls within that only when others took letters out meanwhile, at most one
/// for each.</item>
/// </list>
/// Every Redis call goes through <see cref="JobClient"/>'s retry while Redis cannot be reached.
/// </summary>
internal sealed class DeadListWalk
{
    private readonly JobClient _client;
    private readonly RedisKey _dead;
    private readonly string _last;
    private long _limit; // positions that can still hold old letters: the length at the start, less the letters taken out
    private long _position; // where the next page starts: after the letters that stayed
    private string? _anchor; // the letter that stayed last, at _position - 1
    private bool _ended;

    private DeadListWalk(JobClient client, RedisKey dead, string what, string? last, long length)
    {
        (_client, _dead, What, _limit) = (client, dead, what, length);
        _last = last ?? "";
        _ended = last is null || length == 0;
    }

    /// <summary>What the walk is for, as its errors say it ("replay the dead letters of queue 'emails'").</summary>
    public string What { get; }

    public static async Task<DeadListWalk> StartAsync(JobClient client, RedisKey dead, string what, CancellationToken ct)
    {
        // The last letter first: a letter appended between the two reads makes the length one too long, never the end wrong.
        var last = await client.CallAsync(what, db => db.ListGetByIndexAsync(dead, -1), ct).ConfigureAwait(false);
        var length = await client.CallAsync(what, db => db.ListLengthAsync(dead), ct).ConfigureAwait(false);
        return new DeadListWalk(client, dead, what, last, length);
    }

    /// <summary>The next page of letters, up to the one last when the walk began; empty when the walk is over.</summary>
    public async Task<IReadOnlyList<string>> NextAsync(int page, CancellationToken ct)
    {
        if (_ended) return [];
        if (_anchor is not null && await ReadAsync(_position - 1, ct).ConfigureAwait(false) != _anchor)
            (_position, _anchor) = (0, null);
        if (_position >= _limit) return [];
        var (from, to) = (_position, Math.Min(_position + page, _limit) - 1);
        var ids = (await _client.CallAsync(What, db => db.ListRangeAsync(_dead, from, to), ct).ConfigureAwait(false))
            .Select(id => (string)id!).ToList();
        var end = ids.IndexOf(_last);
        if (end >= 0) ids.RemoveRange(end + 1, ids.Count - end - 1);
        _ended = end >= 0 || ids.Count == 0;
        return ids;
    }

    /// <summary>The letter stays in the list: the next page starts after it.</summary>
    public void Stays(string id) => (_position, _anchor) = (_position + 1, id);

    /// <summary>
    /// A letter of the last page is out of the list: the walk's call took it out, or someone else did after the page was
    /// read (an old letter either way, so one place fewer can hold old letters).
    /// </summary>
    public void TookOut() => _limit--;

    /// <summary>After a call on the letter failed: it stays if it is still where the walk read it.</summary>
    public async Task StaysIfStillThereAsync(string id, CancellationToken ct)
    {
        if (await ReadAsync(_position, ct).ConfigureAwait(false) == id) Stays(id);
    }

    private async Task<string?> ReadAsync(long index, CancellationToken ct) =>
        await _client.CallAsync(What, db => db.ListGetByIndexAsync(_dead, index), ct).ConfigureAwait(false);
}
