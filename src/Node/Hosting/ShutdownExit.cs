using Akka;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// How a ClusterJobs process (node or seed) ends: with the exit code of the reason its actor system shut down for, as
/// Akka logs it ("Exiting with [ExitCode:N]"). 0 after SIGTERM; 75 when a node recycled itself (too many runaway
/// handlers); 3 when the cluster removed it without being asked (downed by the split-brain resolver: it stalled past the
/// failure detector, or was on the minority side of a partition; cluster.hocon: run-coordinated-shutdown-when-down).
/// Never 0 then, so that a restart policy such as compose's <c>on-failure</c> starts it again: before, a downed node
/// exited 0 and stayed down, the cluster a node short for good.
/// </summary>
public static class ShutdownExit
{
    /// <summary>Exit code of a member the cluster downed (Akka's <see cref="CoordinatedShutdown.ClusterDowningReason"/>).</summary>
    public static int Downed => CoordinatedShutdown.ClusterDowningReason.Instance.ExitCode;

    /// <summary>Runs <paramref name="host"/> until it stops; the exit code for the process then.</summary>
    public static async Task<int> RunAsync(IHost host)
    {
        await host.StartAsync();
        var system = host.Services.GetRequiredService<ActorSystem>();
        await host.WaitForShutdownAsync();
        return CoordinatedShutdown.Get(system).ShutdownReason?.ExitCode ?? 0;
    }

    /// <summary>Says in the log, in plain words, why a downed member shuts down (otherwise only the resolver's warnings do).</summary>
    public static AkkaConfigurationBuilder AddDownedNotice(this AkkaConfigurationBuilder builder) =>
        builder.AddStartup((system, _) =>
        {
            var shutdown = CoordinatedShutdown.Get(system);
            shutdown.AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "downed-notice", () =>
            {
                if (shutdown.ShutdownReason is CoordinatedShutdown.ClusterDowningReason)
                    system.Log.Error("The cluster removed this member (downed: unreachable too long, or on the minority side of a " +
                                     "partition); it shuts down and exits with code {0}, so that its supervisor starts a fresh one", Downed);
                return Task.FromResult(Done.Instance);
            });
        });
}
