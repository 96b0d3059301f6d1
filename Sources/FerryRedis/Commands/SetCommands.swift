public import FerryRESP
public import NIOCore

/// `SADD key member…` → how many members were added.
public struct SADD<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var members: [Value]
    public init(_ key: String, _ members: [Value]) {
        self.key = key
        self.members = members
    }
    public var name: String { "SADD" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SADD", key, members) }
}

/// `SREM key member…` → how many members were removed.
public struct SREM<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var members: [Value]
    public init(_ key: String, _ members: [Value]) {
        self.key = key
        self.members = members
    }
    public var name: String { "SREM" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SREM", key, members) }
}

/// `SMEMBERS key` → the members (unordered).
public struct SMEMBERS: RedisCommand {
    public typealias Response = [ByteBuffer]
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "SMEMBERS" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SMEMBERS", key) }
}

/// `SISMEMBER key member`.
public struct SISMEMBER<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Bool
    public var key: String
    public var member: Value
    public init(_ key: String, _ member: Value) {
        self.key = key
        self.member = member
    }
    public var name: String { "SISMEMBER" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SISMEMBER", key, member) }
}

/// `SCARD key`.
public struct SCARD: RedisCommand {
    public typealias Response = Int
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "SCARD" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("SCARD", key) }
}
