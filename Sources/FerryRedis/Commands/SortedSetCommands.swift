public import FerryRESP
public import NIOCore

/// `ZADD key score member …` → how many members were added.
public struct ZADD<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var members: [(score: Double, member: Value)]
    public init(_ key: String, _ members: [(score: Double, member: Value)]) {
        self.key = key
        self.members = members
    }
    public var name: String { "ZADD" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZADD", key, members.map { RESPPair($0.score, $0.member) }) }
}

/// `ZRANGE key start stop WITHSCORES` → members with scores, by rank.
public struct ZRANGE: RedisCommand {
    public typealias Response = [(member: ByteBuffer, score: Double)]
    public var key: String
    public var start: Int
    public var stop: Int
    public init(_ key: String, _ start: Int = 0, _ stop: Int = -1) {
        self.key = key
        self.start = start
        self.stop = stop
    }
    public var name: String { "ZRANGE" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZRANGE", key, start, stop, "WITHSCORES") }
    public func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
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
public struct ZREM<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Int
    public var key: String
    public var members: [Value]
    public init(_ key: String, _ members: [Value]) {
        self.key = key
        self.members = members
    }
    public var name: String { "ZREM" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZREM", key, members) }
}

/// `ZCARD key`.
public struct ZCARD: RedisCommand {
    public typealias Response = Int
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "ZCARD" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZCARD", key) }
}

/// `ZSCORE key member` → the score, or nil.
public struct ZSCORE<Value: RESPRenderable & Sendable>: RedisCommand {
    public typealias Response = Double?
    public var key: String
    public var member: Value
    public init(_ key: String, _ member: Value) {
        self.key = key
        self.member = member
    }
    public var name: String { "ZSCORE" }
    @inlinable
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("ZSCORE", key, member) }
}
