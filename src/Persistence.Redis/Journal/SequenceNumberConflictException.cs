namespace ClusterJobs.Persistence.Redis.Journal;

/// <summary>
/// A write carried a sequence number that is already stored or not above the highest one ever written for its
/// persistence id: another writer (a second incarnation of the entity, a split brain) got there first. The write
/// stored nothing of that persistence id, and the journal failed the batch (the persistent actor stops and, when it
/// starts again, recovers what the other writer stored).
/// </summary>
public sealed class SequenceNumberConflictException(string persistenceId, long sequenceNr, long storedHighest)
    : Exception($"Refused to write event {sequenceNr} of '{persistenceId}': the journal already holds sequence numbers up to {storedHighest} " +
                "(or this one). Another writer for the same persistence id is active.")
{
    public string PersistenceId { get; } = persistenceId;
    public long SequenceNr { get; } = sequenceNr;
    public long StoredHighest { get; } = storedHighest;
}
