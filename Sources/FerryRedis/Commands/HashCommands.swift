package import FerryRESP
package import NIOCore

/// `HSET key field value …` → how many fields were added.
package struct HSET<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var fields: [(field: String, value: Value)]
    package init(_ key: String, _ fields: [(field: String, value: Value)]) {
        self.key = key
        self.fields = fields
    }
    package var name: String { "HSET" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HSET", key, fields.map { RESPPair($0.field, $0.value) }) }
}

/// `HGET key field` → the value, or nil.
package struct HGET: RedisCommand {
    package typealias Response = ByteBuffer?
    package var key: String
    package var field: String
    package init(_ key: String, _ field: String) {
        self.key = key
        self.field = field
    }
    package var name: String { "HGET" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HGET", key, field) }
}

/// `HMGET key field…` → values in field order.
package struct HMGET: RedisCommand {
    package typealias Response = [ByteBuffer?]
    package var key: String
    package var fields: [String]
    package init(_ key: String, _ fields: [String]) {
        self.key = key
        self.fields = fields
    }
    package var name: String { "HMGET" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HMGET", key, fields) }
}

/// `HGETALL key` → every field and value, in server order (RESP3 map or RESP2 flat array).
package struct HGETALL: RedisCommand {
    package typealias Response = [(field: ByteBuffer, value: ByteBuffer)]
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "HGETALL" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HGETALL", key) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        var result: Response = []
        for (field, value) in try token.pairs() { result.append((try ByteBuffer(fromRESP: field), try ByteBuffer(fromRESP: value))) }
        return result
    }
}

/// `HDEL key field…` → how many fields were removed.
package struct HDEL: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var fields: [String]
    package init(_ key: String, _ fields: [String]) {
        self.key = key
        self.fields = fields
    }
    package var name: String { "HDEL" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HDEL", key, fields) }
}

/// `HLEN key` → number of fields.
package struct HLEN: RedisCommand {
    package typealias Response = Int
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "HLEN" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HLEN", key) }
}

/// `HINCRBY key field increment` → the new value.
package struct HINCRBY: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var field: String
    package var increment: Int
    package init(_ key: String, field: String, by increment: Int = 1) {
        self.key = key
        self.field = field
        self.increment = increment
    }
    package var name: String { "HINCRBY" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("HINCRBY", key, field, String(increment)) }
}
