using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using System.Text.Json;
using ClusterJobs.BenchKit;
using ClusterJobs.Node.Broker;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Bench;

/// <summary>
/// Latency floors for W2 (docs/benchmarks.md): what this machine and Redis allow before any job system adds its own
/// work, measured with the kit's producer pacing and the kit's job body.
/// <list type="bullet">
/// <item><c>blpop</c>: the least a Redis queue can do. The producer RPUSHes the payload to a list; one consumer blocked
/// in BLPOP runs the job body as soon as the pop returns. No lease, no record: a job is lost if the consumer dies.</item>
/// <item><c>take</c>: ClusterJobs' Redis protocol without the node: the real producer client, the wake message, the
/// node's Take script (lease and all) and its Complete script, from one plain loop with no actors and no thread hops
/// beyond the Redis client's own.</item>
/// </list>
/// </summary>
public static class Floors
{
    public const string ListKey = "floor:jobs";

    // Every connection of the floors reads its replies as the node's and the producer client's do: on the thread pool.
    private static ConfigurationOptions Options(string redisUrl) => RedisConnection.Options(redisUrl, "floor", RedisIoThreads.ThreadPool);

    /// <summary>The producer side of <c>blpop</c>: the kit's pacing, one awaited RPUSH per job.</summary>
    public static async Task<int> ProduceToList(string redisUrl, int n, double sleepMs, double rate, int recLat)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(Options(redisUrl));
        var db = redis.GetDatabase();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < n; i++)
        {
            await Kit.PaceAsync(clock, i, rate);
            await db.ListRightPushAsync(ListKey, JsonSerializer.SerializeToUtf8Bytes(new BenchArgs(Kit.NowMs(), sleepMs, n, recLat)));
        }
        Console.WriteLine($"enqueued={n} enqueue_seconds={clock.Elapsed.TotalSeconds:F3}");
        return 0;
    }

    /// <summary>The consumer side of <c>blpop</c>: a dedicated connection blocked in BLPOP, the job body inline.</summary>
    public static async Task<int> ConsumeList(string redisUrl, CancellationToken stop)
    {
        var options = Options(redisUrl);
        options.AsyncTimeout = 10_000; // the pop blocks up to 1 s; SE.Redis must not time it out first
        await using var blocking = await ConnectionMultiplexer.ConnectAsync(options);
        await using var metricsConnection = await ConnectionMultiplexer.ConnectAsync(Options(redisUrl));
        var body = new BenchTask(new BenchMetrics(metricsConnection));
        var db = blocking.GetDatabase();
        while (!stop.IsCancellationRequested)
        {
            var popped = await db.ExecuteAsync("BLPOP", ListKey, 1);
            if (popped.IsNull) continue;
            var payload = (byte[])((RedisResult[])popped!)[1]!;
            await body.HandleAsync(JsonSerializer.Deserialize<BenchArgs>(payload)!, null!, stop);
        }
        return 0;
    }

    /// <summary>
    /// <c>take</c>: wait for the queue's wake message (or 1 s), then Take up to 256 jobs, run their bodies and Complete
    /// them, until a take comes back short. The producer is the normal <c>produce</c> (the real client).
    /// </summary>
    public static async Task<int> TakeLoop(string redisUrl, CancellationToken stop)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(Options(redisUrl));
        var broker = new QueueBroker(redis, new RedisKeys(), "bench", "floor", new BrokerSettings());
        var body = new BenchTask(new BenchMetrics(redis));
        // Wakes coalesce: one pending wake is enough, since the take that follows takes everything there is.
        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        await redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(broker.Keys.WakeChannel), (_, _) => wake.Writer.TryWrite(true));
        while (!stop.IsCancellationRequested)
        {
            IReadOnlyList<TakenJob> jobs;
            do
            {
                jobs = (await broker.TakeAsync(256)).Jobs;
                var outcomes = new List<JobOutcome>(jobs.Count);
                foreach (var job in jobs)
                {
                    var envelope = ProtocolJson.DeserializeEnvelope(job.Envelope)!;
                    await body.HandleAsync(envelope.Args.Deserialize<BenchArgs>()!, null!, stop);
                    outcomes.Add(new JobOutcome.Succeeded(job.Id, "null"));
                }
                await broker.CompleteAsync(outcomes);
            } while (jobs.Count == 256);
            using var poll = CancellationTokenSource.CreateLinkedTokenSource(stop);
            poll.CancelAfter(TimeSpan.FromSeconds(1));
            try { await wake.Reader.WaitToReadAsync(poll.Token); }
            catch (OperationCanceledException) when (!stop.IsCancellationRequested) { } // the 1 s poll
            catch (OperationCanceledException) { break; }
            wake.Reader.TryRead(out _);
        }
        return 0;
    }

    private static PosixSignalRegistration? _sigterm; // kept reachable: a collected registration unregisters itself

    /// <summary>A token cancelled by SIGTERM or Ctrl-C (how the kit stops its workers).</summary>
    public static CancellationToken StopOnSigterm()
    {
        var stop = new CancellationTokenSource();
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        return stop.Token;
    }
}
