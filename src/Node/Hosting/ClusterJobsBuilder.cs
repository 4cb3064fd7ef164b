using System.Text.Json;
using ClusterJobs.Node.Tasks;
using ClusterJobs.Node.Workers;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterJobs.Node.Hosting;

/// <summary>Configures a node: its tasks, queues and options. Returned by <c>AddClusterJobs</c>.</summary>
public sealed class ClusterJobsBuilder
{
    private readonly List<Func<JsonSerializerOptions, TaskRegistration>> _tasks = [];

    internal ClusterJobsBuilder(IServiceCollection services) => Services = services;

    public IServiceCollection Services { get; }

    /// <summary>Registers <typeparamref name="THandler"/> (an <see cref="IJobHandler{TArgs}"/> or
    /// <see cref="IJobHandler{TArgs,TResult}"/>) under <paramref name="name"/>, e.g. <c>"send_email"</c>, with its
    /// retry policy (default: 3 attempts, exponential backoff from 1 s with jitter, capped at 5 min).
    /// A handler that is also an <see cref="IJobSplitter{TArgs}"/> splits inputs over <see cref="SplitOptions.ChunkSize"/>
    /// and hard-timed-out attempts; one that is an <see cref="IJobReducer{TResult}"/> combines its children's results.</summary>
    public ClusterJobsBuilder AddTask<THandler>(string name, RetryPolicy? retry = null, SplitOptions? splitting = null) where THandler : class
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A task needs a name.", nameof(name));
        retry?.Validate();
        Services.AddTransient<THandler>();
        _tasks.Add(json => TaskRegistration.For<THandler>(name, json).With(retry ?? RetryPolicy.Default, splitting));
        return this;
    }

    /// <summary>The queues this node serves, highest priority first (<c>"high_priority", "low_priority"</c>).</summary>
    public ClusterJobsBuilder ServeQueues(params string[] queues)
    {
        var parsed = ClusterJobsOptions.ParseQueues(string.Join(',', queues));
        Services.Configure<ClusterJobsOptions>(o => o.Queues = parsed);
        return this;
    }

    public ClusterJobsBuilder Configure(Action<ClusterJobsOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }

    internal TaskRegistry BuildRegistry(JsonSerializerOptions json) => new(_tasks.Select(t => t(json)));
}

/// <summary>Typed argument JSON options for handlers (strict binding), shared by every task.</summary>
public sealed class TaskArgumentJson
{
    public JsonSerializerOptions Options { get; } = TaskRegistry.DefaultArgumentJson();
}

internal static class ServedQueueExtensions
{
    public static int Limit(this ServedQueue queue, int concurrency) => Math.Min(queue.MaxConcurrency, concurrency);
}
