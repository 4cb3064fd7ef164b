using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Telemetry;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// The node's metrics (meter ClusterJobs.Node), as OpenTelemetry or dotnet-counters would read them: attempts by
/// outcome, handler run time, the wait for a slot, busy slots.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class JobMetricsSpecs(BrokerFixture brokers) : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private readonly ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> _measured = new();
    private readonly MeterListener _listener = new();

    [Fact]
    public async Task Each_attempt_is_counted_by_queue_task_and_outcome_with_its_run_time_and_first_attempts_with_their_wait()
    {
        var queue = _prefix; // this spec's own queue: other specs' nodes measure too
        Listen(queue);
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix, o => o.Queues = ClusterJobsOptions.ParseQueues(queue));
        var on = new EnqueueOptions { Queue = queue };
        var ids = new[]
        {
            await node.Client.EnqueueAsync("add", new[] { 1, 2 }, on),
            await node.Client.EnqueueAsync("add", new[] { 3, 4 }, on),
            await node.Client.EnqueueAsync("sleep", new { ms = 200 }, on),
            await node.Client.EnqueueAsync("fail", new { message = "boom" }, on with { MaxAttempts = 2, Backoff = TimeSpan.Zero }),
            await node.Client.EnqueueAsync("no_such_task", new { }, on),
        };
        foreach (var id in ids) await node.Client.WaitAsync(id, Wait);

        long Attempts(string task, string outcome) => (long)_measured
            .Where(m => m.Instrument == "clusterjobs.job.attempts" && Equals(m.Tags["task"], task) && Equals(m.Tags["outcome"], outcome)).Sum(m => m.Value);
        Assert.Equal(2, Attempts("add", "succeeded"));
        Assert.Equal(1, Attempts("sleep", "succeeded"));
        Assert.Equal((1, 1), (Attempts("fail", "retrying"), Attempts("fail", "dead_lettered")));
        Assert.Equal(1, Attempts(JobMetrics.UnknownTask, "dead_lettered"));
        Assert.Equal(6, _measured.Count(m => m.Instrument == "clusterjobs.job.attempts"));

        var sleep = Assert.Single(_measured, m => m.Instrument == "clusterjobs.job.duration" && Equals(m.Tags["task"], "sleep"));
        Assert.InRange(sleep.Value, 0.15, 10); // a 200 ms delay, on a coarse timer
        Assert.Equal(6, _measured.Count(m => m.Instrument == "clusterjobs.job.duration"));
        var waits = _measured.Where(m => m.Instrument == "clusterjobs.job.wait").ToList();
        Assert.Equal(5, waits.Count); // first attempts only: the retry of "fail" is not a wait for a slot
        Assert.All(waits, w => Assert.InRange(w.Value, 0, 30));
        var busy = _measured.Where(m => m.Instrument == "clusterjobs.workers.busy").Select(m => m.Value).ToList();
        Assert.Equal(12, busy.Count);
        Assert.Equal(0, busy.Sum()); // every slot taken was freed
    }

    private void Listen(string queue)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == JobMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        void Keep(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var map = new Dictionary<string, object?>();
            foreach (var tag in tags) map[tag.Key] = tag.Value;
            if (Equals(map.GetValueOrDefault("queue"), queue)) _measured.Enqueue((instrument.Name, value, map));
        }
        _listener.SetMeasurementEventCallback<long>((i, v, t, _) => Keep(i, v, t));
        _listener.SetMeasurementEventCallback<double>((i, v, t, _) => Keep(i, v, t));
        _listener.Start();
    }

    public void Dispose() => _listener.Dispose();
}
