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

    /// <summary>
    /// Exit code of a process that could not start: a setting is wrong, Redis refused it or stayed out of reach, its
    /// port is taken. It printed what to fix; a supervisor may start it again.
    /// </summary>
    public const int StartFailed = 2;

    /// <summary>
    /// Runs <paramref name="host"/> until it stops; the exit code for the process then. A start that fails for a
    /// reason <see cref="StartFailure"/> knows prints it on stderr after <paramref name="name"/> and gives
    /// <see cref="StartFailed"/> (before, the bench node and library hosts ended in an unhandled exception, SIGABRT);
    /// SIGTERM during the start gives 0.
    /// </summary>
    public static async Task<int> RunAsync(IHost host, string name = "clusterjobs")
    {
        var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        try
        {
            await host.StartAsync();
        }
        catch (Exception) when (stopping.IsCancellationRequested)
        {
            return 0; // told to stop while starting (a warm-up, a wait for Redis): nothing ran, nothing to hand back
        }
        catch (Exception ex) when (StartFailure(ex) is { } message)
        {
            Console.Error.WriteLine($"{name}: {message}");
            return StartFailed;
        }
        var system = host.Services.GetRequiredService<ActorSystem>();
        await host.WaitForShutdownAsync();
        return CoordinatedShutdown.Get(system).ShutdownReason?.ExitCode ?? 0;
    }

    /// <summary>What to tell the operator when starting failed for a reason they can mend; null for anything else (a bug).</summary>
    public static string? StartFailure(Exception error) => error switch
    {
#if !CLUSTERJOBS_SEED // the seed shares this file and has no Redis
        ClusterJobs.Protocol.RedisUnavailableException => error.Message,
#endif
        // Ours name the setting; one thrown elsewhere (a user's own code in a host of theirs) keeps its stack trace.
        ArgumentException when IsOurs(error) => $"invalid configuration: {error.Message}",
        ArgumentException => $"invalid configuration: {error}",
        _ => ClusterBootstrap.PortTakenMessage(error),
    };

    private static bool IsOurs(Exception error) =>
        error.TargetSite?.DeclaringType?.FullName?.StartsWith("ClusterJobs.", StringComparison.Ordinal) == true;

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
