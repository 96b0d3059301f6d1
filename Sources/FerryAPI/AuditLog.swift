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

    static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon))
            + "Z"
    }
}

/// Where audit events go: JSON lines appended to a file, and rows of `ferry_api.audit` in PostgreSQL. A write that
/// fails throws: for a state-changing request the API then answers 503 before doing anything (it fails closed).
package final class AuditLog: Sendable {
    private let descriptor: Mutex<Int32?>
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

    /// Writes `event` to the file and the table; throws when either fails.
    package func record(_ event: AuditEvent) async throws {
        try appendLine(event.jsonLine + "\n")
        guard let session else { return }
        try await session.withConnection { connection in
            _ = try await connection.query(
                """
                INSERT INTO \(unescaped: Self.table) (at, event_type, user_name, source_ip, method, resource, action, result, status, duration_ms)
                VALUES (\(event.timestamp), \(event.eventType), \(event.user), \(event.sourceIP), \(event.method), \(event.resource), \(event.action),
                  \(event.result), \(event.status), \(event.durationMilliseconds))
                """, logger: logger
            ).collect()
        }
    }

    private func appendLine(_ line: String) throws {
        try descriptor.withLock { open in
            guard let open else { return }
            let bytes = Array(line.utf8)
            var written = 0
            while written < bytes.count {
                let result = bytes.withUnsafeBytes { write(open, $0.baseAddress! + written, bytes.count - written) }
                if result < 0, errno == EINTR { continue }
                guard result > 0 else {
                    throw FerryError(.server, "writing the audit log \(path ?? "") failed: \(String(cString: strerror(errno)))")
                }
                written += result
            }
        }
    }
}
