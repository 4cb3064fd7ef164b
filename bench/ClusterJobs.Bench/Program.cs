using System.Diagnostics;
using ClusterJobs.Bench;
using ClusterJobs.BenchKit;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// The ClusterJobs peer of the benchmark kit (../shared/bench-peers):
//   ClusterJobs.Bench produce --n N --sleep-ms S --rate R --rec-lat 0|1   enqueue N jobs one at a time (paced at R/s)
//   ClusterJobs.Bench produce --n N --batch B                              the same unpaced, B at a time (EnqueueManyAsync;
//                                                                          not the kit's way: for docs/benchmarks.md)
//   ClusterJobs.Bench node                                                a node serving `bench` (env as any node)
//   ClusterJobs.Bench produce-list ... | floor-blpop | floor-take           W2 latency floors without a node (Floors.cs)
//   ClusterJobs.Bench soak-node | soak-produce --rate R --seconds T | soak-check --n N --timeout S   bench/soak.sh (Soak.cs)
// Broker: REDIS_URL (default the kit's redis://127.0.0.1:6390/0); metrics: the same server's db 1.
var redisUrl = Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } u ? u : "redis://127.0.0.1:6390/0";
return args.FirstOrDefault() switch
{
    "produce" => await Produce(redisUrl, args[1..]),
    "node" => await RunNode(args[1..], soak: false),
    "soak-node" => await RunNode(args[1..], soak: true),
    "soak-produce" => await Soak.ProduceAsync(redisUrl, Num(args, "--rate"), Num(args, "--seconds")),
    "soak-check" => await Soak.CheckAsync(redisUrl, (long)Num(args, "--n"), TimeSpan.FromSeconds(Num(args, "--timeout"))),
    // W2 latency floors (Floors.cs): plain Redis consumers with the kit's job body, no node.
    "produce-list" => await Floors.ProduceToList(redisUrl, (int)Num(args, "--n"), Num(args, "--sleep-ms"), Num(args, "--rate"), (int)Num(args, "--rec-lat")),
    "floor-blpop" => await Floors.ConsumeList(redisUrl, Floors.StopOnSigterm()),
    "floor-take" => await Floors.TakeLoop(redisUrl, Floors.StopOnSigterm()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: ClusterJobs.Bench produce --n N [--sleep-ms S] [--rate R] [--rec-lat 0|1] | node");
    return 2;
}

static double Num(string[] args, string name) =>
    Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length
        ? double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : 0;

static async Task<int> Produce(string redisUrl, string[] args)
{
    var n = (int)Num(args, "--n");
    var sleepMs = Num(args, "--sleep-ms");
    var rate = Num(args, "--rate");
    var recLat = (int)Num(args, "--rec-lat");
    var batch = Math.Max(1, (int)Num(args, "--batch"));
    await using var client = await JobClient.ConnectAsync(redisUrl);
    var options = new EnqueueOptions { Queue = "bench", MaxAttempts = 1 };
    var clock = Stopwatch.StartNew();
    for (var i = 0; i < n; i += batch)
    {
        if (batch > 1)
        {
            var count = Math.Min(batch, n - i);
            await client.EnqueueManyAsync("bench", Enumerable.Range(0, count).Select(_ => (object?)new BenchArgs(Kit.NowMs(), sleepMs, n, recLat)), options);
            continue;
        }
        await Kit.PaceAsync(clock, i, rate);
        await client.EnqueueAsync("bench", new BenchArgs(Kit.NowMs(), sleepMs, n, recLat), options);
    }
    Console.WriteLine($"enqueued={n} enqueue_seconds={clock.Elapsed.TotalSeconds:F3}");
    return 0;
}

static async Task<int> RunNode(string[] args, bool soak)
{
    var builder = Host.CreateApplicationBuilder(args);
    builder.Logging.ClearProviders().AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning).AddFilter("ClusterJobs.Node.WarmUp", LogLevel.Information);
    builder.Services.AddClusterJobs(o =>
    {
        NodeConfiguration.Apply(o, NodeConfiguration.CommandLine(args));
        o.Queues = ClusterJobsOptions.ParseQueues(soak ? Soak.Queue : "bench");
        o.RedisUrl ??= "redis://127.0.0.1:6390/0";
    }).AddTask<BenchTask>("bench").AddTask<SoakTask>("soak");
    builder.Services.AddSingleton(sp => new BenchMetrics(sp.GetRequiredService<RedisConnectionService>().Connection));
    using var host = builder.Build();
    return await ShutdownExit.RunAsync(host); // 3 when the cluster downed this node
}
