package import FerryRESP
import NIOCore

/// `XADD key [NOMKSTREAM] [trim] id field value …` → the new id, or nil with `NOMKSTREAM` on a missing stream.
package struct XADD<Value: RESPRenderable & Sendable>: RedisCommand {
    package typealias Response = RedisStreamID?
    package var key: String
    package var id: String
    package var fields: [(name: String, value: Value)]
    package var noMakeStream: Bool
    package var trim: RedisStreamTrim?

    package init(_ key: String, id: String = "*", fields: [(name: String, value: Value)], noMakeStream: Bool = false, trim: RedisStreamTrim? = nil) {
        self.key = key
        self.id = id
        self.fields = fields
        self.noMakeStream = noMakeStream
        self.trim = trim
    }

    package var name: String { "XADD" }
    @inlinable
    package func encode(into encoder: inout RESPCommandEncoder) {
        // Written argument by argument: XADD is on the sync's hot path.
        let trimArguments = trim?.arguments() ?? []
        var count = 3 + trimArguments.count + (noMakeStream ? 1 : 0)
        for field in fields { count += 1 + field.value.respEntries }
        encoder.encodeArrayHeader(count: count)
        encoder.encodeBulkString("XADD")
        encoder.encodeBulkString(key)
        if noMakeStream { encoder.encodeBulkString("NOMKSTREAM") }
        for argument in trimArguments { encoder.encodeBulkString(argument) }
        encoder.encodeBulkString(id)
        for field in fields {
            encoder.encodeBulkString(field.name)
            field.value.encode(into: &encoder)
        }
    }
}

/// `XRANGE key start end [COUNT n]`.
package struct XRANGE: RedisCommand {
    package typealias Response = [RedisStreamEntry]
    package var key: String
    package var start: String
    package var end: String
    package var count: Int?
    package init(_ key: String, start: String = "-", end: String = "+", count: Int? = nil) {
        self.key = key
        self.start = start
        self.end = end
        self.count = count
    }
    package var name: String { "XRANGE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XRANGE", key, start, end, RESPOption("COUNT", count)) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response { try RedisStreamEntry.list(fromRESP: token) }
}

/// `XREVRANGE key end start [COUNT n]`: newest first.
package struct XREVRANGE: RedisCommand {
    package typealias Response = [RedisStreamEntry]
    package var key: String
    package var end: String
    package var start: String
    package var count: Int?
    package init(_ key: String, end: String = "+", start: String = "-", count: Int? = nil) {
        self.key = key
        self.end = end
        self.start = start
        self.count = count
    }
    package var name: String { "XREVRANGE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XREVRANGE", key, end, start, RESPOption("COUNT", count)) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response { try RedisStreamEntry.list(fromRESP: token) }
}

/// `XLEN key`.
package struct XLEN: RedisCommand {
    package typealias Response = Int
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "XLEN" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XLEN", key) }
}

/// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key… id…`.
///
/// Ids are `>` for new entries or an id to re-read this consumer's pending entries after it. An empty
/// result means the block timed out.
package struct XREADGROUP: RedisCommand {
    package typealias Response = [RedisStreamRead]
    package var group: String
    package var consumer: String
    package var streams: [(key: String, id: String)]
    package var count: Int?
    package var block: Duration?
    package var noAck: Bool

    package init(
        group: String, consumer: String, streams: [(key: String, id: String)], count: Int? = nil, block: Duration? = nil, noAck: Bool = false
    ) {
        self.group = group
        self.consumer = consumer
        self.streams = streams
        self.count = count
        self.block = block
        self.noAck = noAck
    }

    package var name: String { "XREADGROUP" }
    package var blockingTimeout: Duration? { block }

    package func encode(into encoder: inout RESPCommandEncoder) {
        let blockMilliseconds = block.map { Int($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) }
        encoder.encodeArray(
            "XREADGROUP", "GROUP", group, consumer, RESPOption("COUNT", count), RESPOption("BLOCK", blockMilliseconds), RESPFlag("NOACK", noAck),
            "STREAMS", streams.map(\.key), streams.map(\.id)
        )
    }

    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        if token.isNull { return [] }
        var result: Response = []
        switch token.value {
        case .map(let map):
            for (key, value) in map {
                result.append(RedisStreamRead(stream: try String(fromRESP: key), entries: try RedisStreamEntry.list(fromRESP: value)))
            }
        default:
            for element in try token.elements() {
                let parts = try element.elements()
                guard parts.count == 2 else { throw RESPDecodeError(expected: "[stream, entries]", found: element.identifier) }
                result.append(RedisStreamRead(stream: try String(fromRESP: parts[0]), entries: try RedisStreamEntry.list(fromRESP: parts[1])))
            }
        }
        return result
    }
}

/// `XACK key group id…` → how many entries were acknowledged.
package struct XACK: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var group: String
    package var ids: [String]
    package init(_ key: String, group: String, ids: [String]) {
        self.key = key
        self.group = group
        self.ids = ids
    }
    package var name: String { "XACK" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XACK", key, group, ids) }
}

/// `XDEL key id…` → how many entries were deleted.
package struct XDEL: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var ids: [String]
    package init(_ key: String, ids: [String]) {
        self.key = key
        self.ids = ids
    }
    package var name: String { "XDEL" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XDEL", key, ids) }
}

/// `XGROUP CREATE key group id [MKSTREAM] [ENTRIESREAD n]` → true when created, false when it already existed.
package struct XGROUPCREATE: RedisCommand {
    package typealias Response = Bool
    package var key: String
    package var group: String
    package var id: String
    package var makeStream: Bool
    package var entriesRead: Int?
    package init(_ key: String, group: String, id: String = "$", makeStream: Bool = true, entriesRead: Int? = nil) {
        self.key = key
        self.group = group
        self.id = id
        self.makeStream = makeStream
        self.entriesRead = entriesRead
    }
    package var name: String { "XGROUP CREATE" }
    package func encode(into encoder: inout RESPCommandEncoder) {
        encoder.encodeArray("XGROUP", "CREATE", key, group, id, RESPFlag("MKSTREAM", makeStream), RESPOption("ENTRIESREAD", entriesRead))
    }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Bool { true }
    package func recover(from error: RedisError) -> Bool? { error.prefix == "BUSYGROUP" ? false : nil }
}

/// `XGROUP DESTROY key group` → whether the group existed.
package struct XGROUPDESTROY: RedisCommand {
    package typealias Response = Bool
    package var key: String
    package var group: String
    package init(_ key: String, group: String) {
        self.key = key
        self.group = group
    }
    package var name: String { "XGROUP DESTROY" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XGROUP", "DESTROY", key, group) }
}

/// `XGROUP CREATECONSUMER key group consumer` → whether it was created.
package struct XGROUPCREATECONSUMER: RedisCommand {
    package typealias Response = Bool
    package var key: String
    package var group: String
    package var consumer: String
    package init(_ key: String, group: String, consumer: String) {
        self.key = key
        self.group = group
        self.consumer = consumer
    }
    package var name: String { "XGROUP CREATECONSUMER" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XGROUP", "CREATECONSUMER", key, group, consumer) }
}

/// `XGROUP DELCONSUMER key group consumer` → how many pending entries the consumer had.
package struct XGROUPDELCONSUMER: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var group: String
    package var consumer: String
    package init(_ key: String, group: String, consumer: String) {
        self.key = key
        self.group = group
        self.consumer = consumer
    }
    package var name: String { "XGROUP DELCONSUMER" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XGROUP", "DELCONSUMER", key, group, consumer) }
}

/// `XPENDING key group` → totals per group and consumer.
package struct XPENDING: RedisCommand {
    package typealias Response = RedisPendingSummary
    package var key: String
    package var group: String
    package init(_ key: String, group: String) {
        self.key = key
        self.group = group
    }
    package var name: String { "XPENDING" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XPENDING", key, group) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        let parts = try token.elements()
        guard parts.count == 4 else { throw RESPDecodeError(expected: "[count, smallest, greatest, consumers]", found: token.identifier) }
        var consumers: [String: Int] = [:]
        for consumer in try parts[3].elements() {
            let pair = try consumer.elements()
            guard pair.count == 2 else { throw RESPDecodeError(expected: "[consumer, count]", found: consumer.identifier) }
            consumers[try String(fromRESP: pair[0])] = try Int(fromRESP: pair[1])
        }
        return RedisPendingSummary(
            count: try Int(fromRESP: parts[0]),
            smallestID: try String?(fromRESP: parts[1]),
            greatestID: try String?(fromRESP: parts[2]),
            consumers: consumers
        )
    }
}

/// `XPENDING key group [IDLE ms] start end count [consumer]` → pending entries with delivery counts.
package struct XPENDINGEXTENDED: RedisCommand {
    package typealias Response = [RedisPendingEntry]
    package var key: String
    package var group: String
    package var minimumIdle: Duration?
    package var start: String
    package var end: String
    package var count: Int
    package var consumer: String?
    package init(
        _ key: String, group: String, minimumIdle: Duration? = nil, start: String = "-", end: String = "+", count: Int, consumer: String? = nil
    ) {
        self.key = key
        self.group = group
        self.minimumIdle = minimumIdle
        self.start = start
        self.end = end
        self.count = count
        self.consumer = consumer
    }
    package var name: String { "XPENDING" }
    package func encode(into encoder: inout RESPCommandEncoder) {
        let idle = minimumIdle.map { Int($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) }
        encoder.encodeArray("XPENDING", key, group, RESPOption("IDLE", idle), start, end, count, consumer)
    }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        var result: Response = []
        for element in try token.elements() {
            let parts = try element.elements()
            guard parts.count == 4 else { throw RESPDecodeError(expected: "[id, consumer, idle, deliveries]", found: element.identifier) }
            result.append(
                RedisPendingEntry(
                    id: try String(fromRESP: parts[0]),
                    consumer: try String(fromRESP: parts[1]),
                    idle: .milliseconds(try Int64(fromRESP: parts[2])),
                    deliveries: try Int(fromRESP: parts[3])
                )
            )
        }
        return result
    }
}

/// `XAUTOCLAIM key group consumer min-idle start [COUNT n] [JUSTID]`: takes over entries idle too long.
package struct XAUTOCLAIM: RedisCommand {
    package typealias Response = RedisAutoClaim
    package var key: String
    package var group: String
    package var consumer: String
    package var minimumIdle: Duration
    package var start: String
    package var count: Int?
    package var justID: Bool
    package init(
        _ key: String, group: String, consumer: String, minimumIdle: Duration, start: String = "0-0", count: Int? = nil, justID: Bool = false
    ) {
        self.key = key
        self.group = group
        self.consumer = consumer
        self.minimumIdle = minimumIdle
        self.start = start
        self.count = count
        self.justID = justID
    }
    package var name: String { "XAUTOCLAIM" }
    package func encode(into encoder: inout RESPCommandEncoder) {
        let idle = Int(minimumIdle.components.seconds * 1000 + minimumIdle.components.attoseconds / 1_000_000_000_000_000)
        encoder.encodeArray("XAUTOCLAIM", key, group, consumer, idle, start, RESPOption("COUNT", count), RESPFlag("JUSTID", justID))
    }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        let parts = try token.elements()
        guard parts.count >= 2 else { throw RESPDecodeError(expected: "[next, entries, deleted]", found: token.identifier) }
        let entries: [RedisStreamEntry]
        if justID {
            entries = try [String](fromRESP: parts[1]).map { RedisStreamEntry(id: $0, fields: nil) }
        } else {
            entries = try RedisStreamEntry.list(fromRESP: parts[1])
        }
        return RedisAutoClaim(
            nextStart: try String(fromRESP: parts[0]), entries: entries, deletedIDs: parts.count > 2 ? try [String](fromRESP: parts[2]) : [])
    }
}

/// `XCLAIM key group consumer min-idle id… [IDLE ms] [RETRYCOUNT n] [FORCE] [JUSTID]` → the claimed entries.
package struct XCLAIM: RedisCommand {
    package typealias Response = [RedisStreamEntry]
    package var key: String
    package var group: String
    package var consumer: String
    package var minimumIdle: Duration
    package var ids: [String]
    package var retryCount: Int?
    package var force: Bool
    package var justID: Bool
    package init(
        _ key: String, group: String, consumer: String, minimumIdle: Duration, ids: [String], retryCount: Int? = nil, force: Bool = false,
        justID: Bool = false
    ) {
        self.key = key
        self.group = group
        self.consumer = consumer
        self.minimumIdle = minimumIdle
        self.ids = ids
        self.retryCount = retryCount
        self.force = force
        self.justID = justID
    }
    package var name: String { "XCLAIM" }
    package func encode(into encoder: inout RESPCommandEncoder) {
        let idle = Int(minimumIdle.components.seconds * 1000 + minimumIdle.components.attoseconds / 1_000_000_000_000_000)
        encoder.encodeArray(
            "XCLAIM", key, group, consumer, idle, ids, RESPOption("RETRYCOUNT", retryCount), RESPFlag("FORCE", force), RESPFlag("JUSTID", justID))
    }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        if justID { return try [String](fromRESP: token).map { RedisStreamEntry(id: $0, fields: nil) } }
        return try RedisStreamEntry.list(fromRESP: token)
    }
}

/// `XINFO STREAM key`.
package struct XINFOSTREAM: RedisCommand {
    package typealias Response = RedisStreamInfo
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "XINFO STREAM" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XINFO", "STREAM", key) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        let fields = try fieldMap(token)
        func entry(_ name: String) throws(RESPDecodeError) -> RedisStreamEntry? {
            guard let token = fields[name], !token.isNull else { return nil }
            return try RedisStreamEntry(fromRESP: token)
        }
        return RedisStreamInfo(
            length: try fields["length"].map { t throws(RESPDecodeError) in try Int(fromRESP: t) } ?? 0,
            lastGeneratedID: try fields["last-generated-id"].map { t throws(RESPDecodeError) in try String(fromRESP: t) } ?? "0-0",
            groups: try fields["groups"].map { t throws(RESPDecodeError) in try Int(fromRESP: t) } ?? 0,
            firstEntry: try entry("first-entry"),
            lastEntry: try entry("last-entry"),
            entriesAdded: try fields["entries-added"].map { t throws(RESPDecodeError) in try Int(fromRESP: t) },
            maxDeletedEntryID: try fields["max-deleted-entry-id"].map { t throws(RESPDecodeError) in try String(fromRESP: t) },
            recordedFirstEntryID: try fields["recorded-first-entry-id"].map { t throws(RESPDecodeError) in try String(fromRESP: t) }
        )
    }
}

/// `XINFO GROUPS key`.
package struct XINFOGROUPS: RedisCommand {
    package typealias Response = [RedisGroupInfo]
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "XINFO GROUPS" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XINFO", "GROUPS", key) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        var result: Response = []
        for element in try token.elements() {
            let fields = try fieldMap(element)
            result.append(
                RedisGroupInfo(
                    name: try fields["name"].map { t throws(RESPDecodeError) in try String(fromRESP: t) } ?? "",
                    consumers: try fields["consumers"].map { t throws(RESPDecodeError) in try Int(fromRESP: t) } ?? 0,
                    pending: try fields["pending"].map { t throws(RESPDecodeError) in try Int(fromRESP: t) } ?? 0,
                    lastDeliveredID: try fields["last-delivered-id"].map { t throws(RESPDecodeError) in try String(fromRESP: t) } ?? "0-0",
                    entriesRead: try fields["entries-read"].flatMap { t throws(RESPDecodeError) in try Int?(fromRESP: t) },
                    lag: try fields["lag"].flatMap { t throws(RESPDecodeError) in try Int?(fromRESP: t) }
                )
            )
        }
        return result
    }
}

/// `XINFO CONSUMERS key group`.
package struct XINFOCONSUMERS: RedisCommand {
    package typealias Response = [RedisConsumerInfo]
    package var key: String
    package var group: String
    package init(_ key: String, group: String) {
        self.key = key
        self.group = group
    }
    package var name: String { "XINFO CONSUMERS" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XINFO", "CONSUMERS", key, group) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        var result: Response = []
        for element in try token.elements() {
            let fields = try fieldMap(element)
            result.append(
                RedisConsumerInfo(
                    name: try fields["name"].map { t throws(RESPDecodeError) in try String(fromRESP: t) } ?? "",
                    pending: try fields["pending"].map { t throws(RESPDecodeError) in try Int(fromRESP: t) } ?? 0,
                    idle: .milliseconds(try fields["idle"].map { t throws(RESPDecodeError) in try Int64(fromRESP: t) } ?? 0),
                    inactive: try fields["inactive"].map { t throws(RESPDecodeError) in .milliseconds(try Int64(fromRESP: t)) }
                )
            )
        }
        return result
    }
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT n]` → how many entries were removed.
package struct XTRIM: RedisCommand {
    package typealias Response = Int
    package var key: String
    package var trim: RedisStreamTrim
    package init(_ key: String, _ trim: RedisStreamTrim) {
        self.key = key
        self.trim = trim
    }
    package var name: String { "XTRIM" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("XTRIM", key, trim.arguments()) }
}
