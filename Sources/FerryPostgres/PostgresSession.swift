package import FerryCore
package import Logging
package import PostgresNIO
import Synchronization

/// One PostgreSQL connection that reconnects on demand, with session settings that make text output
/// deterministic (ISO dates, UTC, exact floats, hex bytea): every value Ferry moves or compares as text
/// prints the same on both sides.
package final class PostgresSession: Sendable {
    package let endpoint: PostgresEndpoint
    /// Configuration key for messages (`postgres`, `sources.erp`).
    package let key: String
    private let logger: Logger
    /// Statements run on each new connection after ``sessionSettings`` (this session's own `SET`s).
    private let settings: [String]
    private let connection = Mutex<PostgresConnection?>(nil)
    /// A connection logged in whose session settings are still running: ``interrupt()`` reaches it too.
    private let connecting = Mutex<PostgresConnection?>(nil)
    private let nextID = Atomic<Int>(1)

    package static let sessionSettings = [
        "SET DateStyle = 'ISO, YMD'", "SET TimeZone = 'UTC'", "SET extra_float_digits = 3", "SET bytea_output = 'hex'",
        "SET IntervalStyle = 'postgres'", "SET client_min_messages = 'warning'",
    ]

    package init(endpoint: PostgresEndpoint, key: String, settings: [String] = [], logger: Logger) {
        self.endpoint = endpoint
        self.key = key
        self.settings = settings
        self.logger = logger
    }

    deinit {
        // A session dropped on an error path still closes its connection; the callback keeps the connection
        // alive until it is closed.
        if let open = connection.withLock({ $0 }), !open.isClosed {
            open.close().whenComplete { _ in _ = open }
        }
    }

    /// Runs `body` on the session's connection, connecting first when needed. A connection-level failure drops
    /// the connection so the next call reconnects; errors are diagnosed (host, database, user, fix).
    ///
    /// `body` runs on the connection's event loop: each statement checks that the connection is open and hands
    /// itself to the connection in the same step. (postgres-nio drops a statement written after its channel
    /// closed without ever answering it; checking first from another thread would leave a window for that.)
    @discardableResult
    package func withConnection<T>(_ body: (PostgresSessionConnection) async throws -> T) async throws -> T {
        let connection = try await current()
        let executor = EventLoopTaskExecutor(eventLoop: connection.eventLoop)
        do {
            return try await withTaskExecutorPreference(executor) {
                try await body(PostgresSessionConnection(connection: connection, endpoint: endpoint))
            }
        } catch {
            if connection.isClosed || Self.isConnectionLevel(error) { drop(connection) }
            throw error
        }
    }

    /// Runs `body` in a transaction (BEGIN … COMMIT, ROLLBACK on error).
    @discardableResult
    package func withTransaction<T>(_ body: (PostgresSessionConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                throw error
            }
        }
    }

    private func current() async throws -> PostgresConnection {
        if let existing = connection.withLock({ $0 }), !existing.isClosed { return existing }
        let configuration = try endpoint.connectionConfiguration()
        let fresh: PostgresConnection
        do {
            fresh = try await PostgresConnection.connect(
                configuration: configuration, id: nextID.wrappingAdd(1, ordering: .relaxed).oldValue, logger: logger)
        } catch {
            throw PostgresDiagnosis.diagnose(error, endpoint: endpoint, key: key)
        }
        connecting.withLock { $0 = fresh }
        defer { connecting.withLock { slot in if slot === fresh { slot = nil } } }
        do {
            // On the connection's event loop and through the open check, like every statement: a setting written
            // after the server closed would never be answered.
            let opened = PostgresSessionConnection(connection: fresh, endpoint: endpoint)
            try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: fresh.eventLoop)) {
                for setting in Self.sessionSettings + settings {
                    try await opened.query(PostgresQuery(unsafeSQL: setting), logger: logger)
                }
            }
        } catch {
            // The server went away between the connect and the settings, or the settings were interrupted: close
            // what was opened (a connection released unclosed is a leak, and a debug build's assertion).
            try? await fresh.close()
            throw PostgresDiagnosis.diagnose(error, endpoint: endpoint, key: key)
        }
        let previous = connection.withLock { slot -> PostgresConnection? in
            defer { slot = fresh }
            return slot
        }
        if let previous { try? await previous.close() }
        return fresh
    }

    private func drop(_ stale: PostgresConnection) {
        let dropped = connection.withLock { slot -> Bool in
            guard let current = slot, current === stale else { return false }
            slot = nil
            return true
        }
        if dropped { stale.close().whenComplete { _ in _ = stale } }
    }

    /// Runs `body` with a new session and closes it afterwards, whether `body` throws or not.
    package static func using<T>(
        _ endpoint: PostgresEndpoint, key: String, settings: [String] = [], logger: Logger, _ body: (PostgresSession) async throws -> T
    ) async throws -> T {
        let session = PostgresSession(endpoint: endpoint, key: key, settings: settings, logger: logger)
        do {
            let result = try await body(session)
            await session.close()
            return result
        } catch {
            await session.close()
            throw error
        }
    }

    /// Closes the current connection now, failing the statement in flight; the next use connects again. For a
    /// statement that has waited far past any reasonable time (a server that stopped answering without closing).
    package func interrupt() {
        let taken = [connection.withLock { $0.take() }, connecting.withLock { $0.take() }]
        for current in taken.compactMap(\.self) { current.close().whenComplete { _ in _ = current } }
    }

    package func close() async {
        let existing = connection.withLock { slot -> PostgresConnection? in
            defer { slot = nil }
            return slot
        }
        try? await existing?.close()
    }

    /// Whether `error` means the connection is unusable (rather than the statement failing).
    package static func isConnectionLevel(_ error: any Error) -> Bool {
        guard let psql = error as? PSQLError else { return error is FerryError }
        switch psql.code {
        case .server:
            // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 08xxx connection exceptions.
            let state = psql.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        default:
            return true
        }
    }
}

/// A session's connection for one call of ``PostgresSession/withConnection(_:)``: every statement fails at once,
/// with a clear error, when the connection has closed.
package struct PostgresSessionConnection: Sendable {
    package let connection: PostgresConnection
    let endpoint: PostgresEndpoint

    package var isClosed: Bool { connection.isClosed }

    private func ensureOpen() throws(FerryError) {
        guard !connection.isClosed else {
            throw FerryError(
                .unreachable, "PostgreSQL at \(endpoint.host):\(endpoint.port) closed the connection",
                fix: "Ferry reconnects by itself; check the server if this repeats")
        }
    }

    @discardableResult
    package func query(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try ensureOpen()
        return try await connection.query(query, logger: logger, file: file, line: line)
    }

    /// Runs `query` and hands each row to `onRow` as it arrives, on the connection's event loop, one row after
    /// another: no async step per row. (Iterating the async row sequence pays a hop check through the task's
    /// executor preference on every row — about a tenth of the producer's CPU on a 5,000-row page.)
    package func forEachRow(_ query: PostgresQuery, logger: Logger, _ onRow: @escaping @Sendable (PostgresRow) throws -> Void) async throws {
        try ensureOpen()
        _ = try await connection.query(query, logger: logger, onRow).get()
    }
}
