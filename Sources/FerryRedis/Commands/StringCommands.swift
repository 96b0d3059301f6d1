package import FerryRESP
package import NIOCore

/// `GET key` → the value, or nil.
package struct GET: RedisCommand {
    package typealias Response = ByteBuffer?
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "GET" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("GET", key) }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT|PXAT|KEEPTTL]` → whether it was set (with `GET`: see ``SET/Response``).
package struct SET<Value: RESPRenderable & Sendable>: RedisCommand {
    package enum Condition: String, Sendable {
        case ifNotExists = "NX"
        case ifExists = "XX"
    }

    package enum Expiration: Sendable {
        case seconds(Int)
        case milliseconds(Int)
        case unixSeconds(Int)
        case unixMilliseconds(Int)
        case keepTTL
    }

    /// `true` when the value was written; `false` when a condition stopped it.
    package typealias Response = Bool

    package var key: String
    package var value: Value
    package var condition: Condition?
    package var expiration: Expiration?

    package init(_ key: String, _ value: Value, condition: Condition? = nil, expiration: Expiration? = nil) {
        self.key = key
        self.value = value
        self.condition = condition
        self.expiration = expiration
    }

    package var name: String { "SET" }

    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) {
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

    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Bool { !token.isNull }
}

/// `MGET key…` → values in key order, nil for missing keys.
package struct MGET: RedisCommand {
    package typealias Response = [ByteBuffer?]
    package var keys: [String]
    package init(_ keys: [String]) { self.keys = keys }
    package var name: String { "MGET" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("MGET", keys) }
}

/// `MSET key value …`.
package struct MSET<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Bool
    package var pairs: [(key: String, value: Value)]
    package init(_ pairs: [(key: String, value: Value)]) { self.pairs = pairs }
    package var name: String { "MSET" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("MSET", pairs.map { RESPPair($0.key, $0.value) }) }
}

/// `DEL key…` → how many keys were removed.
package struct DEL: RedisCommand {
    package typealias Response = Int
    package var keys: [String]
    package init(_ keys: String...) { self.keys = keys }
    package init(keys: [String]) { self.keys = keys }
    package var name: String { "DEL" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("DEL", keys) }
}

/// `EXISTS key…` → how many of the keys exist.
package struct EXISTS: RedisCommand {
    package typealias Response = Int
    package var keys: [String]
    package init(_ keys: String...) { self.keys = keys }
    package var name: String { "EXISTS" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("EXISTS", keys) }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]` → whether a timeout was set.
package struct EXPIRE: RedisCommand {
    package enum Condition: String, Sendable {
        case ifNone = "NX"
        case ifSome = "XX"
        case ifGreater = "GT"
        case ifLess = "LT"
    }

    package typealias Response = Bool
    package var key: String
    package var seconds: Int
    package var condition: Condition?
    package init(_ key: String, seconds: Int, condition: Condition? = nil) {
        self.key = key
        self.seconds = seconds
        self.condition = condition
    }
    package var name: String { "EXPIRE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("EXPIRE", key, seconds, condition?.rawValue) }
}

/// Remaining time to live: `-2` no such key, `-1` no expiry.
package struct TTL: RedisCommand {
    package typealias Response = Int
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "TTL" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("TTL", key) }
}

/// Remaining time to live in milliseconds: `-2` no such key, `-1` no expiry.
package struct PTTL: RedisCommand {
    package typealias Response = Int
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "PTTL" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("PTTL", key) }
}

/// `INCRBY key delta` → the new value.
package struct INCRBY: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var delta: Int
    package init(_ key: String, by delta: Int = 1) {
        self.key = key
        self.delta = delta
    }
    package var name: String { "INCRBY" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("INCRBY", key, delta) }
}
