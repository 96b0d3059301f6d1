import FerryCore

/// A message from SQL Server: its number, state, severity and text (an error when the severity is above 10).
package struct SQLServerMessage: Sendable, Equatable, CustomStringConvertible {
    package var number: Int
    package var state: Int
    package var severity: Int
    package var message: String
    package var server: String
    package var procedure: String?
    package var line: Int

    package var isError: Bool { severity > 10 }

    package var description: String {
        var text = "Msg \(number), Level \(severity), State \(state)"
        if let procedure { text += ", Procedure \(procedure)" }
        if line > 0 { text += ", Line \(line)" }
        return text + ": " + message
    }
}

/// A statement SQL Server refused: the server's messages, as it sent them (never the statement's values).
package struct SQLServerError: Error, Sendable, CustomStringConvertible {
    /// Every error message of the statement, in order (SQL Server often sends more than one).
    package var messages: [SQLServerMessage]
    /// DB-Library's own account, when it gave one (a timeout, a dead connection).
    package var library: String?

    /// The first error: usually the cause (4060 comes before 18456, 208 before the batch's end).
    package var first: SQLServerMessage? { messages.first }
    package var number: Int? { first?.number }

    package var description: String {
        var parts = messages.map(\.description)
        if let library { parts.append(library) }
        return parts.isEmpty ? "SQL Server reported an error without a message" : parts.joined(separator: "; ")
    }
}

extension MessageCollector {
    /// The recorded messages as an error for a call that failed: SQL Server's errors, else DB-Library's.
    func failure() -> SQLServerError {
        var messages: [SQLServerMessage] = []
        var library: [String] = []
        for entry in take() {
            switch entry {
            case .server(let message) where message.isError: messages.append(message)
            case .server: break
            case .library(let number, _, let message, let system):
                // 20018 is "General SQL Server error: Check messages from the SQL Server": the messages say it.
                if number == 20018 { continue }
                library.append(system.map { "\(message) (\($0))" } ?? message)
            }
        }
        return SQLServerError(messages: messages, library: library.isEmpty ? nil : library.joined(separator: "; "))
    }
}

/// Errors a user can act on, from what SQL Server and DB-Library said, naming the server and the fix.
enum SQLServerDiagnosis {
    static func connectFailure(_ error: SQLServerError, endpoint: SQLServerEndpoint, key: String) -> FerryError {
        let address = "\(endpoint.host):\(endpoint.port)"
        switch error.number {
        case 18456?:
            return FerryError(
                .authentication, "SQL Server at \(address) refused the login of user `\(endpoint.user)` (Msg 18456)",
                fix:
                    "check \(key).user and \(key).password (MSSQL_USER / MSSQL_PASSWORD), and that the login is enabled for SQL Server authentication",
                underlying: error)
        case 4060?:
            return FerryError(
                .databaseMissing, "SQL Server at \(address) has no database `\(endpoint.database)` that user `\(endpoint.user)` may open (Msg 4060)",
                fix: "check \(key).database (MSSQL_DATABASE), or grant the login a user in that database", underlying: error)
        case let number?:
            return FerryError(
                .server, "SQL Server at \(address) refused the connection: \(error.first?.message ?? "") (Msg \(number))",
                fix: "read the message; the server's error log has the detail", underlying: error)
        case nil:
            // DB-Library names the server as the login did: a section of Ferry's freetds.conf (`ferry-2`) is the address.
            let said = (error.library ?? "no answer").replacing(#/\(ferry-\d+\)/#, with: "(\(address))")
            let lower = said.lowercased()
            let network = ["refused", "timed out", "unavailable", "no route"].contains { lower.contains($0) }
            if !network, endpoint.encryption == .require || endpoint.caFile != nil {
                return FerryError(
                    .unsupported, "SQL Server at \(address): the encrypted login failed (\(said))",
                    fix:
                        "if the server offers no encryption, enable it there or set \(key).encryption: request; with \(key).ca_file, the server's certificate must be signed by that CA and name \(key).host",
                    underlying: error)
            }
            if !network, endpoint.encryption == .off {
                return FerryError(
                    .unsupported, "SQL Server at \(address) ended the login, made without encryption (\(said))",
                    fix: "the server may force encryption: set \(key).encryption: request (the default) or require", underlying: error)
            }
            if lower.contains("encrypt") || lower.contains("tls") || lower.contains("ssl") {
                return FerryError(
                    .unsupported, "SQL Server at \(address) and Ferry could not agree on encryption: \(said)",
                    fix: "set \(key).encryption to match the server (`require` when it forces encryption)", underlying: error)
            }
            return FerryError(
                .unreachable, "SQL Server at \(address) is unreachable: \(said)",
                fix:
                    "check that SQL Server runs and listens on TCP, that \(key).host/\(key).port (MSSQL_HOST/MSSQL_PORT) are right, and that no firewall blocks the port",
                underlying: error)
        }
    }

    /// A failed statement: permission errors say so, the rest carry SQL Server's message.
    static func statementFailure(_ error: SQLServerError, endpoint: SQLServerEndpoint) -> FerryError {
        let address = "\(endpoint.host):\(endpoint.port)"
        switch error.number {
        case 229?, 230?, 262?, 297?, 300?:
            return FerryError(
                .permission, "SQL Server at \(address): \(error.first?.message ?? "permission denied") (Msg \(error.number ?? 0))",
                fix: "grant the login SELECT on the source (GRANT SELECT ON … TO …)", underlying: error)
        case nil where error.library?.contains("timed out") == true || error.library?.contains("timeout") == true:
            return FerryError(
                .timeout, "SQL Server at \(address) did not answer in time: \(error.library ?? "")",
                fix: "raise the query timeout, or look at what blocks the statement on the server (sp_who2)", underlying: error)
        case nil:
            return FerryError(
                .unreachable, "the connection to SQL Server at \(address) failed: \(error.library ?? "no answer")",
                fix: "check that SQL Server runs; Ferry reconnects and retries", underlying: error)
        default:
            return FerryError(.server, "SQL Server at \(address): \(error)", underlying: error)
        }
    }
}
