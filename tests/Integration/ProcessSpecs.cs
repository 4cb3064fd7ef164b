using ClusterJobs.Node.Hosting;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Xunit.Abstractions;

namespace ClusterJobs.Integration.Tests;

/// <summary>The seed and nodes as real processes, on a real Redis: the end-to-end path and a node crash.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ProcessSpecs(BrokerFixture brokers, ITestOutputHelper output)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(40);

    private Dictionary<string, string> NodeEnv(int seedPort, string? lease = null) => new()
    {
        ["REDIS_URL"] = brokers.RealRedisUrl,
        ["CLUSTERJOBS_PREFIX"] = _prefix,
        ["CLUSTER_IP"] = "127.0.0.1",
        ["CLUSTER_PORT"] = "0",
        ["CLUSTER_SEEDS"] = ClusterProcess.SeedAddress(seedPort),
        ["CLUSTERJOBS_CONCURRENCY"] = "16",
        ["CLUSTERJOBS_LEASE_SECONDS"] = lease ?? "10",
    };

    [Fact]
    public async Task A_seed_and_a_node_as_processes_run_a_thousand_jobs_from_the_client()
    {
        var seedPort = RedisServer.FreePort();
        await using var seed = ClusterProcess.StartSeed(seedPort);
        var env = NodeEnv(seedPort);
        // Variables of the options' plain names, as conda and Termux set PREFIX: the documented ones count, not these
        env["PREFIX"] = "/usr";
        env["QUEUES"] = "elsewhere";
        await using var node = ClusterProcess.StartNode("node", env);
        await node.WaitForOutputAsync("Welcome from [akka.tcp://clusterjobs@127.0.0.1:" + seedPort, Startup);
        await using var client = await JobClient.ConnectAsync(brokers.RealRedisUrl, new JobClientOptions { KeyPrefix = _prefix });

        var ids = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => client.EnqueueAsync("add", new[] { i, i })));
        var jobs = await Task.WhenAll(ids.Select(id => client.WaitAsync(id, TimeSpan.FromSeconds(60))));

        Assert.All(jobs, j => Assert.Equal(JobState.Succeeded, j.State));
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => 2L * i), jobs.Select(j => j.ResultAs<long>()));
        output.WriteLine($"1000 of 1000 jobs succeeded on {jobs.Select(j => j.Node).Distinct().Single()}");
    }

    [Fact]
    public async Task A_stock_node_told_of_an_OpenTelemetry_collector_sends_it_the_job_metrics_and_spans_over_OTLP()
    {
        var collectorPort = RedisServer.FreePort();
        using var collector = new System.Net.HttpListener();
        collector.Prefixes.Add($"http://127.0.0.1:{collectorPort}/");
        collector.Start();
        var received = new System.Collections.Concurrent.ConcurrentQueue<(string Path, byte[] Body)>();
        _ = ServeOtlpAsync(collector, received);
        var env = NodeEnv(0);
        env.Remove("CLUSTER_SEEDS"); // a cluster of one
        env["CLUSTERJOBS_WARMUP_JOBS"] = "0";
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{collectorPort}";
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        env["OTEL_METRIC_EXPORT_INTERVAL"] = "300";
        env["OTEL_BSP_SCHEDULE_DELAY"] = "300";
        await using var node = ClusterProcess.StartNode("node", env);
        await using var client = await JobClient.ConnectAsync(brokers.RealRedisUrl, new JobClientOptions { KeyPrefix = _prefix });
        // This process traces too, so the job carries its span's context to the node.
        using var tracing = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name == ProducerTracing.SourceName,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(tracing);

        var id = await client.EnqueueAsync("add", new[] { 1, 2 });
        var job = await client.WaitAsync(id, Startup);
        string[] metricNames = ["clusterjobs.job.attempts", "clusterjobs.job.duration", "clusterjobs.job.wait", "clusterjobs-node", "succeeded"];
        var metrics = await ReceivedAsync(received, "/v1/metrics", metricNames);
        var spans = await ReceivedAsync(received, "/v1/traces", ["process default", "clusterjobs.outcome", id]);

        Assert.Equal(JobState.Succeeded, job.State);
        var traceId = new byte[16];
        System.Diagnostics.ActivityContext.Parse(job.Envelope!.TraceParent!, null).TraceId.CopyTo(traceId);
        Assert.True(spans.AsSpan().IndexOf(traceId) >= 0, "the node's span is in the producer's trace"); // protobuf keeps ids as raw bytes
        Assert.NotEmpty(metrics);
    }

    /// <summary>An OTLP/HTTP collector: every request answered 200 and kept, until the listener is closed.</summary>
    private static async Task ServeOtlpAsync(System.Net.HttpListener collector, System.Collections.Concurrent.ConcurrentQueue<(string, byte[])> received)
    {
        while (collector.IsListening)
        {
            try
            {
                var context = await collector.GetContextAsync();
                using var read = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(read);
                context.Response.StatusCode = 200;
                context.Response.Close();
                received.Enqueue((context.Request.Url!.AbsolutePath, read.ToArray()));
            }
            catch (Exception) { } // a request aborted midway, or the spec ended: the next export comes all the same
        }
    }

    /// <summary>The first body sent to <paramref name="path"/> that names all of <paramref name="texts"/> (protobuf keeps strings as they are).</summary>
    private static async Task<byte[]> ReceivedAsync(System.Collections.Concurrent.ConcurrentQueue<(string Path, byte[] Body)> received, string path, string[] texts)
    {
        var deadline = DateTime.UtcNow + Startup;
        while (true)
        {
            foreach (var (p, body) in received)
                if (p == path && System.Text.Encoding.UTF8.GetString(body) is var text && texts.All(text.Contains)) return body;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No OTLP request to {path} named all of: {string.Join(", ", texts)}.");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_node_killed_with_jobs_in_flight_loses_none_of_them()
    {
        var seedPort = RedisServer.FreePort();
        await using var seed = ClusterProcess.StartSeed(seedPort);
        var first = ClusterProcess.StartNode("node-1", NodeEnv(seedPort, lease: "2"));
        await first.WaitForOutputAsync("Welcome from", Startup);
        // Two more nodes are up before the crash: seed, node-2 and node-3 outnumber node-1 by far (keep-majority), so a
        // survivor that stalls for a moment on this busy machine cannot make the resolver down the wrong side.
        await using var second = ClusterProcess.StartNode("node-2", NodeEnv(seedPort, lease: "2"));
        await using var third = ClusterProcess.StartNode("node-3", NodeEnv(seedPort, lease: "2"));
        await Task.WhenAll(second.WaitForOutputAsync("Welcome from", Startup), third.WaitForOutputAsync("Welcome from", Startup));
        await ClusterProcess.WaitForMembersUpAsync([seed, first, second, third], 4, Startup); // joining members do not count
        await using var client = await JobClient.ConnectAsync(brokers.RealRedisUrl, new JobClientOptions { KeyPrefix = _prefix });
        var ids = await Task.WhenAll(Enumerable.Range(0, 300).Select(_ => client.EnqueueAsync("sleep", new { ms = 100 })));
        await WaitUntilAsync(async () => (await Task.WhenAll(ids.Take(100).Select(client.GetAsync))).Count(j => j!.State == JobState.Succeeded) >= 30);

        first.Kill9();
        var inFlight = (await Task.WhenAll(ids.Select(client.GetAsync))).Count(j => j!.State == JobState.Running);
        await first.DisposeAsync();
        JobInfo[] jobs;
        try { jobs = await Task.WhenAll(ids.Select(id => client.WaitAsync(id, TimeSpan.FromSeconds(90)))); }
        catch (TimeoutException)
        {
            output.WriteLine($"node-2 output:\n{second.Tail(40)}\nnode-3 output:\n{third.Tail(20)}\nseed output:\n{seed.Tail(30)}");
            throw;
        }

        Assert.True(inFlight > 0, "the kill should catch jobs in flight");
        Assert.All(jobs, j => Assert.Equal(JobState.Succeeded, j.State));
        Assert.All(jobs, j => Assert.Equal(1, j.Attempts));
        output.WriteLine($"killed node-1 with {inFlight} job(s) running in the cluster; 300 of 300 succeeded afterwards");
    }

    [Fact]
    public async Task A_seed_started_again_while_its_nodes_run_joins_their_cluster_and_so_does_a_node_started_after_it()
    {
        // Before, a seed had only itself to join: started again, it founded a second cluster, which every node started
        // later joined (two routers per queue). Now the nodes say in Redis that they run, and the seed joins them.
        var seedPort = RedisServer.FreePort();
        var seedEnv = new Dictionary<string, string> { ["REDIS_URL"] = brokers.RealRedisUrl, ["CLUSTERJOBS_PREFIX"] = _prefix };
        var seed = ClusterProcess.StartSeed(seedPort, seedEnv);
        await using var first = ClusterProcess.StartNode("node-1", NodeEnv(seedPort));
        await using var second = ClusterProcess.StartNode("node-2", NodeEnv(seedPort));
        await ClusterProcess.WaitForMembersUpAsync([seed, first, second], 3, Startup);
        using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(RedisConnection.Parse(brokers.RealRedisUrl));
        var members = new RedisKeys(_prefix).ClusterMembers("clusterjobs");
        await WaitUntilAsync(async () => (await redis.GetDatabase().HashLengthAsync(members)) == 2); // the two nodes, Up

        seed.Kill9(); // two of three remain: the majority keeps the cluster
        await seed.DisposeAsync();
        await using var restarted = ClusterProcess.StartSeed(seedPort, seedEnv);
        await restarted.WaitForOutputAsync("Welcome from", Startup); // let in by a running member, not joining itself
        await using var third = ClusterProcess.StartNode("node-3", NodeEnv(seedPort));
        await third.WaitForOutputAsync("Welcome from", Startup);
        await WaitUntilAsync(async () => (await redis.GetDatabase().HashLengthAsync(members)) == 3); // node-3 Up beside the others

        Assert.DoesNotContain("forming a new cluster", restarted.Output);
        Assert.Contains("member(s) run", restarted.Output);
        await using var client = await JobClient.ConnectAsync(brokers.RealRedisUrl, new JobClientOptions { KeyPrefix = _prefix });
        Assert.Equal(5L, (await client.WaitAsync(await client.EnqueueAsync("add", new[] { 2, 3 }), Startup)).ResultAs<long>());
    }

    [Fact]
    public async Task A_node_killed_while_a_parent_waits_for_its_children_does_not_stop_the_parent_completing_exactly()
    {
        var seedPort = RedisServer.FreePort();
        await using var seed = ClusterProcess.StartSeed(seedPort);
        var first = ClusterProcess.StartNode("node-1", NodeEnv(seedPort, lease: "2"));
        await first.WaitForOutputAsync("Welcome from", Startup);
        await using var second = ClusterProcess.StartNode("node-2", NodeEnv(seedPort, lease: "2"));
        await using var third = ClusterProcess.StartNode("node-3", NodeEnv(seedPort, lease: "2"));
        await Task.WhenAll(second.WaitForOutputAsync("Welcome from", Startup), third.WaitForOutputAsync("Welcome from", Startup));
        await ClusterProcess.WaitForMembersUpAsync([seed, first, second, third], 4, Startup); // the survivors of a kill are a clear majority
        await using var client = await JobClient.ConnectAsync(brokers.RealRedisUrl, new JobClientOptions { KeyPrefix = _prefix });
        // 10,000 items, split by the stock `sum` task into 10 children of 1,000 that take 1 s each, on three nodes; the
        // node that hosts the queue's router (the oldest, node-1), and with it the parent's split coordinator, is killed
        // while the parent waits: the coordinator starts again on another node and recovers from the journal.
        var items = Enumerable.Range(1, 10_000).Select(i => (long)i).ToArray();
        var id = await client.EnqueueAsync("sum", new { items, msPerItem = 1 });
        await NodeSpecs.WaitForState(client, id, JobState.Waiting);
        await Task.Delay(300);

        first.Kill9();
        await first.DisposeAsync();
        var parent = await client.GetAsync(id);
        JobInfo job;
        try { job = await client.WaitAsync(id, TimeSpan.FromSeconds(60)); }
        catch (TimeoutException)
        {
            var stuck = await client.GetAsync(id);
            foreach (var child in stuck!.ChildIds)
            {
                var c = await client.GetAsync(child);
                output.WriteLine($"{child}: {c?.State} attempts={c?.Attempts} node={c?.Node}");
            }
            output.WriteLine($"parent pending={stuck.ChildrenPending}; node-2 output:\n{second.Tail(30)}\nnode-3 output:\n{third.Tail(30)}\nseed output:\n{seed.Tail(30)}");
            throw;
        }

        Assert.Equal(JobState.Waiting, parent!.State);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(items.Sum(), job.ResultAs<long>());
        output.WriteLine($"killed node-1 while the parent waited ({parent.ChildrenPending} of {parent.ChildrenTotal} children pending); the parent completed with the exact sum");
    }

    [Fact]
    public async Task A_node_the_cluster_downed_after_a_stall_exits_non_zero_so_that_its_supervisor_starts_it_again()
    {
        var seedPort = RedisServer.FreePort();
        await using var seed = ClusterProcess.StartSeed(seedPort);
        await using var first = ClusterProcess.StartNode("node-1", NodeEnv(seedPort));
        await using var stalled = ClusterProcess.StartNode("node-2", NodeEnv(seedPort));
        await ClusterProcess.WaitForMembersUpAsync([seed, first, stalled], 3, Startup);

        // Frozen past the failure detector (a long GC pause, a stalled VM): the other two, a majority, down it.
        stalled.Signal("STOP");
        try
        {
            await Task.WhenAny(seed.WaitForOutputAsync("DownUnreachable", Startup), first.WaitForOutputAsync("DownUnreachable", Startup))
                .Unwrap();
        }
        finally { stalled.Signal("CONT"); }

        // Back, it finds itself removed and shuts down. Exit code 0 would keep it down under compose's on-failure.
        var exitCode = await stalled.WaitForExitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine(stalled.Tail(8));
        Assert.Equal(ShutdownExit.Downed, exitCode);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("The cluster removed this member", stalled.Output);
    }

    [Fact]
    public async Task A_node_given_a_wrong_redis_password_stops_at_startup_saying_so()
    {
        await using var secured = await RedisServer.StartBinaryAsync(password: "right-password");
        var env = NodeEnv(RedisServer.FreePort());
        env["REDIS_URL"] = $"redis://:wrong-password@127.0.0.1:{secured.Port}";
        env.Remove("CLUSTER_SEEDS");
        await using var node = ClusterProcess.StartNode("node", env);

        Assert.Equal(2, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("refused the credentials (AUTH failed): check the password in REDIS_URL", node.Output);
        Assert.DoesNotContain("wrong-password", node.Output);
        Assert.DoesNotContain("Unhandled exception", node.Output);
    }

    [Fact]
    public async Task A_node_started_before_its_Redis_waits_for_it_saying_so_then_serves()
    {
        // Compose started the node first, or Redis is restarting: as a Celery worker retries its broker, the node waits.
        var port = RedisServer.PortNoOneElseIsGiven();
        var env = NodeEnv(RedisServer.FreePort());
        env["REDIS_URL"] = $"redis://127.0.0.1:{port}";
        env.Remove("CLUSTER_SEEDS");
        await using var node = ClusterProcess.StartNode("node", env);
        await node.WaitForOutputAsync("The node tries again in", Startup);
        await node.WaitForOutputAsync("The node tries again in", Startup); // still waiting after its first try, not exited
        Assert.False(node.HasExited);
        Assert.Contains($"Could not connect to Redis at redis://127.0.0.1:{port}", node.Output);
        Assert.DoesNotContain("abortConnect", node.Output); // StackExchange.Redis's advice about its own settings

        await using var redis = await RedisServer.StartBinaryAsync(port: port);
        await using var client = await JobClient.ConnectAsync(redis.Url, new JobClientOptions { KeyPrefix = _prefix });
        var job = await client.WaitAsync(await client.EnqueueAsync("add", new[] { 2, 3 }), Startup);
        Assert.Equal(5L, job.ResultAs<long>());
    }

    [Fact]
    public async Task A_node_whose_Redis_stays_out_of_reach_stops_after_its_wait_saying_how_long_it_tried()
    {
        var env = NodeEnv(RedisServer.FreePort());
        env["REDIS_URL"] = $"redis://127.0.0.1:{RedisServer.PortNoOneElseIsGiven()}";
        env["CLUSTERJOBS_REDIS_WAIT_SECONDS"] = "2";
        env.Remove("CLUSTER_SEEDS");
        await using var node = ClusterProcess.StartNode("node", env);

        Assert.Equal(ShutdownExit.StartFailed, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Matches(@"clusterjobs: Could not connect to Redis at redis://127\.0\.0\.1:\d+/?: .*\(tried for \d+ s\)", node.Output);
        Assert.DoesNotContain("Unhandled exception", node.Output);
    }

    [Fact]
    public async Task A_node_stopped_while_it_waits_for_Redis_exits_0()
    {
        var env = NodeEnv(RedisServer.FreePort());
        env["REDIS_URL"] = $"redis://127.0.0.1:{RedisServer.PortNoOneElseIsGiven()}";
        env.Remove("CLUSTER_SEEDS");
        await using var node = ClusterProcess.StartNode("node", env);
        await node.WaitForOutputAsync("The node tries again in", Startup);

        node.Terminate();
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.DoesNotContain("Unhandled exception", node.Output);
    }

    [Fact]
    public async Task A_node_whose_cluster_port_is_taken_stops_at_startup_saying_so()
    {
        using var other = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        other.Start();
        var port = ((System.Net.IPEndPoint)other.LocalEndpoint).Port;
        var env = NodeEnv(RedisServer.FreePort());
        env["CLUSTER_PORT"] = port.ToString();
        env.Remove("CLUSTER_SEEDS");
        await using var node = ClusterProcess.StartNode("node", env);

        var code = await node.WaitForExitAsync(TimeSpan.FromSeconds(30));
        // Its output with the code: one CI run saw 134 (an abort) here, not reproduced in 35 runs since.
        Assert.True(code == 2, $"exit code {code}, expected 2; the node's output:\n{node.Output}");
        Assert.Contains($"clusterjobs: Failed to bind to [127.0.0.1:{port}]: the address is already in use", node.Output);
        Assert.DoesNotContain("Unhandled exception", node.Output);
    }

    [Fact]
    public async Task A_node_reads_redis_on_the_thread_pool_with_no_socket_threads_of_its_own_unless_told_to()
    {
        // Read from Linux's /proc (the suite runs on Linux): StackExchange.Redis's dedicated readers are "DefaultSocketManager:N".
        var plainPrefix = BrokerFixture.NewPrefix();
        var pooledEnv = NodeEnv(RedisServer.FreePort());
        var dedicatedEnv = NodeEnv(RedisServer.FreePort());
        foreach (var env in new[] { pooledEnv, dedicatedEnv }) env.Remove("CLUSTER_SEEDS"); // each its own one-node cluster
        dedicatedEnv["CLUSTERJOBS_PREFIX"] = plainPrefix;
        dedicatedEnv["CLUSTERJOBS_REDIS_IO"] = "dedicated";
        await using var pooled = ClusterProcess.StartNode("node-thread-pool", pooledEnv);
        await using var dedicated = ClusterProcess.StartNode("node-dedicated", dedicatedEnv);

        // Each runs a job: its Redis calls (queue, results, the journal's connection) are all up.
        foreach (var prefix in new[] { _prefix, plainPrefix })
        {
            await using var client = await JobClient.ConnectAsync(brokers.RealRedisUrl, new JobClientOptions { KeyPrefix = prefix });
            var job = await client.WaitAsync(await client.EnqueueAsync("add", new[] { 2, 3 }), Startup);
            Assert.Equal(5L, job.ResultAs<long>());
        }

        static int SocketThreads(ClusterProcess node) => Directory.GetDirectories($"/proc/{node.Pid}/task")
            .Count(task => File.ReadAllText(Path.Combine(task, "comm")).StartsWith("DefaultSocket", StringComparison.Ordinal));
        Assert.Equal(0, SocketThreads(pooled));
        Assert.True(SocketThreads(dedicated) > 0, "CLUSTERJOBS_REDIS_IO=dedicated should start StackExchange.Redis's own threads");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in 60 s");
            await Task.Delay(25);
        }
    }
}
