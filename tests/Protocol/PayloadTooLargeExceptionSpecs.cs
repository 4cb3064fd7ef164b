namespace ClusterJobs.Protocol.Tests;

public class PayloadTooLargeExceptionSpecs
{
    [Fact]
    public void Its_message_states_the_size_and_the_limit_and_suggests_passing_a_reference()
    {
        var ex = new PayloadTooLargeException(600_001, 524_288);

        Assert.Contains("600001 bytes", ex.Message);
        Assert.Contains("524288 bytes", ex.Message);
        Assert.Contains("pass a reference", ex.Message);
        Assert.Equal(600_001, ex.Size);
        Assert.Equal(524_288, ex.Limit);
    }

    [Fact]
    public void It_is_an_ArgumentException_so_callers_treat_it_as_bad_input() =>
        Assert.IsAssignableFrom<ArgumentException>(new PayloadTooLargeException(2, 1));

    [Fact]
    public void The_default_payload_cap_is_512_KiB() =>
        Assert.Equal(512 * 1024, new JobClientOptions().MaxPayloadBytes);
}
