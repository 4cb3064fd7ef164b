namespace ClusterJobs.Protocol;

/// <summary>
/// One job of a <see cref="JobClient.EnqueueManyAsync(IEnumerable{JobRequest}, CancellationToken)"/> call: its task,
/// its arguments (an object bound by name, or an array bound by position) and its own options.
/// </summary>
public sealed record JobRequest(string Task, object? Args = null, EnqueueOptions? Options = null);
