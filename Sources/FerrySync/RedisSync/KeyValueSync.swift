import CoreMetrics
import FerryCore
import FerryPostgres
import FerryRESP
import FerryRedis
import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// One key read from Redis: its type, value as JSON and time to live.
struct KeyValueRow: Sendable {
    let key: String
    let type: String
    let json: ByteBuffer
    /// Milliseconds left, or nil when the key does not expire.
    let ttl: Int64?
}

extension RedisSyncService {
    /// Scans every `interval` until shutdown; Redis and PostgreSQL errors are retried with backoff.
    func keyValueLoop() async throws {
        var attempt = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                _ = try await scanKeysOnce()
                attempt = 0
                try? await Task.sleep(for: config.keyValues.interval)
            } catch let error where !(error is CancellationError) && !((error as? FerryError)?.code == .permission) {
                if let redisError = error as? RedisError, redisError.code == .poolClosed { return }
                metrics.retries.increment()
                let backoff = error is RedisError ? config.redisRetry : config.postgresRetry
                if let limit = backoff.maxRetries, attempt >= limit { throw error }
                let message = error is RedisError ? "Redis: \(error)" : PostgresDiagnosis.reason(error)
                status.recordError(message)
                logger.warning("key scan failed, retrying", metadata: ["ferry.error": "\(message)"])
                try? await Task.sleep(for: backoff.delay(attempt: attempt))
                attempt += 1
            }
        }
    }

    /// One full scan of every database and pattern: new and changed keys are written (unchanged ones are not),
    /// keys that matched before and are gone now get `deleted_at`. Returns the keys written.
    func scanKeysOnce() async throws -> Int {
        let config = self.config
        let patterns = config.keyValues.patterns.map(GlobPattern.init)
        let session = PostgresSession(endpoint: target, key: "postgres", logger: logger)
        defer { Task { await session.close() } }
        let started = ContinuousClock.now
        var written = 0
        var deleted = 0
        for database in config.databases {
            var seen = Set<String>()
            var pending: [String] = []
            for pattern in patterns {
                for try await key in redis.scan(database: database, match: pattern.redisMatch, count: 1000) {
                    guard !key.hasPrefix("ferry:"), pattern.matches(key), seen.insert(key).inserted else { continue }
                    pending.append(key)
                    if pending.count >= 1000 {
                        written += try await writeKeys(pending, database: database, session: session)
                        pending.removeAll(keepingCapacity: true)
                    }
                }
            }
            if !pending.isEmpty { written += try await writeKeys(pending, database: database, session: session) }
            deleted += try await markDeleted(database: database, seen: seen, patterns: patterns, session: session)
        }
        metrics.keysWritten.increment(by: Int64(written))
        metrics.keysDeleted.increment(by: Int64(deleted))
        metrics.scanSeconds.recordNanoseconds(Int64((ContinuousClock.now - started).seconds * 1e9))
        metrics.lastSync.record(Date().timeIntervalSince1970)
        status.recordKeys(written: written, deleted: deleted)
        return written
    }

    /// Reads `keys` (two pipelined round trips) and upserts them; returns how many rows changed.
    private func writeKeys(_ keys: [String], database: Int, session: PostgresSession) async throws -> Int {
        try await limiter?.acquire(keys.count * 2)
        let rows = try await redis.withConnection(database: database) { connection in
            try await Self.readKeys(keys, on: connection)
        }
        guard !rows.isEmpty else { return 0 }
        var copy = CopyTextRows(capacity: rows.reduce(64) { $0 + $1.json.readableBytes + $1.key.utf8.count + 32 })
        for row in rows {
            copy.beginRow()
            copy.appendField(row.key)
            copy.appendField(row.type)
            copy.appendField(row.json)
            copy.appendField(row.ttl.map { String($0) })
            copy.endRow()
        }
        let table = tables.keyValues
        let staging = "ferry_redis_key_staging"
        let changed = try await session.withTransaction { connection -> Int in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "CREATE TEMP TABLE IF NOT EXISTS \(staging) (redis_key text, redis_type text, value jsonb, ttl_ms bigint) ON COMMIT DELETE ROWS"
                ),
                logger: logger)
            try await connection.copyFrom(table: staging, columns: ["redis_key", "redis_type", "value", "ttl_ms"], logger: logger) {
                try await $0.write(copy.buffer)
            }
            // A TTL counts down on every scan; it is refreshed only when the value changes or the key gains or
            // loses its expiry, so an unchanged key is never rewritten.
            let result = try await connection.query(
                """
                WITH written AS (
                  INSERT INTO \(unescaped: table) AS t (redis_db, redis_key, redis_type, value, ttl_ms)
                  SELECT \(Int32(database)), redis_key, redis_type, value, ttl_ms FROM \(unescaped: staging)
                  ON CONFLICT (redis_db, redis_key) DO UPDATE
                    SET redis_type = EXCLUDED.redis_type, value = EXCLUDED.value, ttl_ms = EXCLUDED.ttl_ms, updated_at = now(), deleted_at = NULL
                    WHERE t.value IS DISTINCT FROM EXCLUDED.value OR t.redis_type IS DISTINCT FROM EXCLUDED.redis_type
                      OR t.deleted_at IS NOT NULL OR (t.ttl_ms IS NULL) <> (EXCLUDED.ttl_ms IS NULL)
                  RETURNING 1
                ) SELECT count(*)::int8 FROM written
                """,
                logger: logger)
            var count = 0
            for try await value in result.decode(Int64.self) { count = Int(value) }
            return count
        }
        metrics.keysUnchanged.increment(by: Int64(rows.count - changed))
        return changed
    }

    /// TYPE and PTTL of every key in one pipeline, then each value by its type in a second; keys that vanished in
    /// between, and streams (synced as streams), are left out.
    static func readKeys(_ keys: [String], on connection: RedisConnection) async throws -> [KeyValueRow] {
        var first: [RawCommand] = []
        first.reserveCapacity(keys.count * 2)
        for key in keys {
            first.append(RawCommand("TYPE", key))
            first.append(RawCommand("PTTL", key))
        }
        let meta = try await connection.pipeline(first)
        var wanted: [(key: String, type: String, ttl: Int64?)] = []
        var second: [RawCommand] = []
        for (index, key) in keys.enumerated() {
            guard case .success(let typeToken) = meta[index * 2], let type = try? typeToken.decode(as: String.self) else { continue }
            var ttl: Int64?
            if case .success(let ttlToken) = meta[index * 2 + 1], let value = try? ttlToken.decode(as: Int.self), value >= 0 { ttl = Int64(value) }
            let command: RawCommand
            switch type {
            case "string": command = RawCommand("GET", key)
            case "hash": command = RawCommand("HGETALL", key)
            case "list": command = RawCommand("LRANGE", key, "0", "-1")
            case "set": command = RawCommand("SMEMBERS", key)
            case "zset": command = RawCommand("ZRANGE", key, "0", "-1", "WITHSCORES")
            default: continue  // none (deleted meanwhile), stream, module types
            }
            wanted.append((key, type, ttl))
            second.append(command)
        }
        guard !second.isEmpty else { return [] }
        let values = try await connection.pipeline(second)
        var rows: [KeyValueRow] = []
        rows.reserveCapacity(wanted.count)
        for (item, result) in zip(wanted, values) {
            guard case .success(let token) = result, let json = valueJSON(token, type: item.type) else { continue }
            rows.append(KeyValueRow(key: item.key, type: item.type, json: json, ttl: item.ttl))
        }
        return rows
    }

    /// The value as JSON: a string; a hash as an object; a list as an array; a set as a sorted array (so an
    /// unchanged set compares equal); a sorted set as an object of member → score. Nil when the key vanished.
    static func valueJSON(_ token: RESPToken, type: String) -> ByteBuffer? {
        var out = ByteBuffer()
        func bytes(_ token: RESPToken) -> ByteBuffer? {
            switch token.value {
            case .bulkString(let value), .simpleString(let value), .verbatimString(let value): value
            case .number(let value): ByteBuffer(string: String(value))
            case .double(let value): ByteBuffer(string: String(value))
            default: nil
            }
        }
        func pairs(_ token: RESPToken) -> [(ByteBuffer, RESPToken)] {
            switch token.value {
            case .map(let map): return map.compactMap { pair in bytes(pair.key).map { ($0, pair.value) } }
            case .array(let array):
                let items = array.elements
                if items.first.map({ if case .array = $0.value { true } else { false } }) == true {
                    // RESP3 ZRANGE … WITHSCORES: [[member, score], …]
                    return items.compactMap { pair in
                        let parts = (try? pair.elements()) ?? []
                        guard parts.count == 2, let member = bytes(parts[0]) else { return nil }
                        return (member, parts[1])
                    }
                }
                return stride(from: 0, to: items.count - 1, by: 2).compactMap { index in bytes(items[index]).map { ($0, items[index + 1]) } }
            default: return []
            }
        }
        switch type {
        case "string":
            guard let value = bytes(token) else { return nil }
            JSONBytes.appendValue(value, to: &out)
        case "hash", "zset":
            let entries = pairs(token)
            if entries.isEmpty, case .null = token.value { return nil }
            out.writeString("{")
            for (index, (key, value)) in entries.enumerated() {
                if index > 0 { out.writeString(",") }
                JSONBytes.appendKey(key, to: &out)
                out.writeString(":")
                if type == "zset" {
                    let score: Double? =
                        switch value.value {
                        case .double(let number): number
                        default: bytes(value).flatMap { Double(String(buffer: $0)) }
                        }
                    if let score, score.isFinite {
                        out.writeString(String(score))
                    } else {
                        JSONBytes.appendValue(bytes(value) ?? ByteBuffer(), to: &out)
                    }
                } else {
                    JSONBytes.appendValue(bytes(value) ?? ByteBuffer(), to: &out)
                }
            }
            out.writeString("}")
        case "list", "set":
            let items: [ByteBuffer]
            switch token.value {
            case .array(let array), .set(let array): items = array.compactMap(bytes)
            default: return nil
            }
            let ordered = type == "set" ? items.sorted { $0.readableBytesView.lexicographicallyPrecedes($1.readableBytesView) } : items
            out.writeString("[")
            for (index, item) in ordered.enumerated() {
                if index > 0 { out.writeString(",") }
                JSONBytes.appendValue(item, to: &out)
            }
            out.writeString("]")
        default:
            return nil
        }
        return out
    }

    /// Marks rows of `database` deleted when their key matches a current pattern and was not seen by this full scan.
    private func markDeleted(database: Int, seen: Set<String>, patterns: [GlobPattern], session: PostgresSession) async throws -> Int {
        var copy = CopyTextRows(capacity: seen.count * 24 + 64)
        for key in seen {
            copy.beginRow()
            copy.appendField(key)
            copy.endRow()
        }
        let table = tables.keyValues
        let expressions = patterns.map(\.postgresRegex)
        return try await session.withTransaction { connection -> Int in
            try await connection.query(
                "CREATE TEMP TABLE IF NOT EXISTS ferry_redis_seen_keys (redis_key text PRIMARY KEY) ON COMMIT DELETE ROWS", logger: logger)
            if !copy.isEmpty {
                try await connection.copyFrom(table: "ferry_redis_seen_keys", columns: ["redis_key"], logger: logger) {
                    try await $0.write(copy.buffer)
                }
            }
            let result = try await connection.query(
                """
                WITH gone AS (
                  UPDATE \(unescaped: table) AS t SET deleted_at = now()
                  WHERE t.redis_db = \(Int32(database)) AND t.deleted_at IS NULL AND t.redis_key ~ ANY(\(expressions)::text[])
                    AND NOT EXISTS (SELECT 1 FROM ferry_redis_seen_keys s WHERE s.redis_key = t.redis_key)
                  RETURNING 1
                ) SELECT count(*)::int8 FROM gone
                """,
                logger: logger)
            var count = 0
            for try await value in result.decode(Int64.self) { count = Int(value) }
            return count
        }
    }
}

extension GlobPattern {
    /// The pattern as an anchored PostgreSQL regular expression (for `~`), with the same meaning.
    public var postgresRegex: String {
        let characters = Array(text)
        var out = "^"
        var index = 0
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "*": out += ".*"
            case "?": out += "."
            case "[":
                if let end = characters[(index + 1)...].firstIndex(of: "]"), end > index + 1 || characters.count > end + 1 {
                    var body = String(characters[(index + 1)..<end])
                    if body.hasPrefix("!") { body = "^" + body.dropFirst() }
                    body = body.replacingOccurrences(of: "\\", with: "\\\\")
                    out += "[" + body + "]"
                    index = end + 1
                    continue
                }
                out += "\\["
            default:
                if "\\.^$|()+{}]".contains(character) { out += "\\" }
                out.append(character)
            }
            index += 1
        }
        return out + "$"
    }
}
