package import FerryRESP
import NIOCore

/// `PING` → `PONG`.
package struct PING: RedisCommand {
    package typealias Response = String
    package init() {}
    package var name: String { "PING" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("PING") }
}

/// The type of a key, from `TYPE`.
package enum RedisKeyType: String, Sendable, CaseIterable {
    case none, string, list, set, zset, hash, stream
}

/// `TYPE key`.
package struct TYPE: RedisCommand {
    package typealias Response = RedisKeyType
    package var key: String
    package init(_ key: String) { self.key = key }
    package var name: String { "TYPE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("TYPE", key) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> RedisKeyType {
        let text = try String(fromRESP: token)
        guard let type = RedisKeyType(rawValue: text) else { throw RESPDecodeError(expected: "a key type", found: token.identifier) }
        return type
    }
}

/// `DBSIZE` → number of keys in the selected database.
package struct DBSIZE: RedisCommand {
    package typealias Response = Int
    package init() {}
    package var name: String { "DBSIZE" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("DBSIZE") }
}

/// `FLUSHDB` (tests and sandboxes only).
package struct FLUSHDB: RedisCommand {
    package typealias Response = RESPToken
    package init() {}
    package var name: String { "FLUSHDB" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("FLUSHDB") }
}

/// The reply of `INFO`: sections of `key:value` lines, with the keyspace parsed.
package struct RedisInfo: Sendable {
    package struct Keyspace: Sendable, Equatable {
        package var keys: Int
        package var expires: Int
        package var averageTTL: Int

        package init(keys: Int, expires: Int, averageTTL: Int) {
            self.keys = keys
            self.expires = expires
            self.averageTTL = averageTTL
        }
    }

    /// Section name (lower case, e.g. `server`, `memory`) → its fields.
    package var sections: [String: [String: String]]

    /// Database index → key counts, from the `keyspace` section.
    package var keyspace: [Int: Keyspace] {
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

    package subscript(section: String, field: String) -> String? { sections[section]?[field] }

    package init(text: String) {
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
package struct INFO: RedisCommand {
    package typealias Response = RedisInfo
    package var sections: [String]
    package init(_ sections: String...) { self.sections = sections }
    package var name: String { "INFO" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("INFO", sections) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> RedisInfo { RedisInfo(text: try String(fromRESP: token)) }
}

/// `CONFIG GET pattern…` → matching parameters and values.
package struct CONFIGGET: RedisCommand {
    package typealias Response = [String: String]
    package var patterns: [String]
    package init(_ patterns: String...) { self.patterns = patterns }
    package var name: String { "CONFIG GET" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("CONFIG", "GET", patterns) }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in try token.pairs() { result[try String(fromRESP: key)] = try String(fromRESP: value) }
        return result
    }
}

/// `CLIENT ID` → this connection's id.
package struct CLIENTID: RedisCommand {
    package typealias Response = Int64
    package init() {}
    package var name: String { "CLIENT ID" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("CLIENT", "ID") }
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]` → whether a blocked client was unblocked.
package struct CLIENTUNBLOCK: RedisCommand {
    package enum Mode: String, Sendable {
        /// The blocked command returns as if it timed out.
        case timeout = "TIMEOUT"
        /// The blocked command fails with `UNBLOCKED`.
        case error = "ERROR"
    }

    package typealias Response = Bool
    package var clientID: Int64
    package var mode: Mode
    package init(_ clientID: Int64, mode: Mode = .timeout) {
        self.clientID = clientID
        self.mode = mode
    }
    package var name: String { "CLIENT UNBLOCK" }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeArray("CLIENT", "UNBLOCK", clientID, mode.rawValue) }
}

/// One `SCAN` step: the next cursor and the keys of this step.
package struct SCAN: RedisCommand {
    package typealias Response = (cursor: String, keys: [RedisName])
    package var cursor: String
    package var match: String?
    package var count: Int?
    package var type: RedisKeyType?
    package init(cursor: String, match: String? = nil, count: Int? = nil, type: RedisKeyType? = nil) {
        self.cursor = cursor
        self.match = match
        self.count = count
        self.type = type
    }
    package var name: String { "SCAN" }
    package func encode(into encoder: inout RESPCommandEncoder) {
        encoder.encodeArray("SCAN", cursor, RESPOption("MATCH", match), RESPOption("COUNT", count), RESPOption("TYPE", type?.rawValue))
    }
    package func decode(_ token: RESPToken) throws(RESPDecodeError) -> Response {
        let parts = try token.elements()
        guard parts.count == 2 else { throw RESPDecodeError(expected: "[cursor, keys]", found: token.identifier) }
        return (try String(fromRESP: parts[0]), try [RedisName](fromRESP: parts[1]))
    }
}
