using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Prepares the node's <see cref="JobClient"/> (the one in DI, for producers in the same app) at start-up, as
/// <see cref="JobClient.ConnectAsync"/> does for a client of its own: its first enqueue, often a web request's, then
/// sends the script's hash and finds the serializer ready. Started after the Redis connection, and the client is only
/// made then: hosted services are all constructed before the first one starts.
/// </summary>
internal sealed class JobClientPreparation(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        services.GetRequiredService<JobClient>().PrepareAsync().WaitAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
