public import FerryRESP
public import NIOCore

/// `GET key` → the value, or nil.
public struct GET: RedisCommand {
    public typealias Response = ByteBuffer?
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "GET" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("GET", key) }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT|PXAT|KEEPTTL]` → whether it was set (with `GET`: see ``SET/Response``).
public struct SET<Value: RESPRenderable & Sendable>: RedisCommand {
    public enum Condition: String, Sendable {
        case ifNotExists = "NX"
        case ifExists = "XX"
    }

    public enum Expiration: Sendable {
        case seconds(Int)
        case milliseconds(Int)
        case unixSeconds(Int)
        case unixMilliseconds(Int)
        case keepTTL
    }

    /// `true` when the value was written; `false` when a condition stopped it.
    public typealias Response = Bool

    public var key: String
    public var value: Value
    public var condition: Condition?
    public var expiration: Expiration?

    public init(_ key: String, _ value: Value, condition: Condition? = nil, expiration: Expiration? = nil) {
        self.key = key
        self.value = value
        self.condition = condition
        self.expiration = expiration
    }

    public var name: String { "SET" }

    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) {
        let expiry: RESPOption<Int>?
        var keepTTL = false
        switch expiration {
        case .seconds(let s): expiry = RESPOption("EX", s)
        case .milliseconds(let ms): expiry = RESPOption("PX", ms)
        case .unixSeconds(let s): expiry = RESPOption("EXAT", s)
        case .unixMilliseconds(let ms): expiry = RESPOption("PXAT", ms)
        case .keepTTL:
            expiry = nil
            keepTTL = true
        case nil: expiry = nil
        }
        encoder.encodeArray("SET", key, value, condition?.rawValue, expiry, RESPFlag("KEEPTTL", keepTTL))
    }

    public func decode(_ token: RESPToken) throws(RESPDecodeError) -> Bool { !token.isNull }
}

/// `MGET key…` → values in key order, nil for missing keys.
public struct MGET: RedisCommand {
    public typealias Response = [ByteBuffer?]
    public var keys: [String]
    public init(_ keys: [String]) { self.keys = keys }
    public var name: String { "MGET" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("MGET", keys) }
}

/// `MSET key value …`.
public struct MSET<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Bool
    public var pairs: [(key: String, value: Value)]
    public init(_ pairs: [(key: String, value: Value)]) { self.pairs = pairs }
    public var name: String { "MSET" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("MSET", pairs.map { RESPPair($0.key, $0.value) }) }
}

/// `DEL key…` → how many keys were removed.
public struct DEL: RedisCommand {
    public typealias Response = Int
    public var keys: [String]
    public init(_ keys: String...) { self.keys = keys }
    public init(keys: [String]) { self.keys = keys }
    public var name: String { "DEL" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("DEL", keys) }
}

/// `EXISTS key…` → how many of the keys exist.
public struct EXISTS: RedisCommand {
    public typealias Response = Int
    public var keys: [String]
    public init(_ keys: String...) { self.keys = keys }
    public var name: String { "EXISTS" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("EXISTS", keys) }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]` → whether a timeout was set.
public struct EXPIRE: RedisCommand {
    public enum Condition: String, Sendable {
        case ifNone = "NX"
        case ifSome = "XX"
        case ifGreater = "GT"
        case ifLess = "LT"
    }

    public typealias Response = Bool
    public var key: String
    public var seconds: Int
    public var condition: Condition?
    public init(_ key: String, seconds: Int, condition: Condition? = nil) {
        self.key = key
        self.seconds = seconds
        self.condition = condition
    }
    public var name: String { "EXPIRE" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("EXPIRE", key, seconds, condition?.rawValue) }
}

/// Remaining time to live: `-2` no such key, `-1` no expiry.
public struct TTL: RedisCommand {
    public typealias Response = Int
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "TTL" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("TTL", key) }
}

/// Remaining time to live in milliseconds: `-2` no such key, `-1` no expiry.
public struct PTTL: RedisCommand {
    public typealias Response = Int
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "PTTL" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("PTTL", key) }
}

/// `INCRBY key delta` → the new value.
public struct INCRBY: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var delta: Int
    public init(_ key: String, by delta: Int = 1) {
        self.key = key
        self.delta = delta
    }
    public var name: String { "INCRBY" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("INCRBY", key, delta) }
}
