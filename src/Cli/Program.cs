using ClusterJobs.Cli;

// clusterjobs [--api URL] [--token T] [--json] <command>: see `clusterjobs --help` and README.md, "Operating a cluster".
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
return await CliApp.RunAsync(args, Console.Out, Console.Error, ct: cancel.Token);
