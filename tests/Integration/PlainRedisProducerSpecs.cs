using System.Diagnostics;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// Producers in other languages enqueue with plain Redis commands as docs/protocol.md describes: the exact MULTI
/// block, from C#, and the redis-py example in samples/python.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class PlainRedisProducerSpecs(BrokerFixture brokers)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();

    [Theory, InlineData(BrokerKind.Redis), InlineData(BrokerKind.Garnet)]
    public async Task A_job_written_with_the_documented_plain_commands_runs_like_any_other(BrokerKind kind)
    {
        await using var node = await TestNode.StartAsync(brokers.Url(kind), _prefix);
        var db = node.Redis.GetDatabase();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var id = "default:from-another-language-1";
        var key = $"{_prefix}:{{default}}:job:{id}";
        var envelope = $$"""{"v":1,"id":"{{id}}","task":"add","queue":"default","args":[40,2],"enqueued_at":{{now}}}""";
        var score = (9 - 0) * 10_000_000_000_000L + now;

        // MULTI; HSET ...; ZADD ...; PUBLISH wake; PUBLISH events; EXEC — exactly as docs/protocol.md shows it.
        var tx = db.CreateTransaction();
        _ = tx.ExecuteAsync("HSET", key, "envelope", envelope, "state", "queued", "task", "add", "attempts", "0",
            "max_attempts", "3", "ready_score", score.ToString(), "enqueued_at", now.ToString());
        _ = tx.ExecuteAsync("ZADD", $"{_prefix}:{{default}}:ready", score.ToString(), id);
        _ = tx.ExecuteAsync("PUBLISH", $"{_prefix}:{{default}}:wake", id);
        _ = tx.ExecuteAsync("PUBLISH", $"{_prefix}:{{default}}:events", $"{id} queued");
        Assert.True(await tx.ExecuteAsync());

        var job = await node.Client.WaitAsync(id, TimeSpan.FromSeconds(20));
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(42, job.ResultAs<long>());
        Assert.Equal("42", (string?)await db.HashGetAsync(key, "result"));
    }

    [Fact]
    public async Task The_python_example_enqueues_with_redis_py_and_waits_for_the_result()
    {
        var python = "/usr/bin/python3";
        var script = Path.Combine(Path.GetDirectoryName(ClusterProcess.Binary("ClusterJobs.Node"))!, "../../../../../samples/python/enqueue.py");
        Assert.True(File.Exists(python), "python3 with redis-py is needed (apt-get install python3-redis); .ci/run installs it");
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        var info = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { script, "--redis", brokers.RealRedisUrl, "--prefix", _prefix, "--queue", "default",
                     "--task", "add", "--args", "[2, 40]", "--priority", "7", "--wait", "20" })
            info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = await process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("default:", lines[0]);
        Assert.Equal("state=succeeded result=42", lines[1]);
        var job = await node.Client.GetAsync(lines[0]);
        Assert.Equal(7, job!.Envelope!.Priority);
    }
}
