using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// Prepares the node's <see cref="JobClient"/> (the one in DI, for producers in the same app) at start-up, as
/// <see cref="JobClient.ConnectAsync"/> does for a client of its own: its first enqueue, often a web request's, then
/// sends the script's hash and finds the serializer ready. Started after the Redis connection, and the client is only
/// made then: hosted services are all constructed before the first one starts. Best-effort: Redis failing right then
/// only costs the first enqueue its speed, never the node its start.
/// </summary>
internal sealed class JobClientPreparation(IServiceProvider services, ILogger<JobClientPreparation> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await services.GetRequiredService<JobClient>().PrepareAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "Could not prepare the node's JobClient; its first enqueue loads the script instead");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
