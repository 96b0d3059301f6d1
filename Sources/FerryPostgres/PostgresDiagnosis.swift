package import FerryCore
import NIOCore
import PostgresNIO

/// Turns postgres-nio errors into messages that name the server, database or user and say what to do.
package enum PostgresDiagnosis {
    /// The SQLSTATE of a server error, if the error is one.
    package static func sqlState(of error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// The server's own message (safe: PostgreSQL never echoes passwords in errors).
    package static func serverMessage(of error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.message]
    }

    /// The server's detail line, when it sent one (which row or value failed).
    package static func detail(of error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.detail]
    }

    /// Classifies a connection or query error against `endpoint`.
    /// PostgreSQL refused the data itself (a value, a constraint), not the connection or the statement.
    package static func isDataError(_ error: any Error) -> Bool {
        if error is MalformedRowError { return true }
        guard let state = sqlState(of: error) else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23") || state == "42804" || state == "21000"
    }

    /// The server's message with its SQLSTATE and detail, for dead letters and logs; other errors as they print.
    package static func reason(_ error: any Error) -> String {
        guard let message = serverMessage(of: error) else {
            if let error = error as? FerryError { return error.description }
            return "\(error)"
        }
        var text = message
        if let state = sqlState(of: error) { text += " (SQLSTATE \(state))" }
        if let detail = detail(of: error) { text += ": \(detail)" }
        return text
    }

    /// The environment variables that override `key`'s settings, in parentheses after a space: only the
    /// `postgres` section has them.
    static func variables(_ key: String, _ names: String) -> String { key == "postgres" ? " (\(names))" : "" }

    package static func diagnose(_ error: any Error, endpoint: PostgresEndpoint, key: String = "postgres") -> FerryError {
        let address = "\(endpoint.host):\(endpoint.port)"
        if let error = error as? FerryError { return error }
        guard let psql = error as? PSQLError else {
            return FerryError(
                .unreachable, "PostgreSQL at \(address): \(describe(error))", fix: "check \(key).host and \(key).port", underlying: error)
        }
        switch psql.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            let reason = psql.underlying.map(describe) ?? "connection failed"
            return FerryError(
                .unreachable,
                "PostgreSQL at \(address) is unreachable: \(reason)",
                fix: "check that the server runs and \(key).host/\(key).port\(variables(key, "PG_HOST/PG_PORT")) are right",
                underlying: error
            )
        case .authMechanismRequiresPassword:
            return FerryError(
                .authentication, "PostgreSQL at \(address) requires a password for user \"\(endpoint.user)\"",
                fix: "set \(key).password\(variables(key, "PG_PASSWORD"))", underlying: error)
        case .sslUnsupported:
            return FerryError(
                .unreachable, "PostgreSQL at \(address) does not offer TLS but \(key).tls is `require`",
                fix: "enable ssl on the server or set \(key).tls to `prefer`", underlying: error)
        case .server:
            let state = psql.serverInfo?[.sqlState] ?? ""
            let message = psql.serverInfo?[.message] ?? "server error"
            switch state {
            case "28P01":
                return FerryError(
                    .authentication, "PostgreSQL at \(address): authentication failed for user \"\(endpoint.user)\"",
                    fix: "check \(key).user and \(key).password\(variables(key, "PG_USER/PG_PASSWORD"))", underlying: error)
            case "28000":
                return FerryError(
                    .authentication, "PostgreSQL at \(address) refused user \"\(endpoint.user)\": \(message)",
                    fix: "check \(key).user and the server's pg_hba.conf", underlying: error)
            case "3D000":
                return FerryError(
                    .databaseMissing,
                    "PostgreSQL at \(address) has no database \"\(endpoint.database)\"",
                    fix:
                        "create it (`CREATE DATABASE \(SQLIdentifier.quote(endpoint.database))`) or fix \(key).database\(variables(key, "PG_DATABASE"))",
                    underlying: error
                )
            case "42501":
                return FerryError(
                    .permission, "PostgreSQL at \(address): permission denied for user \"\(endpoint.user)\": \(message)",
                    fix: "grant the privilege named above (see docs/POSTGRES_PERMISSIONS.md)", underlying: error)
            case "53300":
                return FerryError(
                    .unreachable, "PostgreSQL at \(address) has no free connection slots", fix: "raise max_connections or lower Ferry's pool size",
                    underlying: error)
            case "57P03":
                return FerryError(.unreachable, "PostgreSQL at \(address) is starting up or shutting down", fix: "wait and retry", underlying: error)
            case let state where state.hasPrefix("57P") || state.hasPrefix("08"):
                // Shut down, crashed or restarting while the connection was set up: an outage, retried like one (as a
                // server error it stopped a consumer that connected the moment PostgreSQL was killed).
                return FerryError(
                    .unreachable, "PostgreSQL at \(address) ended the connection: \(message) (SQLSTATE \(state))",
                    fix: "Ferry reconnects by itself; check the server if this repeats", underlying: error)
            default:
                return FerryError(.server, "PostgreSQL at \(address): \(message) (SQLSTATE \(state))", underlying: error)
            }
        default:
            return FerryError(.server, "PostgreSQL at \(address): \(psql.code)", underlying: error)
        }
    }

    private static func describe(_ error: any Error) -> String {
        NetworkErrorText.describe(error)
    }
}
