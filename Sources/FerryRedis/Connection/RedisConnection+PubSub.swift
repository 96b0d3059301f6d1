package import FerryRESP
package import NIOCore

/// A message delivered to a subscribed RESP3 connection (a push frame).
package struct RedisPushMessage: Sendable {
    /// `message`, `pmessage`, `subscribe`, `psubscribe`, …
    package var kind: String
    /// The pattern that matched (`pmessage` only).
    package var pattern: String?
    package var channel: String
    package var payload: ByteBuffer?

    /// Reads a push frame; nil when it is not a pub/sub message.
    package init?(_ token: RESPToken) {
        guard case .push(let array) = token.value else { return nil }
        let items = array.elements
        func text(_ token: RESPToken) -> String? {
            switch token.value {
            case .bulkString(let bytes), .simpleString(let bytes), .verbatimString(let bytes): String(buffer: bytes)
            default: nil
            }
        }
        func bytes(_ token: RESPToken) -> ByteBuffer? {
            switch token.value {
            case .bulkString(let bytes), .simpleString(let bytes): bytes
            default: nil
            }
        }
        guard let kind = items.first.flatMap(text) else { return nil }
        self.kind = kind
        if kind == "pmessage", items.count == 4 {
            pattern = text(items[1])
            channel = text(items[2]) ?? ""
            payload = bytes(items[3])
        } else if items.count >= 2 {
            pattern = nil
            channel = text(items[1]) ?? ""
            payload = items.count >= 3 ? bytes(items[2]) : nil
        } else {
            return nil
        }
    }
}

extension RedisConnection {
    /// Subscribes to channel patterns. Needs RESP3 (the default handshake): messages then arrive as pushes at the
    /// connection's `onPush` handler. The confirmations are pushes too, so a `PING` in the same write is what this
    /// call waits for.
    package func psubscribe(_ patterns: [String]) async throws(RedisError) {
        var encoder = RESPCommandEncoder(buffer: ByteBuffer())
        encoder.encodeArray("PSUBSCRIBE", patterns)
        encoder.encodeArray("PING")
        _ = try await execute(encoder.buffer, replies: 1, command: "PSUBSCRIBE", timeout: .seconds(10))
    }

    /// A `PING` on a subscribed connection, to notice a dead one.
    package func pingSubscribed() async throws(RedisError) {
        var encoder = RESPCommandEncoder(buffer: ByteBuffer())
        encoder.encodeArray("PING")
        _ = try await execute(encoder.buffer, replies: 1, command: "PING", timeout: .seconds(5))
    }
}
