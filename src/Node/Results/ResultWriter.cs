using Akka.Actor;
using ClusterJobs.Node.Broker;

namespace ClusterJobs.Node.Results;

/// <summary>Messages the node's result writer receives.</summary>
public static class ResultWriter
{
    /// <summary>Record an attempt's outcome; <paramref name="NotifyWhenRecorded"/> then gets WorkerPool.Recorded.</summary>
    public sealed record Record(string Queue, JobOutcome Outcome, IActorRef NotifyWhenRecorded) : INoSerializationVerificationNeeded;
}
