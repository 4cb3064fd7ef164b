using ClusterJobs.Node.Demo;
using ClusterJobs.Node.Hosting;
using ClusterJobs.Node.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// The stock node: serves the demo tasks (send_email, add, sleep, fail) on the queues it is told to.
//   ClusterJobs.Node [--queues high_priority,low_priority] [--concurrency 16]   run a node until SIGTERM
//   ClusterJobs.Node demo                                                       one-process cluster + demo jobs
var demo = args.Length > 0 && args[0] == "demo";
try
{
    var builder = Host.CreateApplicationBuilder(demo ? args[1..] : args);
    builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
    if (demo) builder.Logging.SetMinimumLevel(LogLevel.Warning);
    var commandLine = NodeConfiguration.CommandLine(demo ? args[1..] : args);
    builder.Services.AddClusterJobs(options => NodeConfiguration.Apply(options, commandLine)).AddDemoTasks();
    // Metrics go to an OpenTelemetry collector when one is named (OTEL_EXPORTER_OTLP_ENDPOINT, README "Metrics").
    if (!string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])) builder.Services.AddClusterJobsTelemetryExport();
    using var host = builder.Build();
    if (demo) return await DemoRunner.RunAsync(host, Console.Out);
    // 0 after SIGTERM; 75 when the node recycled itself, 3 when the cluster downed it: its supervisor starts a fresh one.
    return await ShutdownExit.RunAsync(host);
}
catch (OperationCanceledException)
{
    // SIGTERM while the node was still starting (its warm-up, say): nothing ran, nothing to hand back.
    return 0;
}
catch (Exception ex) when (ShutdownExit.StartFailure(ex) is { } message)
{
    // A wrong setting, Redis refusing the password or out of reach, the cluster port taken: said in one line, exit 2.
    Console.Error.WriteLine($"clusterjobs: {message}");
    return ShutdownExit.StartFailed;
}

// Not public: ASP.NET Core's generator would make the top-level Program public, and it would clash with the Program of
// every app that references the node as a library.
internal partial class Program;
