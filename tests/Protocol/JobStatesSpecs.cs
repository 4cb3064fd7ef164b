namespace ClusterJobs.Protocol.Tests;

public class JobStatesSpecs
{
    public static TheoryData<JobState, string> WireNames => new()
    {
        { JobState.Queued, "queued" },
        { JobState.Scheduled, "scheduled" },
        { JobState.Running, "running" },
        { JobState.Waiting, "waiting" },
        { JobState.Retrying, "retrying" },
        { JobState.Succeeded, "succeeded" },
        { JobState.Failed, "failed" },
        { JobState.DeadLettered, "dead_lettered" },
        { JobState.Cancelled, "cancelled" },
    };

    [Theory]
    [MemberData(nameof(WireNames))]
    public void Each_state_is_written_as_its_documented_snake_case_wire_name(JobState state, string wire) =>
        Assert.Equal(wire, state.ToWire());

    [Theory]
    [MemberData(nameof(WireNames))]
    public void Each_wire_name_reads_back_as_its_state(JobState state, string wire)
    {
        Assert.Equal(state, JobStates.FromWire(wire));
        Assert.True(JobStates.TryFromWire(wire, out var parsed));
        Assert.Equal(state, parsed);
    }

    [Fact]
    public void Every_state_has_a_distinct_wire_name_that_reads_back_as_itself()
    {
        var states = Enum.GetValues<JobState>();

        Assert.Equal(states.Length, states.Select(s => s.ToWire()).Distinct().Count());
        Assert.All(states, s => Assert.Equal(s, JobStates.FromWire(s.ToWire())));
        Assert.Equal(WireNames.Count, states.Length);
    }

    [Theory]
    [InlineData("bogus")]
    [InlineData("Queued")]
    [InlineData("dead-lettered")]
    [InlineData("DeadLettered")]
    [InlineData("")]
    public void An_unknown_wire_name_is_not_a_state(string wire)
    {
        Assert.False(JobStates.TryFromWire(wire, out _));
        var ex = Assert.Throws<FormatException>(() => JobStates.FromWire(wire));
        Assert.Contains($"'{wire}'", ex.Message);
    }

    [Fact]
    public void A_missing_wire_name_is_not_a_state() => Assert.False(JobStates.TryFromWire(null, out _));

    [Fact]
    public void A_value_outside_the_enum_has_no_wire_name() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ((JobState)99).ToWire());

    [Fact]
    public void Exactly_succeeded_failed_dead_lettered_and_cancelled_are_terminal()
    {
        var terminal = Enum.GetValues<JobState>().Where(s => s.IsTerminal()).ToHashSet();

        Assert.Equal(new HashSet<JobState> { JobState.Succeeded, JobState.Failed, JobState.DeadLettered, JobState.Cancelled }, terminal);
    }

    [Theory]
    [InlineData(JobState.Queued)]
    [InlineData(JobState.Scheduled)]
    [InlineData(JobState.Running)]
    [InlineData(JobState.Retrying)]
    public void A_job_that_can_still_run_is_not_terminal(JobState state) => Assert.False(state.IsTerminal());
}
