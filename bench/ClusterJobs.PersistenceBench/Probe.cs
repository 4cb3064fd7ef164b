using System.Diagnostics;
using System.Reflection;
using ClusterJobs.Persistence.Redis.Journal;
using StackExchange.Redis;

namespace ClusterJobs.PersistenceBench;

/// <summary>
/// --probe: what one sequential round trip costs from this process, without Akka: PING, the journal's append script
/// sent as the plugin sends it (EVAL with the script text), and the same script by SHA (EVALSHA). One event of
/// ~120 bytes per call. The floor under one-actor Persist, which waits for each write before the next.
/// </summary>
public static class Probe
{
    private const int Calls = 1000, Rounds = 5;

    public static async Task Run(IDatabase db, string prefix)
    {
        var script = (string)typeof(RedisJournal).Assembly
            .GetType("ClusterJobs.Persistence.Redis.Journal.JournalScripts")!
            .GetField("Append", BindingFlags.Public | BindingFlags.Static)!
            .GetRawConstantValue()!;
        var entry = new byte[120];
        Random.Shared.NextBytes(entry);

        var server = db.Multiplexer.GetServer(db.Multiplexer.GetEndPoints()[0]);
        var sha = await server.ScriptLoadAsync(script);
        RedisKey[] evalKeys = [$"{prefix}:probe:{{eval}}:events", $"{prefix}:probe:{{eval}}:highest"];
        RedisKey[] shaKeys = [$"{prefix}:probe:{{evalsha}}:events", $"{prefix}:probe:{{evalsha}}:highest"];
        long evalSeq = 1, shaSeq = 1;
        var variants = new (string Name, Func<Task> Call)[]
        {
            ("PING", () => db.PingAsync()),
            ($"append EVAL (script text, {script.Length} chars, as the journal sends it)", () => { var i = evalSeq++; return db.ScriptEvaluateAsync(script, evalKeys, [i, i, entry], CommandFlags.NoScriptCache); }),
            ("append EVALSHA (same script by SHA1)", () => { var i = shaSeq++; return db.ScriptEvaluateAsync(sha, shaKeys, [i, i, entry]); }),
        };
        // Interleaved rounds, median per variant: a busy machine moves every variant alike.
        var samples = variants.Select(_ => new List<double>()).ToArray();
        for (var round = 0; round < Rounds + 1; round++)
            for (var v = 0; v < variants.Length; v++)
            {
                var us = await Time(variants[v].Call);
                if (round > 0) samples[v].Add(us); // round 0 warms up
            }
        for (var v = 0; v < variants.Length; v++)
        {
            var median = samples[v].Order().ElementAt(samples[v].Count / 2);
            Console.WriteLine($"# probe: sequential {variants[v].Name}: {median:F1} us per round trip ({1e6 / median:F0}/s), median of {Rounds} x {Calls}");
        }
        await db.KeyDeleteAsync([.. evalKeys, .. shaKeys]);
    }

    /// <summary>Mean microseconds per call over <see cref="Calls"/> sequential calls.</summary>
    private static async Task<double> Time(Func<Task> call)
    {
        var clock = Stopwatch.StartNew();
        for (var n = 0; n < Calls; n++) await call();
        return clock.Elapsed.TotalMicroseconds / Calls;
    }
}
