using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;

namespace ClusterJobs.PersistenceBench;

/// <summary>
/// What Redis and this process did during one repetition, from INFO commandstats / cpu / stats deltas and this
/// process's CPU time. On a Redis shared with other clients the Redis-side figures include their traffic too.
/// Commands run inside a script count in commandstats too, so <see cref="AllCalls"/> includes them. Client round trips
/// are EVAL calls (appends, snapshot loads) and, when nothing else writes, GET (highest sequence number) and
/// ZRANGEBYSCORE (replay pages): the append script's own GET happens only during writes.
/// </summary>
public sealed record Sample(
    long EvalCalls, long EvalUsec, long ReadCalls, long AllCalls,
    double RedisCpuSeconds, long NetInputBytes, long NetOutputBytes, TimeSpan BenchCpu)
{
    public static async Task<Sample> Take(IDatabase? db)
    {
        if (db is null) return new Sample(0, 0, 0, 0, 0, 0, 0, Process.GetCurrentProcess().TotalProcessorTime);
        var info = (string)(await db.ExecuteAsync("INFO", "commandstats", "cpu", "stats"))!;
        long evalCalls = 0, evalUsec = 0, readCalls = 0, allCalls = 0, netIn = 0, netOut = 0;
        double cpu = 0;
        foreach (var raw in info.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("cmdstat_", StringComparison.Ordinal))
            {
                var colon = line.IndexOf(':');
                var name = line[8..colon];
                long calls = 0, usec = 0;
                foreach (var kv in line[(colon + 1)..].Split(','))
                {
                    var eq = kv.IndexOf('=');
                    if (eq < 0) continue;
                    var key = kv[..eq];
                    if (key == "calls") calls = long.Parse(kv[(eq + 1)..], CultureInfo.InvariantCulture);
                    else if (key == "usec") usec = long.Parse(kv[(eq + 1)..], CultureInfo.InvariantCulture);
                }
                if (name == "info") continue; // our own probes
                allCalls += calls;
                if (name == "eval") { evalCalls = calls; evalUsec = usec; }
                else if (name is "get" or "zrangebyscore") readCalls += calls;
            }
            else if (line.StartsWith("used_cpu_sys:", StringComparison.Ordinal) || line.StartsWith("used_cpu_user:", StringComparison.Ordinal))
                cpu += double.Parse(line[(line.IndexOf(':') + 1)..], CultureInfo.InvariantCulture);
            else if (line.StartsWith("total_net_input_bytes:", StringComparison.Ordinal))
                netIn = long.Parse(line[(line.IndexOf(':') + 1)..], CultureInfo.InvariantCulture);
            else if (line.StartsWith("total_net_output_bytes:", StringComparison.Ordinal))
                netOut = long.Parse(line[(line.IndexOf(':') + 1)..], CultureInfo.InvariantCulture);
        }
        return new Sample(evalCalls, evalUsec, readCalls, allCalls, cpu, netIn, netOut, Process.GetCurrentProcess().TotalProcessorTime);
    }

    public static Sample operator -(Sample a, Sample b) => new(
        a.EvalCalls - b.EvalCalls, a.EvalUsec - b.EvalUsec, a.ReadCalls - b.ReadCalls, a.AllCalls - b.AllCalls,
        a.RedisCpuSeconds - b.RedisCpuSeconds, a.NetInputBytes - b.NetInputBytes, a.NetOutputBytes - b.NetOutputBytes, a.BenchCpu - b.BenchCpu);
}
