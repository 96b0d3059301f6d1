import FerryRedis
import Logging

/// A stream entry after its applier decoded it, with its stream id.
struct Consumed<Entry: Sendable>: Sendable {
    let id: String
    let entry: Entry
}

/// What a ``StreamConsumer`` needs from the job whose entries it applies: the table sync (entries of many rows
/// for one mirror) and the Redis sync (one entry per row of `redis_streams` or a mapped table) differ only here.
///
/// The consumer owns everything about the queue — group membership, pending recovery, claims, heartbeats,
/// delivery counts, poison entries, retries and acknowledgements — so both jobs get the same guarantees.
protocol StreamApplying: Sendable {
    associatedtype Entry: Sendable

    /// Names the job in logs and errors (`pipeline ventas`, `redis sync`).
    var name: String { get }

    /// Decodes a raw entry of `stream`; a thrown error means it can never be applied (it goes to the dead letters).
    func decode(_ raw: RedisStreamEntry, stream: String) throws -> Entry

    /// Rows in an entry, to size transactions.
    func rowCount(of entry: Entry) -> Int

    /// Whether two entries may share a transaction (same schema, same target).
    func canShareTransaction(_ first: Entry, _ second: Entry) -> Bool

    /// Applies `entries` of `stream` in one transaction. Data errors (SQLSTATE classes 22, 23…) are thrown as they
    /// are, so the consumer can ask for ``isolate(_:stream:heartbeat:)``.
    mutating func apply(_ entries: [Consumed<Entry>], stream: String) async throws

    /// After a data error: applies every row PostgreSQL accepts and moves the others to the dead letters with the
    /// reason. Returns the rows applied and rejected.
    mutating func isolate(_ entries: [Consumed<Entry>], stream: String, heartbeat: Heartbeat) async throws -> (applied: Int, rejected: Int)

    /// Moves a whole entry to the dead letters (`entry` is nil when it could not even be decoded).
    mutating func deadLetter(id: String, stream: String, entry: Entry?, reason: String, deliveries: Int?) async throws

    /// Forgets prepared statements and layouts (the target was changed under us); the next apply prepares again.
    mutating func reset()

    /// Records the last error for status pages.
    func recordError(_ message: String) async

    /// Called after `entries` committed: metrics, progress.
    mutating func finished(_ entries: [Consumed<Entry>], stream: String, rows: Int, elapsed: Duration)

    /// Counts a retry or an error in the job's metrics.
    func countRetry()

    /// Counts rows moved to the dead letters.
    func countDeadLetters(_ rows: Int)

    /// Closes the applier's PostgreSQL connection at once, failing an apply in flight (which is then retried): for
    /// an apply that waited past ``StreamConsumerSettings/applyTimeout``. Callable while `apply` runs.
    var interrupter: @Sendable () -> Void { get }

    /// Closes the applier's PostgreSQL session.
    func close() async
}
