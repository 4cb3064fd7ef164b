using System.Text.Json;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterJobs.Node.Tests;

/// <summary>
/// A job's recorded stack trace names the handler that threw, also once the handler has run often enough to be
/// optimized. (Only a Release build can inline across assemblies, so it is under <c>-c Release</c>, the README's and
/// CI's test command, that these fail when the node calls handlers through frames the JIT may inline into; a Debug
/// build never inlines a test's handler.)
/// </summary>
public sealed class TaskInvocationSpecs
{
    private static readonly JsonSerializerOptions Json = TaskRegistry.DefaultArgumentJson();

    public sealed class ThrowsAtOnce : IJobHandler<int, int>
    {
        public Task<int> HandleAsync(int args, JobContext job, CancellationToken ct) =>
            args < 0 ? Task.FromResult(args) : throw new InvalidOperationException("no");
    }

    public sealed class ThrowsAtOnceWithoutResult : IJobHandler<int>
    {
        public Task HandleAsync(int args, JobContext job, CancellationToken ct) =>
            args < 0 ? Task.CompletedTask : throw new InvalidOperationException("no");
    }

    [Fact]
    public Task A_handler_that_throws_at_once_is_named_in_the_stack_trace_however_often_it_ran() =>
        EveryTraceNames<ThrowsAtOnce>(nameof(ThrowsAtOnce));

    [Fact]
    public Task A_handler_without_a_result_that_throws_at_once_is_named_in_the_stack_trace_however_often_it_ran() =>
        EveryTraceNames<ThrowsAtOnceWithoutResult>(nameof(ThrowsAtOnceWithoutResult));

    /// <summary>
    /// Runs the handler five thousand times over two seconds or more, long enough for tiered compilation to optimize
    /// the call path with its profile, and checks every failure's trace.
    /// </summary>
    private static async Task EveryTraceNames<THandler>(string handler) where THandler : class
    {
        var registration = TaskRegistration.For<THandler>("throws", Json);
        await using var services = new ServiceCollection().BuildServiceProvider();
        var context = new JobContext(Jobs.Envelope("q", "1", "throws", "1"), 1, "node", services, RetryPolicy.Default);
        var args = Jobs.Json("1");
        for (var round = 0; round < 100; round++)
        {
            for (var i = 0; i < 50; i++)
            {
                var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => registration.InvokeAsync(services, args, context, default));
                Assert.True(ex.StackTrace!.Contains($"{handler}.HandleAsync"),
                    $"round {round}, call {i}: the trace does not name {handler}.HandleAsync:\n{ex.StackTrace}");
            }
            await Task.Delay(20);
        }
    }
}
