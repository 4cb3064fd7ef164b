namespace ClusterJobs.Protocol.Tests;

public class RecurringRulesSpecs
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("*/15 * * * *", "2026-11-28T12:15:00Z")] // five fields: minutes
    [InlineData("30 * * * * *", "2026-11-28T12:00:30Z")] // six fields: seconds first
    [InlineData("@hourly", "2026-11-28T13:00:00Z")]
    [InlineData("@every_second", "2026-11-28T12:00:01Z")]
    [InlineData("0 9 * * MON-FRI", "2026-11-30T09:00:00Z")] // the 28th is a Saturday
    public void A_cron_expression_of_five_fields_six_with_seconds_or_a_macro_gives_the_next_run_after_a_moment(string cron, string next)
    {
        var run = RecurringRules.NextRunMs(RecurringRules.ParseCron(cron), TimeZoneInfo.Utc, Noon.ToUnixTimeMilliseconds());

        Assert.Equal(DateTimeOffset.Parse(next).ToUnixTimeMilliseconds(), run);
    }

    [Fact]
    public void A_run_is_read_in_its_time_zone_and_keeps_its_wall_clock_hour_across_daylight_saving()
    {
        var berlin = RecurringRules.FindTimeZone("Europe/Berlin");
        var nineDaily = RecurringRules.ParseCron("0 9 * * *");
        // 2026-03-29: Berlin goes from UTC+1 to UTC+2.
        var before = RecurringRules.NextRunMs(nineDaily, berlin, new DateTimeOffset(2026, 3, 28, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds());
        var after = RecurringRules.NextRunMs(nineDaily, berlin, before!.Value);

        Assert.Equal(new DateTimeOffset(2026, 3, 28, 8, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds(), before);
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 7, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds(), after);
    }

    [Fact]
    public void An_expression_with_no_further_occurrence_has_no_next_run() =>
        Assert.Null(RecurringRules.NextRunMs(RecurringRules.ParseCron("0 0 30 2 *"), TimeZoneInfo.Utc, Noon.ToUnixTimeMilliseconds()));

    [Theory]
    [InlineData("")]
    [InlineData("* * *")]
    [InlineData("0 25 * * *")]
    [InlineData("@fortnightly")]
    public void A_bad_expression_is_an_argument_error_that_says_what_a_good_one_looks_like(string cron)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => RecurringRules.ParseCron(cron));

        Assert.Contains(cron.Length == 0 ? "empty" : "five fields", error.Message);
    }

    [Fact]
    public void An_unknown_time_zone_is_an_argument_error_naming_it() =>
        Assert.Contains("Unknown time zone 'Europe/Atlantis'", Assert.Throws<ArgumentException>(() => RecurringRules.FindTimeZone("Europe/Atlantis")).Message);

    [Fact]
    public void A_run_makes_a_job_whose_id_names_the_schedule_and_the_run_so_firing_it_twice_makes_one_job()
    {
        var id = RecurringRules.JobId("reports", "nightly-export", 1_764_331_200_000);

        Assert.Equal("reports:recurring:nightly-export:1764331200000", id);
        Assert.True(JobIds.IsValid(id));
        Assert.Equal("reports", JobIds.QueueOf(id));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("colon:inside")]
    public void A_schedule_name_is_letters_digits_dots_dashes_and_underscores(string name) =>
        Assert.Contains("Invalid recurring job name", Assert.Throws<ArgumentException>(() => RecurringRules.ValidateName(name)).Message);
}
