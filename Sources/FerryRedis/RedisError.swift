/// A Redis command or connection failed.
///
/// Server errors keep Redis's own prefix (`WRONGPASS`, `NOPERM`, `BUSYGROUP`…) so callers can branch on it.
/// Messages name the command and `host:port`, never arguments (they may hold values or passwords).
package struct RedisError: Error, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case server
            case unreachable
            case connectionClosed = "connection closed"
            case timeout
            case cancelled
            case protocolViolation = "protocol error"
            case unexpectedReply = "unexpected reply"
            case tls
            case poolClosed = "client shut down"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server answered the command with an error reply; see ``RedisError/prefix``.
        package static let server = Code(.server)
        /// No connection could be made to `host:port`.
        package static let unreachable = Code(.unreachable)
        /// The connection closed before the reply arrived.
        package static let connectionClosed = Code(.connectionClosed)
        /// The command's deadline passed; the connection was closed to stay in step.
        package static let timeout = Code(.timeout)
        /// The waiting task was cancelled; the connection was closed to stay in step.
        package static let cancelled = Code(.cancelled)
        /// The server sent bytes that are not valid RESP.
        package static let protocolViolation = Code(.protocolViolation)
        /// The reply was valid RESP but not the shape the command expects.
        package static let unexpectedReply = Code(.unexpectedReply)
        /// TLS could not be set up.
        package static let tls = Code(.tls)
        /// The client was shut down.
        package static let poolClosed = Code(.poolClosed)

        package var description: String { base.rawValue }
    }

    /// Errors are rare and results of pipelines are many: the fields live in one reference so that
    /// `Result<_, RedisError>` stays small (copy-on-write keeps the value semantics).
    private final class Backing: @unchecked Sendable {
        // Only mutated through `mutableBacking`, which copies unless uniquely referenced.
        var code: Code
        var prefix: String?
        var message: String
        var command: String?
        var address: String?
        var underlying: (any Error)?

        init(code: Code, prefix: String?, message: String, command: String?, address: String?, underlying: (any Error)?) {
            self.code = code
            self.prefix = prefix
            self.message = message
            self.command = command
            self.address = address
            self.underlying = underlying
        }

        func copy() -> Backing {
            Backing(code: code, prefix: prefix, message: message, command: command, address: address, underlying: underlying)
        }
    }

    private var backing: Backing

    private var mutableBacking: Backing {
        mutating get {
            if !isKnownUniquelyReferenced(&backing) { backing = backing.copy() }
            return backing
        }
    }

    package var code: Code {
        get { backing.code }
        set { mutableBacking.code = newValue }
    }
    /// For server errors, the first word of the reply (`ERR`, `WRONGPASS`, `NOPERM`, `WRONGTYPE`…).
    package var prefix: String? {
        get { backing.prefix }
        set { mutableBacking.prefix = newValue }
    }
    /// What happened, safe to print.
    package var message: String {
        get { backing.message }
        set { mutableBacking.message = newValue }
    }
    /// The command's name (never its arguments).
    package var command: String? {
        get { backing.command }
        set { mutableBacking.command = newValue }
    }
    /// `host:port` of the server.
    package var address: String? {
        get { backing.address }
        set { mutableBacking.address = newValue }
    }
    package var underlying: (any Error)? {
        get { backing.underlying }
        set { mutableBacking.underlying = newValue }
    }

    package init(
        _ code: Code, _ message: String, prefix: String? = nil, command: String? = nil, address: String? = nil, underlying: (any Error)? = nil
    ) {
        self.backing = Backing(code: code, prefix: prefix, message: message, command: command, address: address, underlying: underlying)
    }

    /// Builds a server error from an error reply such as `WRONGTYPE Operation against a key…`.
    package static func server(reply: String, command: String?, address: String?) -> RedisError {
        let prefix = reply.split(separator: " ", maxSplits: 1).first.map(String.init)
        return RedisError(.server, reply, prefix: prefix, command: command, address: address)
    }

    package var description: String {
        var text = ""
        if let command { text += "\(command): " }
        text += code == .server ? message : "\(code): \(message)"
        if let address { text += " (redis \(address))" }
        return text
    }
}
