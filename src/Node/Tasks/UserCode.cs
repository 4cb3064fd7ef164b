using System.Runtime.CompilerServices;

namespace ClusterJobs.Node.Tasks;

/// <summary>
/// Every call from the node into a task's own code (handler, splitter, reducer) goes through one of these frames.
/// They are compiled without optimization, so the JIT never inlines the user's method into them: once a small handler
/// that throws before its first await has tiered up, profile-guided devirtualization would otherwise inline it into
/// our caller, and the job's recorded stack trace would start in ClusterJobs instead of naming the handler.
/// </summary>
internal static class UserCode
{
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    public static Task<TResult> Handle<TArgs, TResult>(IJobHandler<TArgs, TResult> handler, TArgs args, JobContext job,
        CancellationToken ct) => handler.HandleAsync(args, job, ct);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    public static Task Handle<TArgs>(IJobHandler<TArgs> handler, TArgs args, JobContext job, CancellationToken ct) =>
        handler.HandleAsync(args, job, ct);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    public static int SizeOf<TArgs>(IJobSplitter<TArgs> splitter, TArgs args) => splitter.SizeOf(args);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    public static IEnumerable<TArgs> Split<TArgs>(IJobSplitter<TArgs> splitter, TArgs args, int chunkSize) =>
        splitter.Split(args, chunkSize);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    public static Task<TResult> Reduce<TResult>(IJobReducer<TResult> reducer, IReadOnlyList<ChildOutcome<TResult>> children,
        JobContext job, CancellationToken ct) => reducer.ReduceAsync(children, job, ct);
}
