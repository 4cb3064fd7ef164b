using System.Collections.Concurrent;
using System.Diagnostics;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Node.Telemetry;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// Distributed tracing, as an OpenTelemetry SDK would record it: the producer's <c>send</c> span carries its context to
/// the node in the envelope, and each attempt's <c>process</c> span is its child, current while the handler runs.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class JobTracingSpecs(BrokerFixture brokers) : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly ActivitySource App = new("ClusterJobs.Specs.App");
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private readonly ConcurrentQueue<Activity> _ended = new();
    private ActivityListener? _listener;

    [Fact]
    public async Task A_job_run_is_a_child_of_the_send_span_of_the_request_that_enqueued_it()
    {
        Listen([ProducerTracing.SourceName, JobTracing.SourceName]);
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        string id;
        ActivityContext request;
        using (var span = App.StartActivity("POST /orders")!)
        {
            request = span.Context;
            id = await node.Client.EnqueueAsync("add", new[] { 2, 40 });
        }
        await node.Client.WaitAsync(id, Wait);

        var send = Assert.Single(Spans(ProducerTracing.SourceName, id));
        Assert.Equal(("send default", ActivityKind.Producer), (send.DisplayName, send.Kind));
        Assert.Equal((request.TraceId, request.SpanId), (send.TraceId, send.ParentSpanId));
        var process = Assert.Single(await ProcessSpansAsync(id, 1));
        Assert.Equal(("process default", ActivityKind.Consumer), (process.DisplayName, process.Kind));
        Assert.Equal((send.TraceId, send.SpanId), (process.TraceId, process.ParentSpanId));
        Assert.Equal(ActivityStatusCode.Unset, process.Status);
        Assert.Equal("add", process.GetTagItem("clusterjobs.task"));
        Assert.Equal(1, process.GetTagItem("clusterjobs.attempt"));
        Assert.Equal("succeeded", process.GetTagItem("clusterjobs.outcome"));
        Assert.Equal("clusterjobs", process.GetTagItem("messaging.system"));
        Assert.Equal(send.Id, (await EnvelopeAsync(node, id)).TraceParent);
    }

    [Fact]
    public async Task Each_failed_attempt_is_an_error_span_with_its_exception_under_the_same_send_span()
    {
        Listen([ProducerTracing.SourceName, JobTracing.SourceName]);
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        var id = await node.Client.EnqueueAsync("fail", new { message = "boom" }, new EnqueueOptions { MaxAttempts = 2, Backoff = TimeSpan.Zero });
        await node.Client.WaitAsync(id, Wait);

        var send = Assert.Single(Spans(ProducerTracing.SourceName, id));
        var attempts = (await ProcessSpansAsync(id, 2)).OrderBy(a => a.GetTagItem("clusterjobs.attempt")).ToList();
        Assert.Equal(["retrying", "dead_lettered"], attempts.Select(a => a.GetTagItem("clusterjobs.outcome")));
        Assert.All(attempts, a =>
        {
            Assert.Equal(send.SpanId, a.ParentSpanId);
            Assert.Equal((ActivityStatusCode.Error, "boom"), (a.Status, a.StatusDescription));
            var exception = Assert.Single(a.Events, e => e.Name == "exception");
            Assert.Equal("boom", exception.Tags.Single(t => t.Key == "exception.message").Value);
        });
    }

    [Fact]
    public async Task An_attempt_abandoned_at_its_hard_time_limit_ends_its_span_then_with_the_timeout()
    {
        Listen([JobTracing.SourceName]);
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        var id = await node.Client.EnqueueAsync("sleep", new { ms = 5_000 }, new EnqueueOptions { HardTimeout = TimeSpan.FromMilliseconds(200), MaxAttempts = 1 });
        await node.Client.WaitAsync(id, Wait);

        var process = Assert.Single(await ProcessSpansAsync(id, 1));
        Assert.Equal(("dead_lettered", ActivityStatusCode.Error), (process.GetTagItem("clusterjobs.outcome"), process.Status));
        Assert.Equal(typeof(JobTimeoutException).FullName, process.GetTagItem("error.type"));
        Assert.InRange(process.Duration, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(4)); // not the handler's 5 s
    }

    [Fact]
    public async Task Jobs_a_handler_enqueues_or_splits_into_are_children_of_its_span()
    {
        Listen([ProducerTracing.SourceName, JobTracing.SourceName]);
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix, tasks: t => t.AddTask<FollowUpTask>("follow_up"));

        var parent = await node.Client.EnqueueAsync("follow_up", new FollowUpArgs(2_500));
        var followUp = (await node.Client.WaitAsync(parent, Wait)).ResultAs<string>()!;
        await node.Client.WaitAsync(followUp, Wait);

        var parentRun = Assert.Single(await ProcessSpansAsync(parent, 1));
        var followUpRuns = await ProcessSpansAsync(followUp, 2); // the split, then the reduce once its children are done
        var followUpRun = Assert.Single(followUpRuns, r => r.GetTagItem("clusterjobs.phase") is null);
        var followUpSend = Assert.Single(Spans(ProducerTracing.SourceName, followUp));
        Assert.Equal((parentRun.TraceId, parentRun.SpanId), (followUpSend.TraceId, followUpSend.ParentSpanId));
        Assert.All(followUpRuns, r => Assert.Equal((followUpSend.TraceId, followUpSend.SpanId), (r.TraceId, r.ParentSpanId)));
        Assert.Equal("split", followUpRun.GetTagItem("clusterjobs.outcome"));
        // `sum` of 2,500 numbers splits into three children, each run a child of the span that split it.
        var children = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => ProcessSpansAsync($"{followUp}.{i}", 1)));
        Assert.All(children.SelectMany(c => c), c => Assert.Equal((followUpRun.TraceId, followUpRun.SpanId), (c.TraceId, c.ParentSpanId)));
    }

    [Fact]
    public async Task With_nothing_listening_no_trace_context_is_written_not_even_that_of_an_unrecorded_request()
    {
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        string id;
        // What ASP.NET Core starts for every request with no tracing set up: a W3C id, not recorded. Written, it would make
        // a node that samples by its parent drop the job's span.
        using (var request = new Activity("GET /orders").Start())
        {
            Assert.Equal((ActivityIdFormat.W3C, false), (request.IdFormat, request.Recorded));
            id = await node.Client.EnqueueAsync("add", new[] { 1, 2 });
        }
        await node.Client.WaitAsync(id, Wait);

        var envelope = await EnvelopeAsync(node, id);
        Assert.Null(envelope.TraceParent);
        Assert.DoesNotContain("trace", (string?)await node.Redis.GetDatabase().HashGetAsync(node.Keys.Queue("default").Job(id), "envelope"));
    }

    [Fact]
    public async Task An_app_that_traces_without_listening_to_ClusterJobs_still_gets_its_jobs_into_its_trace()
    {
        Listen([JobTracing.SourceName], sampledOut: [ProducerTracing.SourceName]); // the app samples out the client's own spans
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        string id;
        ActivityContext request;
        using (var span = App.StartActivity("POST /orders")!)
        {
            span.TraceStateString = "vendor=1";
            request = span.Context;
            id = await node.Client.EnqueueAsync("add", new[] { 1, 2 });
        }
        await node.Client.WaitAsync(id, Wait);

        Assert.Empty(Spans(ProducerTracing.SourceName, id));
        var process = Assert.Single(await ProcessSpansAsync(id, 1));
        Assert.Equal((request.TraceId, request.SpanId, "vendor=1"), (process.TraceId, process.ParentSpanId, process.TraceStateString));
    }

    [Fact]
    public async Task A_listener_that_throws_fails_neither_the_enqueue_nor_the_job()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is ProducerTracing.SourceName or JobTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = _ => throw new InvalidOperationException("a broken exporter"),
            ActivityStopped = _ => throw new InvalidOperationException("a broken exporter"),
        };
        ActivitySource.AddActivityListener(_listener);
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        var id = await node.Client.EnqueueAsync("add", new[] { 2, 3 });
        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal((JobState.Succeeded, 5L), (job.State, job.ResultAs<long>()));
        Assert.Equal(1, job.Attempts); // the worker did not crash and run it again
    }

    [Fact]
    public async Task A_malformed_traceparent_from_a_producer_starts_a_trace_of_its_own_and_the_job_runs()
    {
        Listen([JobTracing.SourceName]);
        await using var node = await TestNode.StartAsync(brokers.RealRedisUrl, _prefix);

        var id = await node.Client.EnqueueAsync(new JobEnvelope
        {
            Id = JobIds.New("default"), Task = "add", Queue = "default", Args = System.Text.Json.JsonSerializer.SerializeToElement(new[] { 1, 2 }),
            TraceParent = "00-not-a-trace-context",
        });
        var job = await node.Client.WaitAsync(id, Wait);

        Assert.Equal(JobState.Succeeded, job.State);
        var process = Assert.Single(await ProcessSpansAsync(id, 1));
        Assert.Equal(default, process.ParentSpanId);
    }

    /// <summary>Records the spans of <paramref name="sources"/> (and this spec's app); those of <paramref name="sampledOut"/> are listened to but never sampled.</summary>
    private void Listen(string[] sources, string[]? sampledOut = null)
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s == App || sources.Contains(s.Name) || sampledOut?.Contains(s.Name) == true,
            Sample = (ref ActivityCreationOptions<ActivityContext> o) =>
                sampledOut?.Contains(o.Source.Name) == true ? ActivitySamplingResult.None : ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => _ended.Enqueue(a),
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>Ended spans of <paramref name="source"/> about job <paramref name="jobId"/> (other specs' nodes trace too).</summary>
    private List<Activity> Spans(string source, string jobId) =>
        _ended.Where(a => a.Source.Name == source && Equals(a.GetTagItem("messaging.message.id"), jobId)).ToList();

    /// <summary>The job's process spans, once <paramref name="count"/> have ended: a span ends just after its outcome is recorded.</summary>
    private async Task<List<Activity>> ProcessSpansAsync(string jobId, int count)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (Spans(JobTracing.SourceName, jobId) is var spans && spans.Count < count)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{spans.Count} of {count} process spans of {jobId} ended.");
            await Task.Delay(10);
        }
        return Spans(JobTracing.SourceName, jobId);
    }

    private static async Task<JobEnvelope> EnvelopeAsync(TestNode node, string id) =>
        (await node.Client.GetAsync(id))!.Envelope!;

    public void Dispose() => _listener?.Dispose();
}

public sealed record FollowUpArgs(int Numbers);

/// <summary>Enqueues a <c>sum</c> of 1..n with the node's own client and returns its id.</summary>
public sealed class FollowUpTask : IJobHandler<FollowUpArgs, string>
{
    public Task<string> HandleAsync(FollowUpArgs args, JobContext job, CancellationToken ct) =>
        job.Services.GetRequiredService<JobClient>().EnqueueAsync("sum", new { items = Enumerable.Range(1, args.Numbers).ToArray() }, ct: ct);
}
