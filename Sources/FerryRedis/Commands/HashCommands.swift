public import FerryRESP
public import NIOCore

/// `HSET key field value …` → how many fields were added.
public struct HSET<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var fields: [(field: String, value: Value)]
    public init(_ key: String, _ fields: [(field: String, value: Value)]) {
        self.key = key
        self.fields = fields
    }
    public var name: String { "HSET" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HSET", key, fields.map { RESPPair($0.field, $0.value) }) }
}

/// `HGET key field` → the value, or nil.
public struct HGET: RedisCommand {
    public typealias Response = ByteBuffer?
    public var key: String
    public var field: String
    public init(_ key: String, _ field: String) {
        self.key = key
        self.field = field
    }
    public var name: String { "HGET" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HGET", key, field) }
}

/// `HMGET key field…` → values in field order.
public struct HMGET: RedisCommand {
    public typealias Response = [ByteBuffer?]
    public var key: String
    public var fields: [String]
    public init(_ key: String, _ fields: [String]) {
        self.key = key
        self.fields = fields
    }
    public var name: String { "HMGET" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HMGET", key, fields) }
}

/// `HGETALL key` → every field and value, in server order (RESP3 map or RESP2 flat array).
public struct HGETALL: RedisCommand {
    public typealias Response = [(field: ByteBuffer, value: ByteBuffer)]
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "HGETALL" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HGETALL", key) }
    public func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        var result: Response = []
        for (field, value) in try token.pairs() { result.append((try ByteBuffer(fromRESP: field), try ByteBuffer(fromRESP: value))) }
        return result
    }
}

/// `HDEL key field…` → how many fields were removed.
public struct HDEL: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var fields: [String]
    public init(_ key: String, _ fields: [String]) {
        self.key = key
        self.fields = fields
    }
    public var name: String { "HDEL" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HDEL", key, fields) }
}

/// `HLEN key` → number of fields.
public struct HLEN: RedisCommand {
    public typealias Response = Int
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "HLEN" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HLEN", key) }
}

/// `HINCRBY key field increment` → the new value.
public struct HINCRBY: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var field: String
    public var increment: Int
    public init(_ key: String, field: String, by increment: Int = 1) {
        self.key = key
        self.field = field
        self.increment = increment
    }
    public var name: String { "HINCRBY" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HINCRBY", key, field, String(increment)) }
}
