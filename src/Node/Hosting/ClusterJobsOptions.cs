using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Hosting;

/// <summary>Everything a node is configured with; see README.md for the matching environment variables.</summary>
public sealed class ClusterJobsOptions
{
    /// <summary>redis:// URL (REDIS_URL). Null starts an embedded in-process Garnet server on loopback instead.</summary>
    public string? RedisUrl { get; set; }
    public string KeyPrefix { get; set; } = RedisKeys.DefaultPrefix;
    /// <summary>Queues this node serves, highest priority first. Empty: the node serves no queue (a producer-only host).</summary>
    public List<ServedQueue> Queues { get; set; } = [new(JobDefaults.Queue, int.MaxValue)];
    /// <summary>Jobs this node runs at once, shared by its queues in priority order.</summary>
    public int Concurrency { get; set; } = 16;
    /// <summary>On SIGTERM: how long running jobs may take to finish before they are handed back to their queues.</summary>
    public TimeSpan DrainGrace { get; set; } = TimeSpan.FromSeconds(20);
    /// <summary>8 s: renewed every 2 s, so a dead node's jobs return to the queue 6-9 s after it dies.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(8);
    public TimeSpan ResultTtl { get; set; } = JobDefaults.ResultTtl;
    /// <summary>
    /// Jobs a queue's router leases ahead of demand while the queue is busy (at most what went to workers in the last
    /// 100 ms), so a freed slot does not wait for a Redis round trip; held jobs go back after a quarter of the lease.
    /// 0 turns it off. (A job's <c>started_at</c> is when it was leased while it runs, and when its handler started once
    /// it has finished.)
    /// </summary>
    public int ReadAhead { get; set; } = Ingress.QueueIngressSettings.DefaultMaxBatch;
    /// <summary>
    /// At start-up, how long the node keeps trying to reach Redis when nothing answers (compose started it first, Redis
    /// is restarting), as a Celery worker retries its broker, before it exits with code 2 (CLUSTERJOBS_REDIS_WAIT_SECONDS).
    /// A refused password is not waited out. Zero: one try.
    /// </summary>
    public TimeSpan RedisStartupWait { get; set; } = TimeSpan.FromSeconds(60);
    public int MaxPayloadBytes { get; set; } = JobDefaults.MaxPayloadBytes;
    /// <summary>
    /// The threads that read the node's Redis connections (CLUSTERJOBS_REDIS_IO): the .NET thread pool by default,
    /// which did 10-20% more jobs per second than StackExchange.Redis's dedicated threads (docs/benchmarks.md).
    /// </summary>
    public RedisIoThreads RedisIo { get; set; } = RedisIoThreads.ThreadPool;
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);
    public int MaxLostDeliveries { get; set; } = 5;
    /// <summary>
    /// Abandoned handlers (past their hard limit or cancelled, yet still running) this node tolerates. Past it the node
    /// recycles itself, like Celery's max-tasks-per-child: it leaves the cluster and exits with code 75 so its
    /// supervisor (docker, systemd) starts a fresh process. 0 turns recycling off.
    /// </summary>
    public int MaxRunaways { get; set; } = 16;
    public ClusterBootstrap Cluster { get; set; } = new();
    /// <summary>
    /// Port of the operator dashboard and HTTP API (CLUSTERJOBS_HTTP_PORT); null (default): none. 0 picks a free port.
    /// Any node can serve them, one that serves no queue too (README.md, "Operating a cluster").
    /// </summary>
    public int? HttpPort { get; set; }
    /// <summary>The address the dashboard listens on (CLUSTERJOBS_HTTP_HOST): an IP, <c>localhost</c> or <c>*</c> (every address).
    /// 127.0.0.1 by default, so a laptop's node is not open to its network; a container sets <c>*</c>.</summary>
    public string HttpHost { get; set; } = "127.0.0.1";
    /// <summary>When set (CLUSTERJOBS_HTTP_TOKEN), every call of the API but its health check needs
    /// <c>Authorization: Bearer &lt;token&gt;</c> (the dashboard asks for it).</summary>
    public string? HttpToken { get; set; }
    /// <summary>
    /// Host names the dashboard answers to (CLUSTERJOBS_HTTP_ALLOWED_HOSTS, comma-separated; a request naming another is
    /// refused, which stops a web page whose name was made to point here, DNS rebinding). Empty: the loopback names
    /// when it listens on loopback, else any.
    /// </summary>
    public List<string> HttpAllowedHosts { get; set; } = [];
    /// <summary>
    /// Throwaway jobs run through the job path before the node joins its cluster, so its code is compiled before the
    /// first real job (JobPathWarmUp; worth it when the node runs JIT-compiled code, as the image does). 0 (default): none.
    /// </summary>
    public int WarmUpJobs { get; set; }
    /// <summary>A warm-up that takes longer is abandoned and the node starts without it (1 s to 5 min: a warm-up
    /// registered 10 min ago counts as one whose node died, and its keys are deleted).</summary>
    public TimeSpan WarmUpTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The warm-up's private node only: its one pool gets grants as a pool on another node would, so the job path of
    /// a node that takes its own share (taker, Grant, Took) is compiled before the node joins, besides the router's.
    /// </summary>
    internal bool GrantToLocalPools { get; set; }

    /// <summary>How long a served queue's router may stay out of this node's reach before the node warns (specs shorten it).</summary>
    internal TimeSpan RouterLookupWarningAfter { get; set; } = Routing.RouterLookupWatchActor.DefaultPeriod;

    /// <summary>Parses <c>high_priority,low_priority:4</c>: names in priority order, each with an optional slot limit.</summary>
    public static List<ServedQueue> ParseQueues(string spec)
    {
        var queues = new List<ServedQueue>();
        foreach (var part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split(':', 2);
            JobIds.ValidateQueueName(pieces[0]);
            var limit = int.MaxValue;
            if (pieces.Length == 2 && (!int.TryParse(pieces[1], out limit) || limit < 1))
                throw new ArgumentException($"Queue '{part}': the limit after ':' must be a positive number.");
            if (queues.Any(q => q.Name == pieces[0])) throw new ArgumentException($"Queue '{pieces[0]}' is listed twice.");
            queues.Add(new ServedQueue(pieces[0], limit));
        }
        return queues;
    }

    public void Validate()
    {
        if (Concurrency < 1) throw new ArgumentException($"Concurrency must be at least 1, got {Concurrency}.");
        if (LeaseDuration < TimeSpan.FromSeconds(1) || LeaseDuration > TimeSpan.FromDays(1))
            throw new ArgumentException($"LeaseDuration must be from 1 s to 1 day, got {LeaseDuration}.");
        if (DrainGrace < TimeSpan.Zero || DrainGrace > TimeSpan.FromDays(1))
            throw new ArgumentException($"DrainGrace must be from 0 to 1 day, got {DrainGrace}.");
        if (MaxPayloadBytes < 1024) throw new ArgumentException("MaxPayloadBytes must be at least 1024.");
        if (MaxLostDeliveries < 1) throw new ArgumentException("MaxLostDeliveries must be at least 1.");
        if (MaxRunaways < 0) throw new ArgumentException("MaxRunaways must not be negative.");
        if (ReadAhead < 0) throw new ArgumentException($"ReadAhead must not be negative, got {ReadAhead}.");
        if (WarmUpJobs < 0) throw new ArgumentException($"WarmUpJobs must not be negative, got {WarmUpJobs}.");
        if (HttpPort is < 0 or > 65_535) throw new ArgumentException($"HttpPort must be from 0 to 65535, got {HttpPort}.");
        if (HttpHost is not ("*" or "localhost") && !System.Net.IPAddress.TryParse(HttpHost, out _))
            throw new ArgumentException($"HttpHost must be an IP address, 'localhost' or '*', got '{HttpHost}'.");
        if (WarmUpTimeout < TimeSpan.FromSeconds(1) || WarmUpTimeout > TimeSpan.FromMinutes(5))
            throw new ArgumentException($"WarmUpTimeout must be between 1 s and 5 min, got {WarmUpTimeout}.");
    }
}
