namespace ClusterJobs.Node.Tasks;

/// <summary>The job's arguments do not bind to the handler's argument type. Never retried: the same input fails again.</summary>
public sealed class JobArgumentException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>No handler is registered for the job's task name on the node that took it. Never retried.</summary>
public sealed class UnknownTaskException(string task, IEnumerable<string> known)
    : Exception($"No handler for task '{task}' on this node. Registered tasks: {string.Join(", ", known.Order())}.");

/// <summary>Throw from a handler to fail the job at once, without using up its remaining attempts.</summary>
public sealed class PermanentJobFailureException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>An attempt ran past its soft limit (its token was cancelled) or its hard limit (it was abandoned).</summary>
public sealed class JobTimeoutException(string message, bool hard, Exception? inner = null) : TimeoutException(message, inner)
{
    public bool Hard { get; } = hard;
}
