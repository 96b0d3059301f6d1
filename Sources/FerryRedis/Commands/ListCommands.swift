import FerryCore
public import FerryRESP
public import NIOCore

/// `LPUSH key value…` → the list's new length.
public struct LPUSH<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var values: [Value]
    public init(_ key: String, _ values: [Value]) {
        self.key = key
        self.values = values
    }
    public var name: String { "LPUSH" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LPUSH", key, values) }
}

/// `RPUSH key value…` → the list's new length.
public struct RPUSH<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var values: [Value]
    public init(_ key: String, _ values: [Value]) {
        self.key = key
        self.values = values
    }
    public var name: String { "RPUSH" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("RPUSH", key, values) }
}

/// `LRANGE key start stop` → the elements.
public struct LRANGE: RedisCommand {
    public typealias Response = [ByteBuffer]
    public var key: String
    public var start: Int
    public var stop: Int
    public init(_ key: String, _ start: Int = 0, _ stop: Int = -1) {
        self.key = key
        self.start = start
        self.stop = stop
    }
    public var name: String { "LRANGE" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LRANGE", key, start, stop) }
}

/// `LLEN key`.
public struct LLEN: RedisCommand {
    public typealias Response = Int
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "LLEN" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LLEN", key) }
}

/// A list end, for `LMOVE`/`BLMOVE`.
public enum RedisListEnd: String, Sendable {
    case left = "LEFT"
    case right = "RIGHT"
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT` → the moved element, or nil when the source is empty.
public struct LMOVE: RedisCommand {
    public typealias Response = ByteBuffer?
    public var source: String
    public var destination: String
    public var from: RedisListEnd
    public var to: RedisListEnd
    public init(_ source: String, _ destination: String, from: RedisListEnd, to: RedisListEnd) {
        self.source = source
        self.destination = destination
        self.from = from
        self.to = to
    }
    public var name: String { "LMOVE" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("LMOVE", source, destination, from.rawValue, to.rawValue) }
}

/// `BLMOVE … timeout`: waits up to `timeout` (zero: forever) for an element. Use a dedicated connection.
public struct BLMOVE: RedisCommand {
    public typealias Response = ByteBuffer?
    public var source: String
    public var destination: String
    public var from: RedisListEnd
    public var to: RedisListEnd
    public var timeout: Duration
    public init(_ source: String, _ destination: String, from: RedisListEnd, to: RedisListEnd, timeout: Duration) {
        self.source = source
        self.destination = destination
        self.from = from
        self.to = to
        self.timeout = timeout
    }
    public var name: String { "BLMOVE" }
    public var blockingTimeout: Duration? { timeout }
    public func encode(into encoder: inout RESPCommandEncoder) {
        encoder.encodeArray("BLMOVE", source, destination, from.rawValue, to.rawValue, timeout.seconds)
    }
}
