package import FerryRESP
package import NIOCore

/// `ZADD key score member …` → how many members were added.
package struct ZADD<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var members: [(score: Double, member: Value)]
    package init(_ key: String, _ members: [(score: Double, member: Value)]) {
        self.key = key
        self.members = members
    }
    package var name: String { "ZADD" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZADD", key, members.map { RESPPair($0.score, $0.member) }) }
}

/// `ZRANGE key start stop WITHSCORES` → members with scores, by rank.
package struct ZRANGE: RedisCommand {
    package typealias Response = [(member: ByteBuffer, score: Double)]
    package var key: String
    package var start: Int
    package var stop: Int
    package init(_ key: String, _ start: Int = 0, _ stop: Int = -1) {
        self.key = key
        self.start = start
        self.stop = stop
    }
    package var name: String { "ZRANGE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZRANGE", key, start, stop, "WITHSCORES") }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        // RESP3: [[member, score], …]; RESP2: [member, score, member, score, …].
        let elements = try token.elements()
        var result: Response = []
        if let first = elements.first, case .array = first.value {
            for pair in elements {
                let parts = try pair.elements()
                guard parts.count == 2 else { throw RESPDecodeError(expected: "[member, score]", found: pair.identifier) }
                result.append((try ByteBuffer(fromRESP: parts[0]), try Double(fromRESP: parts[1])))
            }
        } else {
            var index = 0
            while index + 1 < elements.count {
                result.append((try ByteBuffer(fromRESP: elements[index]), try Double(fromRESP: elements[index + 1])))
                index += 2
            }
        }
        return result
    }
}

/// `ZREM key member…` → how many members were removed.
package struct ZREM<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var members: [Value]
    package init(_ key: String, _ members: [Value]) {
        self.key = key
        self.members = members
    }
    package var name: String { "ZREM" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZREM", key, members) }
}

/// `ZCARD key`.
package struct ZCARD: RedisCommand {
    package typealias Response = Int
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "ZCARD" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZCARD", key) }
}

/// `ZSCORE key member` → the score, or nil.
package struct ZSCORE<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = Double?
    package var key: String
    package var member: Value
    package init(_ key: String, _ member: Value) {
        self.key = key
        self.member = member
    }
    package var name: String { "ZSCORE" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZSCORE", key, member) }
}
