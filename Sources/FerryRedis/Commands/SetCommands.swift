package import FerryRESP
package import NIOCore

/// `SADD key member…` → how many members were added.
package struct SADD<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var members: [Value]
    package init(_ key: String, _ members: [Value]) {
        self.key = key
        self.members = members
    }
    package var name: String { "SADD" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SADD", key, members) }
}

/// `SREM key member…` → how many members were removed.
package struct SREM<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var members: [Value]
    package init(_ key: String, _ members: [Value]) {
        self.key = key
        self.members = members
    }
    package var name: String { "SREM" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SREM", key, members) }
}

/// `SMEMBERS key` → the members (unordered).
package struct SMEMBERS: RedisCommand {
    package typealias Response = [ByteBuffer]
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "SMEMBERS" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SMEMBERS", key) }
}

/// `SISMEMBER key member`.
package struct SISMEMBER<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Bool
    package var key: String
    package var member: Value
    package init(_ key: String, _ member: Value) {
        self.key = key
        self.member = member
    }
    package var name: String { "SISMEMBER" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SISMEMBER", key, member) }
}

/// `SCARD key`.
package struct SCARD: RedisCommand {
    package typealias Response = Int
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "SCARD" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SCARD", key) }
}
