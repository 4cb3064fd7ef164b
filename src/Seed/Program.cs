using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Seed;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// The seed: a small, stable cluster member with a fixed address (CLUSTER_IP:CLUSTER_PORT, default 127.0.0.1:4053)
// that nodes list in CLUSTER_SEEDS. It runs no jobs. With no CLUSTER_SEEDS it seeds itself (the first member).
try
{
    var settings = ClusterBootstrap.FromEnvironment(defaultPort: 4053, roles: ["seed"]);
    if (settings.Seeds.Count == 0)
        settings = settings with { Seeds = [$"akka.tcp://{settings.SystemName}@{settings.Host}:{settings.Port}"] };
    // Started again while nodes run: their cluster, not a new one (its own address first, it joins the first that answers)
    settings = settings with { Seeds = [.. settings.Seeds, .. await RunningMembers.ReadAsync(settings, Console.Error)] };
    var builder = Host.CreateApplicationBuilder(args);
    builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
    builder.Services.AddAkka(settings.SystemName, (akka, _) =>
    {
        akka.ConfigureLoggers(l => { l.ClearLoggers(); l.AddLoggerFactory(); });
        settings.Apply(akka);
        akka.AddStartup((system, _) =>
        {
            var cluster = Cluster.Get(system);
            cluster.RegisterOnMemberUp(() => system.Log.Info("Seed up at {0}", cluster.SelfAddress));
        });
    });
    using var host = builder.Build();
    return await ShutdownExit.RunAsync(host, "clusterjobs-seed"); // 3 when the cluster downed the seed: its supervisor starts it again
}
catch (Exception ex) when (ShutdownExit.StartFailure(ex) is { } message)
{
    Console.Error.WriteLine($"clusterjobs-seed: {message}");
    return ShutdownExit.StartFailed;
}
