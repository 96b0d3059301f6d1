public import FerryRESP
import NIOCore

/// `PING` → `PONG`.
public struct PING: RedisCommand {
    public typealias Response = String
    public init() {}
    public var name: String { "PING" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("PING") }
}

/// The type of a key, from `TYPE`.
public enum RedisKeyType: String, Sendable, CaseIterable {
    case none, string, list, set, zset, hash, stream
}

/// `TYPE key`.
public struct TYPE: RedisCommand {
    public typealias Response = RedisKeyType
    public var key: String
    public init(_ key: String) { self.key = key }
    public var name: String { "TYPE" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("TYPE", key) }
    public func decode(_ token: RESPToken) throws(RESPDecodeError) -> RedisKeyType {
        let text = try String(fromRESP: token)
        guard let type = RedisKeyType(rawValue: text) else { throw RESPDecodeError(expected: "a key type", found: token.identifier) }
        return type
    }
}

/// `DBSIZE` → number of keys in the selected database.
public struct DBSIZE: RedisCommand {
    public typealias Response = Int
    public init() {}
    public var name: String { "DBSIZE" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("DBSIZE") }
}

/// `FLUSHDB` (tests and sandboxes only).
public struct FLUSHDB: RedisCommand {
    public typealias Response = RESPToken
    public init() {}
    public var name: String { "FLUSHDB" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("FLUSHDB") }
}

/// The reply of `INFO`: sections of `key:value` lines, with the keyspace parsed.
public struct RedisInfo: Sendable {
    public struct Keyspace: Sendable, Equatable {
        public var keys: Int
        public var expires: Int
        public var averageTTL: Int

        public init(keys: Int, expires: Int, averageTTL: Int) {
            self.keys = keys
            self.expires = expires
            self.averageTTL = averageTTL
        }
    }

    /// Section name (lower case, e.g. `server`, `memory`) → its fields.
    public var sections: [String: [String: String]]

    /// Database index → key counts, from the `keyspace` section.
    public var keyspace: [Int: Keyspace] {
        var result: [Int: Keyspace] = [:]
        for (name, value) in sections["keyspace"] ?? [:] where name.hasPrefix("db") {
            guard let index = Int(name.dropFirst(2)) else { continue }
            var fields: [String: Int] = [:]
            for part in value.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = Int(pair[1]) }
            }
            result[index] = Keyspace(keys: fields["keys"] ?? 0, expires: fields["expires"] ?? 0, averageTTL: fields["avg_ttl"] ?? 0)
        }
        return result
    }

    public subscript(section: String, field: String) -> String? { sections[section]?[field] }

    public init(text: String) {
        var sections: [String: [String: String]] = [:]
        var current = "default"
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            if line.hasPrefix("# ") {
                current = line.dropFirst(2).lowercased()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            sections[current, default: [:]][String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        self.sections = sections
    }
}

/// `INFO [section…]`.
public struct INFO: RedisCommand {
    public typealias Response = RedisInfo
    public var sections: [String]
    public init(_ sections: String...) { self.sections = sections }
    public var name: String { "INFO" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("INFO", sections) }
    public func decode(_ token: RESPToken) throws(RESPDecodeError) -> RedisInfo { RedisInfo(text: try String(fromRESP: token)) }
}

/// `CONFIG GET pattern…` → matching parameters and values.
public struct CONFIGGET: RedisCommand {
    public typealias Response = [String: String]
    public var patterns: [String]
    public init(_ patterns: String...) { self.patterns = patterns }
    public var name: String { "CONFIG GET" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("CONFIG", "GET", patterns) }
    public func decode(_ token: RESPToken) throws(RESPDecodeError) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in try token.pairs() { result[try String(fromRESP: key)] = try String(fromRESP: value) }
        return result
    }
}

/// `CLIENT ID` → this connection's id.
public struct CLIENTID: RedisCommand {
    public typealias Response = Int64
    public init() {}
    public var name: String { "CLIENT ID" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("CLIENT", "ID") }
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]` → whether a blocked client was unblocked.
public struct CLIENTUNBLOCK: RedisCommand {
    public enum Mode: String, Sendable {
        /// The blocked command returns as if it timed out.
        case timeout = "TIMEOUT"
        /// The blocked command fails with `UNBLOCKED`.
        case error = "ERROR"
    }

    public typealias Response = Bool
    public var clientID: Int64
    public var mode: Mode
    public init(_ clientID: Int64, mode: Mode = .timeout) {
        self.clientID = clientID
        self.mode = mode
    }
    public var name: String { "CLIENT UNBLOCK" }
    public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("CLIENT", "UNBLOCK", clientID, mode.rawValue) }
}

/// One `SCAN` step: the next cursor and the keys of this step.
public struct SCAN: RedisCommand {
    public typealias Response = (cursor: String, keys: [String])
    public var cursor: String
    public var match: String?
    public var count: Int?
    public var type: RedisKeyType?
    public init(cursor: String, match: String? = nil, count: Int? = nil, type: RedisKeyType? = nil) {
        self.cursor = cursor
        self.match = match
        self.count = count
        self.type = type
    }
    public var name: String { "SCAN" }
    public func encode(into encoder: inout RESPCommandEncoder) {
        encoder.encodeArray("SCAN", cursor, RESPOption("MATCH", match), RESPOption("COUNT", count), RESPOption("TYPE", type?.rawValue))
    }
    public func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        let parts = try token.elements()
        guard parts.count == 2 else { throw RESPDecodeError(expected: "[cursor, keys]", found: token.identifier) }
        return (try String(fromRESP: parts[0]), try [String](fromRESP: parts[1]))
    }
}
