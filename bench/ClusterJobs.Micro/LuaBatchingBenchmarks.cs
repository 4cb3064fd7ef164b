using BenchmarkDotNet.Attributes;
using ClusterJobs.Node.Broker;
using ClusterJobs.Node.Embedded;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Micro;

/// <summary>
/// Taking and completing 256 jobs: one script call for the batch (what the node does) against one call per job.
/// Runs against REDIS_URL when set, else an embedded Garnet server. Measured per job.
/// </summary>
[MemoryDiagnoser, InvocationCount(1)]
public class LuaBatchingBenchmarks
{
    private const int Batch = 256;
    private EmbeddedGarnet? _garnet;
    private IConnectionMultiplexer _redis = null!;
    private JobClient _client = null!;
    private QueueBroker _broker = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        var url = Environment.GetEnvironmentVariable("REDIS_URL");
        if (string.IsNullOrEmpty(url)) { _garnet = new EmbeddedGarnet(memory: "512m"); url = _garnet.Url; }
        _redis = await RedisConnection.ConnectAsync(url);
        var keys = new RedisKeys("micro" + Guid.NewGuid().ToString("N")[..6]);
        _client = new JobClient(_redis, new JobClientOptions { KeyPrefix = keys.Prefix });
        _broker = new QueueBroker(_redis, keys, "bench", "micro-node", new BrokerSettings());
    }

    [IterationSetup]
    public void Fill() =>
        Task.WhenAll(Enumerable.Range(0, Batch).Select(_ => _client.EnqueueAsync("noop", null, new EnqueueOptions { Queue = "bench" })))
            .GetAwaiter().GetResult(); // BenchmarkDotNet's iteration setup is synchronous

    [GlobalCleanup]
    public void Cleanup()
    {
        _redis.Dispose();
        _garnet?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    public async Task TakeAndCompleteInOneBatch()
    {
        var jobs = (await _broker.TakeAsync(Batch)).Jobs;
        await _broker.CompleteAsync(jobs.Select(j => (JobOutcome)new JobOutcome.Succeeded(j.Id, "null")).ToList());
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public async Task TakeAndCompleteOneByOne()
    {
        for (var i = 0; i < Batch; i++)
        {
            var jobs = (await _broker.TakeAsync(1)).Jobs;
            await _broker.CompleteAsync([new JobOutcome.Succeeded(jobs[0].Id, "null")]);
        }
    }
}
