package import FerryRESP
package import NIOCore

/// A typed Redis command: how it is written and how its reply is read.
package protocol RedisCommand: Sendable {
    associatedtype Response: Sendable = RESPToken

    /// The command's name, for errors and logs (never its arguments).
    var name: String { get }
    /// For blocking commands, how long the server may wait (`nil`: not blocking; `.zero`: forever).
    var blockingTimeout: Duration? { get }

    func encode(into encoder: inout RESPCommandEncoder)
    func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response
    /// Turns an error reply that is an expected outcome into a response (`BUSYGROUP` for `XGROUP CREATE`).
    func recover(from error: RedisError) -> Response?
}

extension RedisCommand {
    package var blockingTimeout: Duration? { nil }
    package func recover(from error: RedisError) -> Response? { nil }
}

extension RedisCommand where Response: RESPTokenDecodable {
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        try Response(fromRESP: token)
    }
}

extension RedisCommand {
    /// Reads a reply: an error reply becomes a ``RedisError`` with the server's prefix; anything else is decoded.
    @inlinable
    func response(from token: RESPToken, address: String?) -> Result<Response, RedisError> {
        // The type byte first: decoding the whole value just to rule out an error costs a parse per reply.
        let type = token.identifier
        if type == .simpleError || type == .bulkError {
            switch token.value {
            case .simpleError(let message), .bulkError(let message): return serverError(String(buffer: message), address: address)
            default: break
            }
        }
        do {
            return .success(try decode(token))
        } catch {
            return .failure(RedisError(.unexpectedReply, error.description, command: name, address: address, underlying: error))
        }
    }

    @inlinable
    func serverError(_ reply: String, address: String?) -> Result<Response, RedisError> {
        let error = RedisError.server(reply: reply, command: name, address: address)
        if let recovered = recover(from: error) { return .success(recovered) }
        return .failure(error)
    }
}

/// Any command, for what the typed commands do not cover: `send(RawCommand("OBJECT", "ENCODING", key))`.
package struct RawCommand: RedisCommand {
    package typealias Response = RESPToken
    package let arguments: [String]
    package var blockingTimeout: Duration? = nil

    package init(_ arguments: String...) { self.arguments = arguments }
    package init(arguments: [String]) { self.arguments = arguments }

    package var name: String { arguments.first?.uppercased() ?? "" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray(arguments) }
}
