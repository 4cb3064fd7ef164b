using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/ClusterJobs.Micro -- --filter '*'      (all; see docs/benchmarks.md)
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
