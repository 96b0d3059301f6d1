/// An error Ferry reports to its user.
///
/// It names the thing that is wrong (a config key, a table, a column, a `host:port`) and says what to do.
/// Its description never contains secrets: callers build the message from names, never from values that
/// could hold a password.
package struct FerryError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; stable across releases, printed in `--json` output.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case configuration
            case unreachable
            case authentication
            case databaseMissing = "database_missing"
            case permission
            case protocolViolation = "protocol"
            case timeout
            case sandbox
            case invalidInput = "invalid_input"
            case unsupported
            case server
            case closed
            case cancelled
            case conflict
            case tooLarge = "too_large"
            case notFound = "not_found"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The configuration is invalid.
        package static let configuration = Code(.configuration)
        /// A server could not be reached at its `host:port`.
        package static let unreachable = Code(.unreachable)
        /// A server refused the credentials.
        package static let authentication = Code(.authentication)
        /// The named database does not exist.
        package static let databaseMissing = Code(.databaseMissing)
        /// The user lacks a privilege.
        package static let permission = Code(.permission)
        /// A peer sent something that breaks its protocol.
        package static let protocolViolation = Code(.protocolViolation)
        /// An operation did not finish before its deadline.
        package static let timeout = Code(.timeout)
        /// The local sandbox could not be started, inspected or stopped.
        package static let sandbox = Code(.sandbox)
        /// Input data (a row, a value, a file) is unusable.
        package static let invalidInput = Code(.invalidInput)
        /// The server does not support a feature Ferry needs.
        package static let unsupported = Code(.unsupported)
        /// A server reported an error for a command.
        package static let server = Code(.server)
        /// A connection or client was closed.
        package static let closed = Code(.closed)
        /// The operation was cancelled.
        package static let cancelled = Code(.cancelled)
        /// The system's state does not allow the operation now (another one is in progress, no leader…).
        package static let conflict = Code(.conflict)
        /// Input (a request body, a file, an expanded document) is over its size limit.
        package static let tooLarge = Code(.tooLarge)
        /// The named thing (a backup, a file, a job) does not exist.
        package static let notFound = Code(.notFound)

        package var description: String { base.rawValue }

        /// The code whose `description` is `name` (as `--json` output and the API's `error` field spell it).
        package init?(name: String) {
            guard let base = Base(rawValue: name) else { return nil }
            self.init(base)
        }
    }

    /// The kind of failure.
    package var code: Code
    /// What is wrong, naming the thing.
    package var message: String
    /// What the user can do about it.
    package var fix: String?
    /// The error that caused this one, if any. Its description is not shown to users unless it is safe.
    package var underlying: (any Error)?

    package init(_ code: Code, _ message: String, fix: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.fix = fix
        self.underlying = underlying
    }

    package var description: String {
        if let fix { return "\(message) — \(fix)" }
        return message
    }
}
