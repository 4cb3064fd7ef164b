using System.Diagnostics;
using Akka.Hosting;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClusterJobs.Node.WarmUp;

/// <summary>
/// Runs <see cref="ClusterJobsOptions.WarmUpJobs"/> throwaway jobs through the whole job path (enqueue, ingress, router,
/// pool, worker, result writer, every message through the serializer) before this node joins its cluster, so the
/// runtime has compiled that code before the first real job arrives. It matters when the node runs JIT-compiled code
/// (DOTNET_ReadyToRun=0, as the image does): otherwise the first jobs of a fresh node wait for the compiler.
/// <para>
/// The jobs run in a private one-node cluster inside this process (actor system <c>clusterjobs-warmup</c>, its own
/// loopback port, no seeds) on the same Redis, under a key prefix of their own, deleted afterwards
/// (<see cref="WarmUpKeys"/>). No user handler runs and no user queue is touched. A warm-up that fails or overruns
/// <see cref="ClusterJobsOptions.WarmUpTimeout"/> is logged and skipped (its private node gets 10 s more to stop):
/// the node starts anyway.
/// </para>
/// </summary>
public sealed class JobPathWarmUp(IOptions<ClusterJobsOptions> options, RedisConnectionService redis, ILoggerFactory loggers)
    : IHostedService
{
    public const string SystemName = "clusterjobs-warmup";
    public const string Queue = "warmup";
    /// <summary>A warm-up registered longer ago than this belonged to a node that died in it; its keys are deleted.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(10);
    private static readonly RetryPolicy NoRetries = new() { MaxRetries = 0 };
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private readonly ILogger _logger = loggers.CreateLogger<JobPathWarmUp>();

    /// <summary>What the warm-up did; null when it is off or did not finish.</summary>
    public WarmUpReport? Report { get; private set; }

    /// <summary>
    /// Deleting the warm-up's keys (by name), and those of stale warm-ups (a scan of the keyspace, when there are any),
    /// beside the node's start; stopping the node waits for it.
    /// </summary>
    public Task Cleanup { get; private set; } = Task.CompletedTask;

    private bool _stoppedCleanly = true;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (settings.WarmUpJobs == 0) return;
        var clock = Stopwatch.StartNew();
        WarmUpKeys? keys = null;
        string? prefix = null;
        try
        {
            keys = new WarmUpKeys(redis.Connection, settings.KeyPrefix);
            prefix = await keys.RegisterAsync().ConfigureAwait(false);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(settings.WarmUpTimeout);
            await RunAsync(settings, prefix, deadline.Token).ConfigureAwait(false);
            Report = new WarmUpReport(settings.WarmUpJobs, clock.Elapsed);
            _logger.LogInformation("Warm-up: {Jobs} jobs through the job path in {Ms} ms, before joining the cluster",
                settings.WarmUpJobs, clock.ElapsedMilliseconds);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _logger.LogInformation("Warm-up cancelled: the node is stopping");
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Warm-up failed or did not finish within {Timeout}; the node starts without it (its first jobs wait for the JIT compiler)",
                settings.WarmUpTimeout);
        }
        finally
        {
            if (keys is not null) Cleanup = CleanUpAsync(keys, prefix, settings.WarmUpJobs, keepEntry: !_stoppedCleanly);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Cleanup.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The host gave up waiting; what is left is deleted by a later warm-up.
        }
    }

    private async Task RunAsync(ClusterJobsOptions settings, string prefix, CancellationToken ct)
    {
        var jobs = settings.WarmUpJobs;
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton(new WarmUpProgress(jobs));
        // The private node's warnings and errors go to this node's log (say, why its actor system did not start).
        // Akka's own warnings there (a singleton proxy that has not found its router yet) are noise: errors only.
        builder.Logging.AddProvider(new ForwardingLoggerProvider(loggers)).SetMinimumLevel(LogLevel.Warning).AddFilter("Akka", LogLevel.Error);
        builder.Services.AddClusterJobs(SystemName, o =>
            {
                // The node's own settings where they decide which code runs (batch sizes, read-ahead, slots).
                o.RedisUrl = redis.Url;
                o.KeyPrefix = prefix;
                o.Queues = [new ServedQueue(Queue, int.MaxValue)];
                o.Concurrency = settings.Concurrency;
                o.ReadAhead = settings.ReadAhead;
                o.GrantToLocalPools = true; // both ways of taking: grants (as on a node without the router) and the router's
                o.LeaseDuration = settings.LeaseDuration;
                o.MaxPayloadBytes = settings.MaxPayloadBytes;
                o.PollInterval = settings.PollInterval;
                o.MaxRunaways = 0;
                o.DrainGrace = TimeSpan.FromSeconds(1);
                // Should the keys outlive a crash before the sweep, the finished jobs still expire soon.
                o.ResultTtl = TimeSpan.FromMinutes(5);
                o.Cluster = new ClusterBootstrap { Host = "127.0.0.1", Port = 0 };
            },
            // Every message through the serializer, as remote ones go between nodes. On leaving, the router's singleton
            // manager has no node to hand over to and waits a retry interval (1 s) before it stops the router: 50 ms here.
            (akka, _) => akka.AddHocon("""
                akka.actor.serialize-messages = on
                akka.loglevel = WARNING
                akka.cluster.singleton.hand-over-retry-interval = 50ms
                """, HoconAddMode.Prepend))
            .AddTask<WarmUpTask>(WarmUpTask.Name, NoRetries)
            .AddTask<WarmUpResultTask>(WarmUpResultTask.Name, NoRetries);
        var host = builder.Build();
        await using var disposeHost = (IAsyncDisposable)host; // its Redis connection service disposes only asynchronously
        try
        {
            // Inside the try: a start cut short by the deadline still stops what it started (actor system, port).
            await host.StartAsync(ct).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<JobClient>();
            // All queued first, as after a node's restart: the ingress takes them in full batches. Their ids are
            // chosen here, so the clean-up knows every key they can make without scanning for it.
            await Task.WhenAll(Enumerable.Range(0, jobs).Select(i => client.EnqueueAsync(
                i % 2 == 0 ? WarmUpTask.Name : WarmUpResultTask.Name, new WarmUpArgs(i, "warm-up", i / 2.0),
                new EnqueueOptions { Queue = Queue, MaxAttempts = 1, JobIdSuffix = WarmUpKeys.JobIdSuffix(i) }, ct))).ConfigureAwait(false);
            // Akka.Hosting stops the host instead of throwing when an actor system fails to start: do not wait for jobs then.
            var done = host.Services.GetRequiredService<WarmUpProgress>().AllDone;
            var stopping = Task.Delay(Timeout.Infinite, host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
            if (await Task.WhenAny(done, stopping).WaitAsync(ct).ConfigureAwait(false) != done)
                throw new InvalidOperationException("The warm-up's private node stopped before its jobs ran (its log lines are above).");
        }
        finally
        {
            using var stop = new CancellationTokenSource(StopTimeout);
            try
            {
                await host.StopAsync(stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Its actors may still write: its registry entry stays, so a later sweep deletes what they leave.
                _stoppedCleanly = false;
                _logger.LogWarning("The warm-up's private node did not stop within {Timeout}", StopTimeout);
            }
        }
    }

    private async Task CleanUpAsync(WarmUpKeys keys, string? prefix, int jobs, bool keepEntry)
    {
        try
        {
            await Task.Yield(); // off the start path
            var swept = await keys.CleanUpAsync(prefix, jobs, keepEntry, StaleAfter).ConfigureAwait(false);
            if (swept > 0) _logger.LogInformation("Deleted the keys of {Count} warm-ups that never finished (their nodes died in them)", swept);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Could not delete the keys of warm-ups under {Prefix}:warmup:*; a later warm-up tries again", options.Value.KeyPrefix);
        }
    }

    /// <summary>Hands the private node's log lines to this node's logger factory.</summary>
    private sealed class ForwardingLoggerProvider(ILoggerFactory target) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => target.CreateLogger(categoryName);
        public void Dispose() { }
    }
}

/// <summary>A finished warm-up: how many jobs it ran and how long it took, start-up of its private node included.</summary>
public sealed record WarmUpReport(int Jobs, TimeSpan Elapsed);
