package import FerryCore
import Synchronization

/// Connections to one SQL Server endpoint, opened when needed and kept for the next call: a connection that failed
/// (or that the server ended) is closed, so the next call logs in again: an outage costs the calls made during it.
package final class SQLServerSession: Sendable {
    package let endpoint: SQLServerEndpoint
    package let key: String
    let options: SQLServerOptions
    private let idle = Mutex<[SQLServerConnection]>([])
    /// Idle connections kept beyond this are closed.
    static let keep = 4

    package init(endpoint: SQLServerEndpoint, key: String, options: SQLServerOptions = .init()) {
        self.endpoint = endpoint
        self.key = key
        self.options = options
    }

    /// Runs `body` with a connection of its own. A statement the server refused leaves the connection in use for the
    /// next call; any other failure closes it.
    package func withConnection<T>(_ body: (SQLServerConnection) async throws -> T) async throws -> T {
        let reused = idle.withLock { $0.popLast() }
        let connection: SQLServerConnection
        if let reused, !reused.isDead {
            connection = reused
        } else {
            if let reused { await reused.close() }
            connection = try await SQLServerConnection.connect(endpoint, key: key, options: options)
        }
        do {
            let result = try await body(connection)
            await giveBack(connection)
            return result
        } catch {
            if Self.serverRefused(error), !connection.isDead {
                await giveBack(connection)
            } else {
                await connection.close()
            }
            throw error
        }
    }

    private func giveBack(_ connection: SQLServerConnection) async {
        let kept = idle.withLock { list -> Bool in
            guard list.count < Self.keep, !connection.isDead else { return false }
            list.append(connection)
            return true
        }
        if !kept { await connection.close() }
    }

    /// Whether `error` is a statement SQL Server answered with an error (the connection is fine).
    static func serverRefused(_ error: any Error) -> Bool {
        if error is SourceSchemaChanged { return true }
        guard let ferry = error as? FerryError else { return false }
        return (ferry.underlying as? SQLServerError)?.number != nil
    }

    /// Closes every idle connection.
    package func close() async {
        let all = idle.withLock { list -> [SQLServerConnection] in
            defer { list = [] }
            return list
        }
        for connection in all { await connection.close() }
    }
}
