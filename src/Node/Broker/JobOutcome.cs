using ClusterJobs.Protocol;

namespace ClusterJobs.Node.Broker;

/// <summary>How an attempt ended, as the worker decided it; the broker records it in one batched script.</summary>
public abstract record JobOutcome(string JobId)
{
    internal abstract char Code { get; }
    internal virtual string Payload => "";
    internal virtual long DueAt => 0;

    /// <summary>
    /// When the attempt's handler started (unix ms), recorded as the job's <c>started_at</c> over the lease time the Take
    /// script wrote (a router holding read-ahead leases jobs before they start). Null keeps the recorded one.
    /// </summary>
    public long? StartedAt { get; init; }

    public sealed record Succeeded(string JobId, string ResultJson) : JobOutcome(JobId)
    {
        internal override char Code => 's';
        internal override string Payload => ResultJson;
    }

    public sealed record Retry(string JobId, JobError Error, long DueAtMs) : JobOutcome(JobId)
    {
        internal override char Code => 'r';
        internal override string Payload => ProtocolJson.Serialize(Error);
        internal override long DueAt => DueAtMs;
    }

    public sealed record DeadLettered(string JobId, JobError Error) : JobOutcome(JobId)
    {
        internal override char Code => 'd';
        internal override string Payload => ProtocolJson.Serialize(Error);
    }

    public sealed record Cancelled(string JobId) : JobOutcome(JobId)
    {
        internal override char Code => 'c';
    }

    /// <summary>The job split into children and waits for them (recorded by its own script, not the batch).</summary>
    public sealed record Split(string JobId, IReadOnlyList<ChildEnvelope> Children, bool CollectFailures) : JobOutcome(JobId)
    {
        internal override char Code => 'w';
    }

    /// <summary>Never started here (handed back on shutdown): back to the ready set, no attempt used.</summary>
    public sealed record Returned(string JobId) : JobOutcome(JobId)
    {
        internal override char Code => 'q';
    }
}
