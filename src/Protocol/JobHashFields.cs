namespace ClusterJobs.Protocol;

/// <summary>Field names of the job hash <c>cj:{queue}:job:&lt;id&gt;</c> (docs/protocol.md).</summary>
public static class JobHashFields
{
    public const string Envelope = "envelope";
    public const string State = "state";
    public const string Task = "task";
    public const string Attempts = "attempts";
    public const string MaxAttempts = "max_attempts";
    public const string ReadyScore = "ready_score";
    public const string EnqueuedAt = "enqueued_at";
    public const string StartedAt = "started_at";
    public const string FinishedAt = "finished_at";
    public const string Node = "node";
    public const string Result = "result";
    public const string Error = "error";
    public const string Lost = "lost";
    public const string CancelRequested = "cancel_requested";
    public const string ProgressPercent = "progress";
    public const string ProgressMessage = "progress_message";
    /// <summary>Set on a child job: its parent's id.</summary>
    public const string Parent = "parent";
    public const string ChildrenTotal = "children_total";
    public const string ChildrenPending = "children_pending";
    /// <summary>'split' while a parent waits for its children, 'reduce' once they are all done.</summary>
    public const string Phase = "phase";
    /// <summary>Prefix of per-attempt error fields: <c>error:1</c>, <c>error:2</c>...</summary>
    public const string ErrorOfAttempt = "error:";
}
