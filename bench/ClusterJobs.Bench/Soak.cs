using System.Diagnostics;
using System.Text.Json.Serialization;
using ClusterJobs.BenchKit;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Protocol;
using StackExchange.Redis;

namespace ClusterJobs.Bench;

/// <summary>
/// The soak (bench/soak.sh): a producer enqueues jobs with known ids at a steady rate while nodes and Redis are killed
/// and restarted; at the end every job must have succeeded. Job i is <c>soak:s{i}</c>, so the check needs no list of ids
/// and a producer that retries an enqueue whose reply it lost cannot make a second job of it. Every 25th job splits into
/// four children, so the split's persistent coordinator lives through the kills too: its parent succeeds only once all
/// four have.
/// </summary>
public static class Soak
{
    public const string Queue = "soak";
    /// <summary>Per job id, how many times its handler ran to the end (metrics db 1): at least once each, more after kills.</summary>
    public const string DoneKey = "soak:done";

    public static string JobId(long i) => $"{Queue}:s{i}";

    /// <summary>
    /// Enqueues jobs 0, 1, ... at <paramref name="rate"/> for <paramref name="seconds"/>, each retried until Redis takes
    /// it (Redis may be down for a while): every job the run counts was acknowledged. Some fail their first attempt,
    /// some wait a countdown, and priorities vary, so retries and the schedule are under the kills too.
    /// </summary>
    public static async Task<int> ProduceAsync(string redisUrl, double rate, double seconds)
    {
        await using var client = await JobClient.ConnectAsync(redisUrl);
        var total = (long)(rate * seconds);
        var clock = Stopwatch.StartNew();
        long retries = 0;
        for (var i = 0L; i < total; i++)
        {
            await Kit.PaceAsync(clock, (int)i, rate);
            var (args, options) = Job(i);
            while (true)
            {
                try
                {
                    await client.EnqueueAsync("soak", args, options);
                    break;
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    // Redis down (a kill): the same id again later; a first call that did land makes this one a no-op.
                    retries++;
                    await Task.Delay(200);
                }
            }
        }
        Console.WriteLine($"soak enqueued={total} enqueue_retries={retries} seconds={clock.Elapsed.TotalSeconds:F1}");
        return 0;
    }

    /// <summary>
    /// Job i's arguments and options: a body of 0-150 ms, every tenth failing its first attempt, every 20th delayed 1-3 s,
    /// every 25th split into four children (none of these overlap).
    /// </summary>
    public static (SoakArgs Args, EnqueueOptions Options) Job(long i)
    {
        var options = new EnqueueOptions
        {
            Queue = Queue,
            JobIdSuffix = $"s{i}",
            Priority = (int)(i % 3),
            MaxAttempts = 10,
            Backoff = TimeSpan.FromMilliseconds(200),
            BackoffMax = TimeSpan.FromSeconds(1),
            Countdown = i % 20 == 7 ? TimeSpan.FromMilliseconds(1000 + i * 37 % 2000) : null,
        };
        return (new SoakArgs(i * 53 % 151, FailFirst: i % 10 == 3, Children: i % 25 == 11 ? 4 : 0), options);
    }

    /// <summary>
    /// Waits until every job 0..n-1 has ended (or <paramref name="timeout"/> passes), then prints one line and exits 1
    /// unless all succeeded and each handler ran to the end at least once.
    /// </summary>
    public static async Task<int> CheckAsync(string redisUrl, long n, TimeSpan timeout)
    {
        await using var client = await JobClient.ConnectAsync(redisUrl);
        using var metrics = await ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(redisUrl));
        var clock = Stopwatch.StartNew();
        Dictionary<JobState, long> states;
        long missing;
        while (true)
        {
            (states, missing) = await CountStatesAsync(client, n);
            var ended = states.Where(s => s.Key is JobState.Succeeded or JobState.Failed or JobState.DeadLettered or JobState.Cancelled).Sum(s => s.Value);
            if (ended + missing == n || clock.Elapsed > timeout) break;
            await Task.Delay(1000);
        }
        var runs = await metrics.GetDatabase(1).HashGetAllAsync(DoneKey);
        var ranById = runs.ToDictionary(e => (string)e.Name!, e => (long)e.Value);
        long neverRan = 0, again = 0, maxRuns = 0;
        for (var i = 0L; i < n; i++)
        {
            var count = ranById.GetValueOrDefault(JobId(i));
            if (count == 0) neverRan++;
            if (count > 1) again++;
            maxRuns = Math.Max(maxRuns, count);
        }
        var succeeded = states.GetValueOrDefault(JobState.Succeeded);
        var others = string.Join(' ', states.Where(s => s.Key != JobState.Succeeded).OrderBy(s => s.Key.ToString())
            .Select(s => $"{s.Key.ToString().ToLowerInvariant()}={s.Value}"));
        Console.WriteLine($"soak jobs={n} succeeded={succeeded} missing={missing} never_ran={neverRan} ran_again={again} " +
                          $"max_runs={maxRuns} settle_seconds={clock.Elapsed.TotalSeconds:F1}{(others.Length > 0 ? " " + others : "")}");
        return succeeded == n && neverRan == 0 ? 0 : 1;
    }

    private static async Task<(Dictionary<JobState, long> States, long Missing)> CountStatesAsync(JobClient client, long n)
    {
        var states = new Dictionary<JobState, long>();
        long missing = 0;
        const int window = 500;
        for (var from = 0L; from < n; from += window)
        {
            var infos = await Task.WhenAll(Enumerable.Range(0, (int)Math.Min(window, n - from)).Select(k => client.GetAsync(JobId(from + k))));
            foreach (var info in infos)
            {
                if (info is null) { missing++; continue; }
                states[info.State] = states.GetValueOrDefault(info.State) + 1;
            }
        }
        return (states, missing);
    }
}

/// <summary>A soak job: how long its body waits, whether its first attempt throws, how many children it splits into.</summary>
public sealed record SoakArgs(
    [property: JsonPropertyName("sleep_ms")] long SleepMs,
    [property: JsonPropertyName("fail_first")] bool FailFirst,
    [property: JsonPropertyName("children")] int Children = 0);

/// <summary>
/// The soak's handler: waits, fails a first attempt when asked or splits when asked, then counts the run in
/// <see cref="Soak.DoneKey"/>.
/// </summary>
public sealed class SoakTask(BenchMetrics metrics) : IJobHandler<SoakArgs>
{
    public async Task HandleAsync(SoakArgs args, JobContext job, CancellationToken ct)
    {
        if (args.SleepMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(args.SleepMs), ct);
        if (args.FailFirst && job.Attempt == 1) throw new InvalidOperationException("soak: this job fails its first attempt");
        if (args.Children > 0)
            job.Split(Enumerable.Range(0, args.Children).Select(_ => new ChildJob(job.Task, args with { Children = 0 })));
        await metrics.Db.HashIncrementAsync(Soak.DoneKey, job.JobId);
    }
}
