using System.Globalization;

namespace ClusterJobs.PersistenceBench;

/// <summary>The command line (see Program.cs).</summary>
public sealed record Options(int Actors, int? Events, double Seconds, int Batch, int Reps, double WarmupSeconds, Mode[] Modes, string? Redis, TimeSpan Timeout, bool Memory = false, bool Probe = false)
{
    public static Options? Parse(string[] args)
    {
        var o = new Options(10, null, 2, 100, 3, 5, Enum.GetValues<Mode>(), null, TimeSpan.FromSeconds(60));
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--actors": o = o with { Actors = Positive(Next()) }; break;
                case "--events": o = o with { Events = Positive(Next()) }; break;
                case "--seconds": o = o with { Seconds = double.Parse(Next(), CultureInfo.InvariantCulture) is var sec and > 0 ? sec : throw new ArgumentException("--seconds must be positive") }; break;
                case "--journal":
                    o = Next() switch
                    {
                        "redis" => o with { Memory = false },
                        "memory" => o with { Memory = true },
                        var j => throw new ArgumentException($"--journal {j}: redis or memory"),
                    };
                    break;
                case "--probe": o = o with { Probe = true }; break;
                case "--batch": o = o with { Batch = Positive(Next()) }; break;
                case "--reps": o = o with { Reps = Positive(Next()) }; break;
                case "--warmup": o = o with { WarmupSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--redis": o = o with { Redis = Next() }; break;
                case "--timeout": o = o with { Timeout = TimeSpan.FromSeconds(Positive(Next())) }; break;
                case "--modes":
                    o = o with { Modes = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(m => Enum.Parse<Mode>(m, ignoreCase: true)).ToArray() };
                    break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}");
                    Console.Error.WriteLine("usage: [--actors N] [--events M | --seconds S] [--batch B] [--reps R] [--warmup SECONDS] [--modes Persist,PersistAll,PersistAsync,PersistAllAsync,Recovery] [--redis URL] [--timeout S] [--journal redis|memory] [--probe]");
                    return null;
            }
        }
        return o;
    }

    private static int Positive(string s) =>
        int.Parse(s, CultureInfo.InvariantCulture) is var v and > 0 ? v : throw new ArgumentException($"'{s}' must be a positive number");
}
