namespace ClusterJobs.Node.Serialization;

/// <summary>
/// Marks a message that may cross nodes. Every such message is bound to <see cref="ClusterJobsMessageSerializer"/>
/// (System.Text.Json, with manifests of our own; never type names from the wire).
/// </summary>
public interface IClusterJobsMessage;
