using System.Text;
using StackExchange.Redis;

namespace ClusterJobs.Persistence.Redis;

/// <summary>
/// The key layout (docs/persistence.md). Every key of one persistence id carries the hash tag <c>{pid}</c>, so an
/// entity's keys (events, highest sequence number, snapshots) live in one Redis Cluster slot and one script may touch
/// them all. Inside the tag, '%', '{' and '}' of the persistence id are percent-encoded, which keeps the tag non-empty,
/// closed where we close it, and different for different ids.
/// </summary>
public sealed class RedisKeys
{
    private readonly string _prefix;

    public RedisKeys(string prefix)
    {
        ValidatePrefix(prefix);
        _prefix = prefix;
    }

    public string Prefix => _prefix;

    /// <summary>Sorted set: member = event entry (see <see cref="EventEntry"/>), score = sequence number.</summary>
    public RedisKey Events(string persistenceId) => $"{_prefix}:j:{Tag(persistenceId)}:events";

    /// <summary>String: the highest sequence number ever written. Only ever raised, never lowered, deletes included.</summary>
    public RedisKey Highest(string persistenceId) => $"{_prefix}:j:{Tag(persistenceId)}:highest";

    /// <summary>Sorted set of snapshot metadata: member = <c>seqNr:timestamp</c> (ticks, 19 digits), score = sequence number.</summary>
    public RedisKey SnapshotIndex(string persistenceId) => $"{_prefix}:s:{Tag(persistenceId)}:idx";

    /// <summary>Hash of snapshot payloads: field = sequence number, value = snapshot entry (see <see cref="SnapshotEntry"/>).</summary>
    public RedisKey SnapshotData(string persistenceId) => $"{_prefix}:s:{Tag(persistenceId)}:data";

    /// <summary>The hash tag of a persistence id: <c>{pid}</c> with '%', '{', '}' percent-encoded.</summary>
    public static string Tag(string persistenceId)
    {
        ArgumentException.ThrowIfNullOrEmpty(persistenceId);
        if (persistenceId.AsSpan().IndexOfAny('%', '{', '}') < 0) return "{" + persistenceId + "}";
        var sb = new StringBuilder(persistenceId.Length + 8).Append('{');
        foreach (var c in persistenceId)
            sb.Append(c switch { '%' => "%25", '{' => "%7B", '}' => "%7D", _ => c.ToString() });
        return sb.Append('}').ToString();
    }

    public static void ValidatePrefix(string prefix)
    {
        if (string.IsNullOrEmpty(prefix))
            throw new ArgumentException("The key prefix must not be empty.", nameof(prefix));
        if (prefix.AsSpan().IndexOfAny('{', '}') >= 0)
            throw new ArgumentException($"The key prefix '{prefix}' must not contain '{{' or '}}': they would change the hash tag of every key.", nameof(prefix));
    }
}
