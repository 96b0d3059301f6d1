package import FerryCore
package import FerryPostgres
package import Foundation
package import Logging
import PostgresNIO
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One audited request: who, from where, what, and how it ended. Never a token, password or request body.
package struct AuditEvent: Sendable, Equatable {
    package var timestamp: Date
    /// `request` (an authenticated request's outcome), `attempt` (a state-changing request about to run),
    /// `auth_failure` (no token, or an unknown one), `forbidden` (a known token not allowed).
    package var eventType: String
    package var user: String?
    package var sourceIP: String?
    package var method: String
    /// The path, without its query string.
    package var resource: String
    /// The operation (`startExtract`, `getJob`, …).
    package var action: String
    /// `ok`, or the error code.
    package var result: String
    package var status: Int?
    package var durationMilliseconds: Double?

    package init(
        timestamp: Date = Date(), eventType: String, user: String?, sourceIP: String?, method: String, resource: String, action: String,
        result: String, status: Int? = nil, durationMilliseconds: Double? = nil
    ) {
        self.timestamp = timestamp
        self.eventType = eventType
        self.user = user
        self.sourceIP = sourceIP
        self.method = method
        self.resource = resource
        self.action = action
        self.result = result
        self.status = status
        self.durationMilliseconds = durationMilliseconds
    }

    /// The event as one JSON line (the original bridge's fields, snake_case).
    package var jsonLine: String {
        var fields: [String] = [
            "\"timestamp\":\(JSONText.string(AuditEvent.format(timestamp)))", "\"event_type\":\(JSONText.string(eventType))",
            "\"user_name\":\(user.map(JSONText.string) ?? "null")", "\"source_ip\":\(sourceIP.map(JSONText.string) ?? "null")",
            "\"method\":\(JSONText.string(method))", "\"resource\":\(JSONText.string(resource))", "\"action\":\(JSONText.string(action))",
            "\"result\":\(JSONText.string(result))",
        ]
        if let status { fields.append("\"status\":\(status)") }
        if let durationMilliseconds { fields.append("\"duration_ms\":\(String(format: "%.3f", durationMilliseconds))") }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func format(_ date: Date) -> String { APIDateTranscoder.format(date, fractionDigits: 3) }
}

/// Where audit events go: JSON lines appended to a file, and rows of `ferry_api.audit` in PostgreSQL.
///
/// Two ways in: ``record(_:)`` writes at once and throws when it cannot (a state-changing request is audited so before
/// it runs, and refused with 503 when that fails: the audit fails closed); ``enqueue(_:)`` queues an event for the
/// flusher (``runFlusher()``), which writes what is queued every 200 ms in one write and one INSERT, so a read costs its
/// request no round trip. Queued events are written at shutdown; a flush that fails keeps them and tries again.
package final class AuditLog: Sendable {
    private let descriptor: Mutex<Int32?>
    private let pending = Mutex<[AuditEvent]>([])
    /// Queued events beyond this are dropped (and counted in the log): the audit must not take the memory.
    package static let maximumQueued = 100_000
    package let path: String?
    private let session: PostgresSession?
    private let logger: Logger
    static let table = "\"ferry_api\".\"audit\""

    /// `path`: the JSON lines file (created with mode 0600, appended to); `session`: the database for the table.
    package init(path: String?, session: PostgresSession?, logger: Logger) throws(FerryError) {
        self.path = path
        self.session = session
        self.logger = logger
        if let path {
            let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard opened >= 0 else {
                throw FerryError(
                    .configuration, "cannot open the audit log \(path): \(String(cString: strerror(errno)))",
                    fix: "check api.audit_log and the directory's permissions")
            }
            descriptor = Mutex(opened)
        } else {
            descriptor = Mutex(nil)
        }
    }

    deinit {
        descriptor.withLock { if let open = $0 { close(open) } }
    }

    /// Creates `ferry_api.audit` when missing.
    package func prepare() async throws {
        guard let session else { return }
        try await session.withTransaction { connection in
            for statement in [
                "SELECT pg_advisory_xact_lock(hashtext('ferry_api schema'))",
                "CREATE SCHEMA IF NOT EXISTS \"ferry_api\"",
                """
                CREATE TABLE IF NOT EXISTS \(Self.table) (
                  id bigserial PRIMARY KEY, at timestamptz NOT NULL, event_type text NOT NULL, user_name text, source_ip text,
                  method text NOT NULL, resource text NOT NULL, action text NOT NULL, result text NOT NULL, status int, duration_ms double precision)
                """,
                "CREATE INDEX IF NOT EXISTS audit_at ON \(Self.table) (at)",
            ] {
                _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
            }
        }
    }

    /// Writes `event` to the file and the table now; throws when either fails.
    package func record(_ event: AuditEvent) async throws {
        try await write([event])
    }

    /// Queues `event` for the flusher.
    package func enqueue(_ event: AuditEvent) {
        let dropped = pending.withLock { queue -> Bool in
            guard queue.count < Self.maximumQueued else { return true }
            queue.append(event)
            return false
        }
        if dropped { logger.error("audit queue full: an event was dropped", metadata: ["ferry.audit_event": "\(event.jsonLine)"]) }
    }

    /// Writes what is queued; on failure the events go back to the front of the queue and the error is thrown.
    package func flush() async throws {
        let events = pending.withLock { queue -> [AuditEvent] in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        guard !events.isEmpty else { return }
        var start = 0
        do {
            while start < events.count {
                let batch = Array(events[start..<min(events.count, start + 500)])
                try await write(batch)
                start += batch.count
            }
        } catch {
            pending.withLock { $0.insert(contentsOf: events[start...], at: 0) }
            throw error
        }
    }

    /// Flushes every 200 ms until cancelled, then once more.
    package func runFlusher() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            do {
                try await flush()
            } catch {
                logger.error("the audit log cannot be written; the events wait", metadata: ["ferry.error": "\(error)"])
            }
        }
        try? await flush()
    }

    private func write(_ events: [AuditEvent]) async throws {
        try appendLine(events.map { $0.jsonLine + "\n" }.joined())
        guard let session else { return }
        var sql = "INSERT INTO \(Self.table) (at, event_type, user_name, source_ip, method, resource, action, result, status, duration_ms) VALUES "
        var bindings = PostgresBindings(capacity: events.count * 10)
        for (index, event) in events.enumerated() {
            let base = index * 10
            sql += (index > 0 ? ", " : "") + "(" + (1...10).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
            bindings.append(event.timestamp)
            bindings.append(event.eventType)
            bindings.append(event.user)
            bindings.append(event.sourceIP)
            bindings.append(event.method)
            bindings.append(event.resource)
            bindings.append(event.action)
            bindings.append(event.result)
            bindings.append(event.status.map(Int32.init(clamping:)))
            bindings.append(event.durationMilliseconds)
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        try await session.withConnection { connection in
            _ = try await connection.query(query, logger: logger).collect()
        }
    }

    private func appendLine(_ line: String) throws {
        try descriptor.withLock { open in
            guard let open else { return }
            let bytes = Array(line.utf8)
            var written = 0
            while written < bytes.count {
                let result = bytes.withUnsafeBytes { Glibc.write(open, $0.baseAddress! + written, bytes.count - written) }
                if result < 0, errno == EINTR { continue }
                guard result > 0 else {
                    throw FerryError(.server, "writing the audit log \(path ?? "") failed: \(String(cString: strerror(errno)))")
                }
                written += result
            }
        }
    }
}
