using System.Text.RegularExpressions;
using Cronos;

namespace ClusterJobs.Protocol;

/// <summary>
/// What a recurring schedule is made of, checked the same way by the producer that writes it and the node that fires
/// it: its name, its cron expression, its time zone, when it runs next, and the id of the job each run makes.
/// </summary>
public static partial class RecurringRules
{
    public const string DefaultTimeZone = "UTC";

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,100}\\z")]
    private static partial Regex NamePattern();

    public static void ValidateName(string name)
    {
        // "." and ".." would be path segments that every URL (the operator API's) normalizes away.
        if (name is null || !NamePattern().IsMatch(name) || name is "." or "..")
            throw new ArgumentException(
                $"Invalid recurring job name '{name}': use 1-100 characters of letters, digits, '_', '.' or '-'.", nameof(name));
    }

    /// <summary>
    /// Parses a cron expression: five fields (minute hour day-of-month month day-of-week), six with seconds first, or a
    /// macro (<c>@hourly</c>, <c>@daily</c>, <c>@weekly</c>, <c>@monthly</c>, <c>@yearly</c>, <c>@every_minute</c>,
    /// <c>@every_second</c>). Throws <see cref="ArgumentException"/> saying what is wrong.
    /// </summary>
    public static CronExpression ParseCron(string cron)
    {
        if (string.IsNullOrWhiteSpace(cron)) throw new ArgumentException("The cron expression is empty.", nameof(cron));
        var text = cron.Trim();
        var fields = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        var format = fields == 6 || text.Equals("@every_second", StringComparison.OrdinalIgnoreCase) ? CronFormat.IncludeSeconds : CronFormat.Standard;
        try
        {
            return CronExpression.Parse(text, format);
        }
        catch (CronFormatException ex)
        {
            throw new ArgumentException(
                $"Invalid cron expression '{cron}': {ex.Message} Give five fields (minute hour day-of-month month day-of-week), six with seconds first, or a macro such as @hourly.",
                nameof(cron), ex);
        }
    }

    /// <summary>An IANA (<c>Europe/Berlin</c>) or Windows (<c>W. Europe Standard Time</c>) time zone id.</summary>
    public static TimeZoneInfo FindTimeZone(string timeZone)
    {
        if (string.IsNullOrWhiteSpace(timeZone)) throw new ArgumentException("The time zone is empty.", nameof(timeZone));
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        }
        // A directory's name (Europe) is a SecurityException on Linux; a path-like id an IOException.
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException or System.Security.SecurityException
                                       or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new ArgumentException($"Unknown time zone '{timeZone}': give an IANA id such as 'Europe/Berlin', or 'UTC'.", nameof(timeZone), ex);
        }
    }

    /// <summary>
    /// The first run strictly after <paramref name="afterMs"/> (unix ms), in <paramref name="zone"/>'s wall-clock time;
    /// null when the expression has no further occurrence. Daylight saving as Cronos handles it: a run in a skipped hour
    /// happens as the clocks change; in a repeated hour, a run at a fixed hour happens once, while an interval
    /// (<c>*/15 * * * *</c>, <c>0 * * * *</c>) runs in both copies of the hour.
    /// </summary>
    public static long? NextRunMs(CronExpression cron, TimeZoneInfo zone, long afterMs) =>
        cron.GetNextOccurrence(DateTimeOffset.FromUnixTimeMilliseconds(afterMs), zone)?.ToUnixTimeMilliseconds();

    /// <summary>
    /// The id of the job a schedule's run makes: <c>queue:recurring:name:runMs</c>. Fixed by the run, so two nodes
    /// firing the same run (or one firing it twice) make one job.
    /// </summary>
    public static string JobId(string queue, string name, long runMs) => $"{queue}:recurring:{name}:{runMs}";
}
