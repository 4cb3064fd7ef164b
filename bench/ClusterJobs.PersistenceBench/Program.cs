using System.Globalization;
using ClusterJobs.PersistenceBench;

// Throughput of the Redis Akka.Persistence plugin (src/Persistence.Redis), measured like Akka's JournalPerfSpec
// (the suite behind Akka.Persistence.Redis's published figures): N persistent actors each persist M events, all
// commands sent up front, the clock stops when every actor has handled its last event. Per mode: warm-up, then
// --reps timed repetitions, one line each, then the median. docs/benchmarks.md explains the figures.
//
//   dotnet run -c Release --project bench/ClusterJobs.PersistenceBench -- [--actors 10] [--events M | --seconds 2]
//       [--batch 100] [--reps 3] [--warmup 5] [--modes Persist,PersistAll,PersistAsync,PersistAllAsync,Recovery]
//       [--redis redis://127.0.0.1:6395] [--timeout 60] [--journal redis|memory] [--probe]
//
// Modes: Persist = one event per command, the next command waits for the write (normal Persist semantics);
// PersistAll = --batch events per command; PersistAsync / PersistAllAsync = the same without waiting; Recovery =
// fresh incarnations of N actors replaying M events each. Warm-up: rounds until --warmup seconds (default 5) have
// passed, at least one. With --events M every round uses M events per actor. Without it the first warm-up round
// uses 1,000 per actor and each warm-up round resizes the next so that one repetition takes about --seconds
// (default 2).
// --journal memory runs the same actors on Akka's in-memory journal and snapshot store (no Redis): Akka's own cost.
// --probe first times sequential round trips without Akka: PING, the append script by EVAL (as the journal sends it)
// and by EVALSHA.
//
// Without --redis or REDIS_URL it starts a private redis-server on 127.0.0.1:6395 (no RDB, no AOF) and stops it by
// PID at the end. Keys go under a per-run prefix (cj:bench:<run>) and are deleted at the end.

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
Options? options;
try { options = Options.Parse(args); }
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine(ex.Message);
    return 2;
}
if (options is null) return 2;

PrivateRedis? server = null;
var redisUrl = options.Redis ?? (Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } env ? env : null);
if (redisUrl is null && !options.Memory)
{
    try { server = await PrivateRedis.StartAsync(6395); }
    catch (Exception ex)
    {
        Console.Error.WriteLine(ex.Message);
        return 1;
    }
    redisUrl = server.Url;
    Console.WriteLine($"# started private redis-server pid={server.Pid} on {server.Url}");
}
Console.CancelKeyPress += (_, _) => server?.Dispose();
AppDomain.CurrentDomain.ProcessExit += (_, _) => server?.Dispose();

try
{
    return await Bench.Run(options, options.Memory ? null : redisUrl);
}
catch (Exception ex)
{
    Console.Error.WriteLine($"benchmark failed: {ex}");
    return 1;
}
finally
{
    if (server is not null)
    {
        var pid = server.Pid;
        server.Dispose();
        Console.WriteLine($"# stopped private redis-server pid={pid}");
    }
}
