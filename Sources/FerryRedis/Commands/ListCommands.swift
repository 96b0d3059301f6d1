import FerryCore
package import FerryRESP
package import NIOCore

/// `LPUSH key value…` → the list's new length.
package struct LPUSH<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var values: [Value]
    package init(_ key: String, _ values: [Value]) {
        self.key = key
        self.values = values
    }
    package var name: String { "LPUSH" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LPUSH", key, values) }
}

/// `RPUSH key value…` → the list's new length.
package struct RPUSH<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var values: [Value]
    package init(_ key: String, _ values: [Value]) {
        self.key = key
        self.values = values
    }
    package var name: String { "RPUSH" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("RPUSH", key, values) }
}

/// `LRANGE key start stop` → the elements.
package struct LRANGE: RedisCommand {
    package typealias Response = [ByteBuffer]
    package var key: String
    package var start: Int
    package var stop: Int
    package init(_ key: String, _ start: Int = 0, _ stop: Int = -1) {
        self.key = key
        self.start = start
        self.stop = stop
    }
    package var name: String { "LRANGE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LRANGE", key, start, stop) }
}

/// `LLEN key`.
package struct LLEN: RedisCommand {
    package typealias Response = Int
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "LLEN" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LLEN", key) }
}

/// A list end, for `LMOVE`/`BLMOVE`.
package enum RedisListEnd: String, Sendable {
    case left = "LEFT"
    case right = "RIGHT"
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT` → the moved element, or nil when the source is empty.
package struct LMOVE: RedisCommand {
    package typealias Response = ByteBuffer?
    package var source: String
    package var destination: String
    package var from: RedisListEnd
    package var to: RedisListEnd
    package init(_ source: String, _ destination: String, from: RedisListEnd, to: RedisListEnd) {
        self.source = source
        self.destination = destination
        self.from = from
        self.to = to
    }
    package var name: String { "LMOVE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LMOVE", source, destination, from.rawValue, to.rawValue) }
}

/// `BLMOVE … timeout`: waits up to `timeout` (zero: forever) for an element. Use a dedicated connection.
package struct BLMOVE: RedisCommand {
    package typealias Response = ByteBuffer?
    package var source: String
    package var destination: String
    package var from: RedisListEnd
    package var to: RedisListEnd
    package var timeout: Duration
    package init(_ source: String, _ destination: String, from: RedisListEnd, to: RedisListEnd, timeout: Duration) {
        self.source = source
        self.destination = destination
        self.from = from
        self.to = to
        self.timeout = timeout
    }
    package var name: String { "BLMOVE" }
    package var blockingTimeout: Duration? { timeout }
    package func encode(into encoder: inout RESPCommandEncoder) {
        encoder.encodeArray("BLMOVE", source, destination, from.rawValue, to.rawValue, timeout.seconds)
    }
}
