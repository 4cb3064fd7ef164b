using System.Diagnostics;
using System.Globalization;
using ClusterJobs.BenchKit;
using ClusterJobs.HangfirePeer;
using Hangfire;
using Hangfire.Redis.StackExchange;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

// Hangfire 1.8 on its Redis storage (Hangfire.Redis.StackExchange) as a peer of the benchmark kit (../shared/bench-peers),
// set up as its documentation sets up a new application:
//   ClusterJobs.HangfirePeer produce --n N --sleep-ms S --rate R --rec-lat 0|1   BackgroundJobClient.Enqueue, one at a time
//   ClusterJobs.HangfirePeer server --workers W                                    a Hangfire server with W workers
// Broker: REDIS_URL (default the kit's redis://127.0.0.1:6390/0); metrics: the same server's db 1.
var redisUrl = Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } u ? u : "redis://127.0.0.1:6390/0";
return args.FirstOrDefault() switch
{
    "produce" => await Produce(redisUrl, (int)Num(args, "--n"), Num(args, "--sleep-ms"), Num(args, "--rate"), (int)Num(args, "--rec-lat")),
    "server" => await Serve(redisUrl, (int)Num(args, "--workers")),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: ClusterJobs.HangfirePeer produce --n N [--sleep-ms S] [--rate R] [--rec-lat 0|1] | server --workers W");
    return 2;
}

static double Num(string[] args, string name) =>
    Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : 0;

// redis://host:port/db -> the broker connection's configuration and database number
static (ConfigurationOptions Options, int Db) Parse(string redisUrl)
{
    var uri = new Uri(redisUrl);
    var options = ConfigurationOptions.Parse($"{uri.Host}:{(uri.Port > 0 ? uri.Port : 6379)}");
    var db = int.TryParse(uri.AbsolutePath.Trim('/'), out var d) ? d : 0;
    return (options, db);
}

static void UseRedis(IGlobalConfiguration config, IConnectionMultiplexer redis, int db) => config
    .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
    .UseSimpleAssemblyNameTypeSerializer()
    .UseRecommendedSerializerSettings()
    .UseRedisStorage(redis, new RedisStorageOptions { Db = db });

static async Task<int> Produce(string redisUrl, int n, double sleepMs, double rate, int recLat)
{
    var (options, db) = Parse(redisUrl);
    await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
    UseRedis(GlobalConfiguration.Configuration, redis, db);
    var client = new BackgroundJobClient(JobStorage.Current);
    var clock = Stopwatch.StartNew();
    for (var i = 0; i < n; i++)
    {
        await Kit.PaceAsync(clock, i, rate);
        var enqMs = Kit.NowMs();
        client.Enqueue(() => BenchJob.Run(enqMs, sleepMs, n, recLat));
    }
    Console.WriteLine($"enqueued={n} enqueue_seconds={clock.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)}");
    return 0;
}

static async Task<int> Serve(string redisUrl, int workers)
{
    var (options, db) = Parse(redisUrl);
    var redis = await ConnectionMultiplexer.ConnectAsync(options);
    BenchJob.UseMetrics(redis.GetDatabase(1));
    var builder = Host.CreateApplicationBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.Services.AddSingleton<IConnectionMultiplexer>(redis);
    builder.Services.AddHangfire(config => UseRedis(config, redis, db));
    builder.Services.AddHangfireServer(o =>
    {
        if (workers > 0) o.WorkerCount = workers; // else Hangfire's default: min(5 x cores, 20)
    });
    using var host = builder.Build();
    await host.RunAsync();
    return 0;
}
