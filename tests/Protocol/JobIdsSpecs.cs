namespace ClusterJobs.Protocol.Tests;

public class JobIdsSpecs
{
    [Theory]
    [InlineData("emails")]
    [InlineData("default")]
    [InlineData("reports.v2-eu_west")]
    public void A_new_id_is_prefixed_with_its_queue_and_is_a_valid_job_id(string queue)
    {
        var id = JobIds.New(queue);

        Assert.StartsWith(queue + ":", id);
        Assert.True(JobIds.IsValid(id));
        Assert.Equal(queue, JobIds.QueueOf(id));
    }

    [Fact]
    public void New_ids_are_unique()
    {
        var ids = Enumerable.Range(0, 10_000).Select(_ => JobIds.New("emails")).ToList();

        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void Ids_made_in_later_milliseconds_sort_after_earlier_ones_as_plain_strings()
    {
        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add(JobIds.New("emails"));
            Thread.Sleep(3);
        }

        Assert.Equal(ids, ids.Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// Equal ready scores mean the same priority and the same enqueue millisecond; Redis then orders the ZSET members
    /// by their bytes, so FIFO within a millisecond needs ids that sort in creation order within a millisecond.
    /// </summary>
    [Fact]
    public void Ids_made_within_the_same_millisecond_still_sort_in_creation_order_so_equal_scores_stay_FIFO()
    {
        var ids = Enumerable.Range(0, 1_000).Select(_ => JobIds.New("emails")).ToList();

        Assert.Equal(ids, ids.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("emails:abc", "emails")]
    [InlineData("emails:a:b:c", "emails")]
    [InlineData("x:1", "x")]
    [InlineData("reports.v2-eu_west:order-42.retry", "reports.v2-eu_west")]
    public void The_queue_of_a_job_id_is_everything_before_its_first_colon(string id, string queue) =>
        Assert.Equal(queue, JobIds.QueueOf(id));

    [Theory]
    [InlineData("no-colon")]
    [InlineData(":suffix")]
    [InlineData("emails:")]
    [InlineData("emails:has space")]
    [InlineData("emails:{tag}")]
    [InlineData("bad queue:1")]
    [InlineData("")]
    [InlineData("emails:abc\n")]
    [InlineData("emails\n:abc")]
    public void An_id_that_is_not_queue_colon_suffix_is_rejected_naming_the_expected_form(string id)
    {
        Assert.False(JobIds.IsValid(id));
        var ex = Assert.Throws<ArgumentException>(() => JobIds.QueueOf(id));
        Assert.Equal("jobId", ex.ParamName);
        Assert.Contains("'<queue>:<suffix>'", ex.Message);
        Assert.Contains($"'{id}'", ex.Message);
    }

    [Fact]
    public void A_null_id_is_not_valid() => Assert.False(JobIds.IsValid(null));

    [Fact]
    public void A_suffix_may_be_up_to_200_characters_but_no_longer()
    {
        Assert.True(JobIds.IsValid("q:" + new string('a', 200)));
        Assert.False(JobIds.IsValid("q:" + new string('a', 201)));
    }

    [Fact]
    public void The_queue_part_of_an_id_follows_the_queue_name_rule()
    {
        Assert.True(JobIds.IsValid(new string('q', 100) + ":1"));
        Assert.False(JobIds.IsValid(new string('q', 101) + ":1"));
    }

    [Theory]
    [InlineData("a")]
    [InlineData("emails")]
    [InlineData("A.b-c_9")]
    public void A_queue_name_of_letters_digits_underscores_dots_and_dashes_is_accepted(string queue) =>
        JobIds.ValidateQueueName(queue);

    [Fact]
    public void A_queue_name_may_be_100_characters_long() => JobIds.ValidateQueueName(new string('q', 100));

    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    public void A_queue_name_a_URL_would_normalize_away_is_rejected_saying_so(string queue)
    {
        var ex = Assert.Throws<ArgumentException>(() => JobIds.ValidateQueueName(queue));
        Assert.Contains("'.' and '..' cannot be named in a URL", ex.Message);
        JobIds.ValidateQueueName("..." ); // three dots is a name a URL keeps
    }

    public static TheoryData<string?> InvalidQueueNames => new()
    {
        "", " ", "has space", "a:b", "{emails}", "emails}", "e{mails", "émails", "a/b", new string('q', 101), null, "emails\n",
    };

    [Theory]
    [MemberData(nameof(InvalidQueueNames))]
    public void Any_other_queue_name_is_rejected_with_a_message_stating_the_rule(string? queue)
    {
        var ex = Assert.Throws<ArgumentException>(() => JobIds.ValidateQueueName(queue!));
        Assert.Equal("queue", ex.ParamName);
        Assert.Contains("1-100 characters of letters, digits, '_', '.' or '-'", ex.Message);
    }
}

public class ReadyScoreSpecs
{
    /// <summary>The last unix millisecond the priority bands hold (10^13 - 1 ms is in the year 2286).</summary>
    private const long LatestTimestamp = 9_999_999_999_999;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(8)]
    public void A_higher_priority_always_scores_lower_than_any_older_lower_priority_job(int priority)
    {
        var newestHigher = JobIds.ReadyScore(priority + 1, LatestTimestamp);
        var oldestLower = JobIds.ReadyScore(priority, 0);

        Assert.True(newestHigher < oldestLower, $"{newestHigher} should be below {oldestLower}");
    }

    [Fact]
    public void Priority_9_jobs_run_before_priority_0_jobs_enqueued_decades_earlier()
    {
        var now = DateTimeOffset.Parse("2025-06-01T00:00:00Z").ToUnixTimeMilliseconds();
        var decadesAgo = DateTimeOffset.Parse("1990-01-01T00:00:00Z").ToUnixTimeMilliseconds();

        Assert.True(JobIds.ReadyScore(9, now) < JobIds.ReadyScore(0, decadesAgo));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(9)]
    public void Within_one_priority_the_older_job_scores_lower_by_exactly_its_head_start(int priority)
    {
        var older = JobIds.ReadyScore(priority, 1_700_000_000_000);
        var newer = JobIds.ReadyScore(priority, 1_700_000_000_001);

        Assert.True(older < newer);
        Assert.Equal(1d, newer - older);
    }

    [Theory]
    [InlineData(10, 9)]
    [InlineData(100, 9)]
    [InlineData(int.MaxValue, 9)]
    [InlineData(-1, 0)]
    [InlineData(int.MinValue, 0)]
    public void A_priority_outside_0_to_9_scores_as_the_nearest_bound(int priority, int clampedTo)
    {
        const long t = 1_700_000_000_000;
        Assert.Equal(JobIds.ReadyScore(clampedTo, t), JobIds.ReadyScore(priority, t));
    }

    [Theory]
    [InlineData(0, 0L)]
    [InlineData(0, 1_700_000_000_123L)]
    [InlineData(0, LatestTimestamp)]
    [InlineData(3, 1_700_000_000_123L)]
    [InlineData(9, 1_700_000_000_123L)]
    [InlineData(9, LatestTimestamp)]
    public void Scores_are_exact_integers_in_a_double_band_times_ten_to_the_13_plus_the_timestamp(int priority, long t)
    {
        var score = JobIds.ReadyScore(priority, t);
        long expected = (9 - priority) * 10_000_000_000_000L + t;

        Assert.True(expected < 1L << 53);
        Assert.Equal(expected, (long)score);
        Assert.Equal((double)expected, score);
        Assert.NotEqual(score, JobIds.ReadyScore(priority, t + 1));
    }
}
