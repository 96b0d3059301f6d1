import CoreMetrics
import FerryCore
import FerryPostgres
import FerryRedis
import Logging
import PostgresNIO
import Synchronization

/// Stream and key names PostgreSQL cannot store: a NUL byte, or bytes that are not UTF-8. Redis names are bytes;
/// PostgreSQL `text` is neither. Such a name costs its own stream or key only: the rest of the scan goes on, and
/// the name is accounted for once per process:
///
/// - a row in `ferry_dead_letters`: `pipeline` = `redis:DB:<name, escaped>` (or `redis-key:DB:…`), `stream_id`
///   `(stream name)` or `(key name)`, `row_data` = `{"redis_db": …, "kind": …, "name": {"base64": …},
///   "name_escaped": …}` (the exact bytes), `reason` saying what is wrong and what to do;
/// - a warning in the log (escaped: a name cannot forge a log line), the first 100 names one by one;
/// - `ferry_redis_rejected_names_total{kind="stream"|"key"}`.
///
/// The stream's entries and the key's value stay in Redis, untouched: renaming the key (`RENAME`) syncs it.
final class RejectedNames: Sendable {
    enum Kind: String, Sendable {
        case stream, key
    }

    private struct Name: Hashable {
        var kind: Kind
        var database: Int
        var name: RedisName
    }

    private struct State {
        var recorded: Set<Name> = []
        var warned = 0
    }

    /// Names remembered at most (beyond it, names are still skipped and counted, not recorded again).
    static let capacity = 100_000
    static let warningsOneByOne = 100

    let target: PostgresEndpoint
    let deadLetters: String
    let logger: Logger
    private let state = Mutex(State())
    private let streams = Counter(label: "ferry_redis_rejected_names_total", dimensions: [("kind", "stream")])
    private let keys = Counter(label: "ferry_redis_rejected_names_total", dimensions: [("kind", "key")])

    init(target: PostgresEndpoint, deadLetters: String, logger: Logger) {
        self.target = target
        self.deadLetters = deadLetters
        self.logger = logger
    }

    /// Whether `name` was recorded already (no need to say it again).
    func isRecorded(_ name: RedisName, kind: Kind, database: Int) -> Bool {
        state.withLock { $0.recorded.contains(Name(kind: kind, database: database, name: name)) }
    }

    /// Records `name` (once): the dead letter, the warning, the counter. A failure to write the dead letter (PostgreSQL
    /// down) is retried at the next sighting; it never stops the scan.
    func report(_ name: RedisName, kind: Kind, database: Int, problem: String) async {
        let entry = Name(kind: kind, database: database, name: name)
        let isNew = state.withLock { state -> Bool in
            guard !state.recorded.contains(entry) else { return false }
            if state.recorded.count >= Self.capacity { return false }
            return true
        }
        guard isNew else { return }
        let what = kind == .stream ? "stream" : "key"
        let reason =
            "the \(what) name \(problem), which PostgreSQL text cannot hold; the \(kind == .stream ? "stream's entries stay" : "key stays") in Redis, not synced "
            + "— rename it (RENAME) to valid UTF-8 without NUL bytes to sync it"
        let pipeline = (kind == .stream ? "redis:" : "redis-key:") + "\(database):\(name.description)"
        let data =
            "{\"redis_db\":\(database),\"kind\":\(JSONText.string(kind.rawValue)),\"name\":{\"base64\":\(JSONText.string(name.base64))},"
            + "\"name_escaped\":\(JSONText.string(name.description))}"
        let streamID = kind == .stream ? "(stream name)" : "(key name)"
        do {
            try await PostgresSession.using(target, key: "postgres", logger: logger) { session in
                try await session.withConnection { connection in
                    try await connection.query(
                        """
                        INSERT INTO \(unescaped: deadLetters) (pipeline, stream_id, row_data, reason)
                        SELECT \(pipeline), \(streamID), \(data)::jsonb, \(reason)
                        WHERE NOT EXISTS (SELECT 1 FROM \(unescaped: deadLetters) WHERE pipeline = \(pipeline) AND stream_id = \(streamID))
                        """,
                        logger: logger)
                }
            }
        } catch {
            logger.warning(
                "cannot record a rejected name in the dead letters yet; trying again at the next scan",
                metadata: ["ferry.redis_db": "\(database)", "ferry.name": "\(name)", "ferry.error": "\(error)"])
            return
        }
        let warn = state.withLock { state -> Bool in
            state.recorded.insert(entry)
            state.warned += 1
            return state.warned <= Self.warningsOneByOne
        }
        (kind == .stream ? streams : keys).increment()
        if warn {
            logger.warning(
                "\(what) not synced: its name cannot be stored; recorded in ferry_dead_letters",
                metadata: ["ferry.redis_db": "\(database)", "ferry.\(what)": "\(name)", "ferry.reason": "\(reason)"])
        } else if state.withLock({ $0.warned }) == Self.warningsOneByOne + 1 {
            logger.warning(
                "more names cannot be stored; they are recorded in ferry_dead_letters and counted in ferry_redis_rejected_names_total, not logged one by one"
            )
        }
    }
}
