using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Hosting;
using ClusterJobs.Persistence.Redis.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using StackExchange.Redis;
using RedisConnection = ClusterJobs.Protocol.RedisConnection;
using RedisKeys = ClusterJobs.Persistence.Redis.RedisKeys;

namespace ClusterJobs.PersistenceBench;

/// <summary>Runs the modes against one ActorSystem and prints one line per round, the medians and a Markdown table.</summary>
public static class Bench
{
    public static async Task<int> Run(Options o, string? redisUrl)
    {
        var run = $"{DateTime.UtcNow:yyyyMMddHHmmss}-{Random.Shared.Next(0x10000):x4}";
        var prefix = $"cj:bench:{run}";
        var keys = new RedisKeys(prefix);
        // The benchmark's own connection: INFO before and after each repetition, checks, probe, cleanup.
        await using var redis = redisUrl is null ? null : await RedisConnection.ConnectAsync(redisUrl, "persistence-bench-probe");
        var db = redis?.GetDatabase();
        if (db is null) Console.WriteLine("# journal=memory (Akka.Persistence in-memory journal and snapshot store, no Redis)");
        else
        {
            var serverInfo = (string)(await db.ExecuteAsync("INFO", "server"))!;
            var version = serverInfo.Split('\n').FirstOrDefault(l => l.StartsWith("redis_version:"))?.Trim()[14..] ?? "?";
            Console.WriteLine($"# journal=redis redis={RedisConnection.Redact(redisUrl!)} redis_version={version} key_prefix={prefix}");
        }
        Console.WriteLine($"# actors={o.Actors} events_per_actor={(o.Events is { } fixedEvents ? fixedEvents.ToString() : $"auto (~{o.Seconds} s per repetition)")} batch={o.Batch} warmup_s={o.WarmupSeconds} reps={o.Reps} " +
                          $"cpus={Environment.ProcessorCount} runtime={System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription} loadavg={LoadAverage()}");
        if (o.Probe && db is not null) await Probe.Run(db, prefix);

        var host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka("persistence-bench", (builder, _) =>
            {
                builder.AddHocon("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING", HoconAddMode.Prepend);
                if (redisUrl is not null) builder.WithRedisPersistence(redisUrl, keyPrefix: prefix);
                else builder.AddHocon("""
                    akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
                    akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
                    """, HoconAddMode.Prepend);
            }))
            .Build();
        await host.StartAsync();
        var system = host.Services.GetRequiredService<ActorSystem>();
        var medians = new List<(Mode Mode, int Events, double Seconds, double Rate)>(); // Events: per actor
        try
        {
            foreach (var mode in o.Modes)
            {
                var (perActor, results) = mode == Mode.Recovery
                    ? await Recovery(system, db, o)
                    : await Write(system, db, keys, o, mode);
                var sorted = results.OrderBy(r => r).ToArray();
                var seconds = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
                var total = o.Actors * perActor;
                medians.Add((mode, perActor, seconds, total / seconds));
                Console.WriteLine($"median mode={mode} actors={o.Actors} events={total} seconds={seconds:F3} events_per_s={total / seconds:F0}");
            }
            Console.WriteLine($"# loadavg={LoadAverage()}");
            Console.WriteLine();
            Console.WriteLine($"| mode | actors × events | median s | median events/s |");
            Console.WriteLine($"|---|---|---|---|");
            foreach (var m in medians)
                Console.WriteLine($"| {m.Mode} | {o.Actors} × {m.Events:N0} | {m.Seconds:F3} | {m.Rate:N0} |");
            return 0;
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
            if (redis is not null) await DeleteKeys(redis, prefix);
        }
    }

    /// <summary>Deletes every key under the run's prefix (SCAN, never KEYS).</summary>
    private static async Task DeleteKeys(IConnectionMultiplexer redis, string prefix)
    {
        var db = redis.GetDatabase();
        var deleted = 0L;
        foreach (var endpoint in redis.GetEndPoints())
        {
            var server = redis.GetServer(endpoint);
            if (server.IsReplica) continue;
            var batch = new List<RedisKey>();
            await foreach (var key in server.KeysAsync(db.Database, $"{prefix}:*", pageSize: 1000))
            {
                batch.Add(key);
                if (batch.Count == 500) { deleted += await db.KeyDeleteAsync(batch.ToArray()); batch.Clear(); }
            }
            if (batch.Count > 0) deleted += await db.KeyDeleteAsync(batch.ToArray());
        }
        Console.WriteLine($"# deleted {deleted} keys under {prefix}");
    }

    /// <summary>Events per actor for a repetition of about <c>--seconds</c>, from the rate of the round just run.</summary>
    private static int Calibrate(Options o, double eventsPerSecond, int multipleOf)
    {
        var perActor = eventsPerSecond * o.Seconds / o.Actors;
        var rounded = (long)Math.Ceiling(perActor / multipleOf) * multipleOf;
        return (int)Math.Clamp(rounded, Math.Max(100, multipleOf), 5_000_000);
    }

    /// <summary>
    /// Warm-up rounds until <c>--warmup</c> seconds have passed (at least one), then <c>--reps</c> timed rounds; returns
    /// the events per actor of the timed rounds and their seconds. Without <c>--events</c>, the first round uses 1,000
    /// events per actor and each warm-up round resizes the next so it takes about <c>--seconds</c>. When the size can
    /// only grow (recovery: stored events), <paramref name="grow"/> is called and a smaller size is ignored.
    /// </summary>
    private static async Task<(int EventsPerActor, List<double> Seconds)> Drive(Options o, Mode mode, IDatabase? db, int multipleOf,
        Func<int, Task> round, Func<int, int, Task>? grow = null)
    {
        var perActor = o.Events ?? 1000;
        var warm = Stopwatch.StartNew();
        var seconds = new List<double>();
        for (var n = 0; ; n++)
        {
            var warming = n == 0 || warm.Elapsed.TotalSeconds < o.WarmupSeconds;
            if (!warming && seconds.Count == o.Reps) break;
            var before = await Sample.Take(db);
            var clock = Stopwatch.StartNew();
            await round(perActor);
            clock.Stop();
            var delta = await Sample.Take(db) - before;
            Report(mode, o, db is null, warming ? "warmup " : "", perActor, clock.Elapsed.TotalSeconds, delta);
            if (!warming) { seconds.Add(clock.Elapsed.TotalSeconds); continue; }
            if (o.Events is not null) continue;
            var wanted = Calibrate(o, o.Actors * perActor / clock.Elapsed.TotalSeconds, multipleOf);
            if (grow is null) perActor = wanted;
            else if (wanted > perActor * 1.2)
            {
                await grow(perActor, wanted);
                perActor = wanted;
            }
        }
        return (perActor, seconds);
    }

    /// <summary>Persist / PersistAll / PersistAsync / PersistAllAsync on N long-lived actors; events carry on across rounds.</summary>
    private static async Task<(int EventsPerActor, List<double> Seconds)> Write(ActorSystem system, IDatabase? db, RedisKeys keys, Options o, Mode mode)
    {
        var pids = Enumerable.Range(1, o.Actors).Select(i => $"{mode}-{i}").ToArray();
        var actors = pids.Select(pid => system.ActorOf(Props.Create(() => new BenchActor(pid, null, 0)))).ToArray();
        // A persistent actor answers only once recovered: the clock never includes recovery.
        await Task.WhenAll(actors.Select(a => a.Ask<long>(Ping.Instance, TimeSpan.FromSeconds(30))));
        var perCommand = mode is Mode.PersistAll or Mode.PersistAllAsync ? o.Batch : 1;
        long next = 1;
        var result = await Drive(o, mode, db, perCommand, async perActor =>
        {
            // All commands go out up front, round-robin over the actors; the round ends when every actor has handled
            // its last event.
            var latch = new Latch(actors.Length);
            foreach (var a in actors) a.Tell(new Arm(next + perActor - 1, latch));
            for (var from = next; from < next + perActor; from += perCommand)
            {
                var work = new Work(mode, from, (int)Math.Min(perCommand, next + perActor - from));
                foreach (var a in actors) a.Tell(work);
            }
            await Await(latch, o.Timeout, mode);
            next += perActor;
        });
        // Everything the handlers confirmed is in Redis: highest and event count per actor.
        var expected = next - 1;
        foreach (var pid in db is null ? [] : pids)
        {
            var highest = (long)await db!.StringGetAsync(keys.Highest(pid));
            var stored = await db.SortedSetLengthAsync(keys.Events(pid));
            if (highest != expected || stored != expected)
                throw new InvalidOperationException($"{pid}: Redis holds highest={highest} events={stored}, expected {expected}.");
        }
        await Task.WhenAll(actors.Select(a => a.GracefulStop(TimeSpan.FromSeconds(10))));
        return result;
    }

    /// <summary>Persists events (after, to] for every actor with PersistAll (untimed).</summary>
    private static async Task Seed(ActorSystem system, string[] pids, Options o, long after, long to)
    {
        if (to <= after) return;
        var writers = pids.Select(pid => system.ActorOf(Props.Create(() => new BenchActor(pid, null, 0)))).ToArray();
        var seeded = new Latch(writers.Length);
        foreach (var a in writers) a.Tell(new Arm(to, seeded));
        for (var from = after + 1; from <= to; from += o.Batch)
        {
            var work = new Work(Mode.PersistAll, from, (int)Math.Min(o.Batch, to - from + 1));
            foreach (var a in writers) a.Tell(work);
        }
        await Await(seeded, TimeSpan.FromTicks(o.Timeout.Ticks * 4), Mode.Recovery);
        await Task.WhenAll(writers.Select(a => a.GracefulStop(TimeSpan.FromSeconds(10))));
    }

    /// <summary>Seeds M events for each of N actors (untimed), then times fresh incarnations replaying them all.</summary>
    private static async Task<(int EventsPerActor, List<double> Seconds)> Recovery(ActorSystem system, IDatabase? db, Options o)
    {
        var pids = Enumerable.Range(1, o.Actors).Select(i => $"Recovery-{i}").ToArray();
        await Seed(system, pids, o, 0, o.Events ?? 1000);
        return await Drive(o, Mode.Recovery, db, o.Batch, async perActor =>
            {
                // The clock runs from creating the actors until every one has replayed all its events
                // (snapshot load, highest sequence number, replay pages).
                var latch = new Latch(pids.Length);
                var actors = pids.Select(pid => system.ActorOf(Props.Create(() => new BenchActor(pid, latch, perActor)))).ToArray();
                try { await Await(latch, o.Timeout, Mode.Recovery); }
                finally { await Task.WhenAll(actors.Select(a => a.GracefulStop(TimeSpan.FromSeconds(10)))); }
            },
            grow: (stored, wanted) => Seed(system, pids, o, stored, wanted));
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch { return "?"; }
    }

    private static async Task Await(Latch latch, TimeSpan timeout, Mode mode)
    {
        if (await Task.WhenAny(latch.Task, Task.Delay(timeout)) != latch.Task)
            throw new TimeoutException($"{mode}: not done within {timeout.TotalSeconds:F0} s (raise --timeout or lower --events).");
        await latch.Task; // rethrows an ordering or persistence failure
    }

    private static void Report(Mode mode, Options o, bool memory, string label, int perActor, double seconds, Sample d)
    {
        var events = o.Actors * perActor;
        var redis = memory ? ""
            : (mode == Mode.Recovery
                ? $" round_trips={d.EvalCalls + d.ReadCalls} evals={d.EvalCalls} reads={d.ReadCalls} events_per_round_trip={events / (double)Math.Max(1, d.EvalCalls + d.ReadCalls):F1}"
                : $" evals={d.EvalCalls} events_per_eval={events / (double)Math.Max(1, d.EvalCalls):F1} redis_us_per_eval={(d.EvalCalls > 0 ? d.EvalUsec / (double)d.EvalCalls : 0):F1}")
              + $" redis_cmds={d.AllCalls} bytes_to_redis_per_event={d.NetInputBytes / (double)events:F0} redis_cpu={d.RedisCpuSeconds / seconds * 100:F0}%";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label}mode={mode} actors={o.Actors} events={events} seconds={seconds:F3} events_per_s={events / seconds:F0}" +
            $"{redis} bench_cpu={d.BenchCpu.TotalSeconds / seconds * 100:F0}%"));
    }
}
