namespace ClusterJobs.Protocol;

/// <summary>Times as Redis keeps them (Unix milliseconds), read from records any producer or hand may have written.</summary>
public static class UnixTime
{
    /// <summary>The moment, or null when it lies outside what <see cref="DateTimeOffset"/> holds (seconds or nanoseconds
    /// written where milliseconds belong, say): one odd field must not make the whole record unreadable.</summary>
    public static DateTimeOffset? FromMilliseconds(long ms) =>
        ms >= DateTimeOffset.MinValue.ToUnixTimeMilliseconds() && ms <= DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
}
