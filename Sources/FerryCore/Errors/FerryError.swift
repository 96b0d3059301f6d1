/// An error Ferry reports to its user.
///
/// It names the thing that is wrong (a config key, a table, a column, a `host:port`) and says what to do.
/// Its description never contains secrets: callers build the message from names, never from values that
/// could hold a password.
public struct FerryError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; stable across releases, printed in `--json` output.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
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
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The configuration is invalid.
        public static let configuration = Code(.configuration)
        /// A server could not be reached at its `host:port`.
        public static let unreachable = Code(.unreachable)
        /// A server refused the credentials.
        public static let authentication = Code(.authentication)
        /// The named database does not exist.
        public static let databaseMissing = Code(.databaseMissing)
        /// The user lacks a privilege.
        public static let permission = Code(.permission)
        /// A peer sent something that breaks its protocol.
        public static let protocolViolation = Code(.protocolViolation)
        /// An operation did not finish before its deadline.
        public static let timeout = Code(.timeout)
        /// The local sandbox could not be started, inspected or stopped.
        public static let sandbox = Code(.sandbox)
        /// Input data (a row, a value, a file) is unusable.
        public static let invalidInput = Code(.invalidInput)
        /// The server does not support a feature Ferry needs.
        public static let unsupported = Code(.unsupported)
        /// A server reported an error for a command.
        public static let server = Code(.server)
        /// A connection or client was closed.
        public static let closed = Code(.closed)
        /// The operation was cancelled.
        public static let cancelled = Code(.cancelled)
        /// The system's state does not allow the operation now (another one is in progress, no leader…).
        public static let conflict = Code(.conflict)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// What is wrong, naming the thing.
    public var message: String
    /// What the user can do about it.
    public var fix: String?
    /// The error that caused this one, if any. Its description is not shown to users unless it is safe.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, fix: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.fix = fix
        self.underlying = underlying
    }

    public var description: String {
        if let fix { return "\(message) — \(fix)" }
        return message
    }
}
