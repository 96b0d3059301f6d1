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
import Synchronization

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
        // A scan that keeps failing is a stall: none completed for stall_after past two intervals.
        var watch = StallWatch(after: config.stallAfter + config.keyValues.interval * 2)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            recordStall(keys: .some(watch.observe(progress: status.snapshot.keyScans, backlog: 1, what: "key scan completed", countsBacklog: false)))
            do {
                _ = try await scanKeysOnce()
                attempt = 0
                recordStall(
                    keys: .some(watch.observe(progress: status.snapshot.keyScans, backlog: 1, what: "key scan completed", countsBacklog: false)))
                await pause(for: config.keyValues.interval)
            } catch let error as RedisError where error.code == .poolClosed {
                return
            } catch let error where Self.isRetryable(error) {
                metrics.retries.increment()
                let backoff = error is RedisError ? config.redisRetry : config.postgresRetry
                if let limit = backoff.maxRetries, attempt >= limit { throw error }
                let message = error is RedisError ? "Redis: \(error)" : PostgresDiagnosis.reason(error)
                status.recordError(message)
                logger.warning("key scan failed, retrying", metadata: ["ferry.error": "\(message)"])
                await pause(for: backoff.delay(attempt: attempt))
                attempt += 1
            }
        }
    }

    /// One full scan of every database and pattern: new and changed keys are written (unchanged ones are not),
    /// keys that matched before and are gone now get `deleted_at`. Returns the keys written.
    ///
    /// Reading and writing overlap: while batches of keys are read from Redis (SCAN, then TYPE+PTTL and the values
    /// in two pipelines, two batches at a time), up to `writers` earlier batches are being upserted, each on its own
    /// PostgreSQL session.
    func scanKeysOnce() async throws -> Int {
        let config = self.config
        let patterns = config.keyValues.patterns.map(GlobPattern.init)
        let writers = 3
        let batchSize = 2_000
        var sessions = (0..<writers).map { _ in PostgresSession(endpoint: target, key: "postgres", logger: logger) }
        let started = ContinuousClock.now
        // Keys notified while this scan runs are written again after it (see ``KeyChanges``).
        let recording = keyChanges.beginRecording()
        defer { keyChanges.endRecording(recording) }
        var written = 0
        var deleted = 0
        do {
            for database in config.databases {
                let known = try await knownKeys(database: database, session: sessions[0])
                var seen = Set<String>()
                // Sized up front from what was there before or the database's key count (capped), so a first scan
                // of a million keys does not rehash the set twenty times.
                let keysInDatabase = (try? await redis.send(DBSIZE(), database: database)) ?? 0
                seen.reserveCapacity(max(known.count, min(keysInDatabase, 4_000_000)))
                try await withThrowingTaskGroup(of: (Int, PostgresSession).self) { group in
                    var idle = sessions
                    func write(_ rows: [KeyValueRow]) async throws {
                        if idle.isEmpty, let (count, session) = try await group.next() {
                            written += count
                            idle.append(session)
                        }
                        let session = idle.removeLast()
                        // Keys not present before are usually new rows: insert them plainly, upsert the rest.
                        let fresh = known.isEmpty ? rows : rows.filter { !known.contains($0.key) }
                        let rest = fresh.count == rows.count ? [] : rows.filter { known.contains($0.key) }
                        group.addTask {
                            var count = 0
                            if !fresh.isEmpty {
                                if let inserted = try await self.insertNew(fresh, database: database, session: session) {
                                    count += inserted
                                } else {
                                    count += try await self.upsert(fresh, database: database, session: session)
                                }
                            }
                            if !rest.isEmpty { count += try await self.upsert(rest, database: database, session: session) }
                            return (count, session)
                        }
                    }
                    // Two batches are read at a time, on two connections: the scan goes on and one batch's values
                    // are decoded while Redis answers for the other.
                    try await withThrowingTaskGroup(of: [KeyValueRow].self) { reads in
                        var reading = 0
                        func read(_ keys: [String]) async throws {
                            try await limiter?.acquire(keys.count * 2)
                            reads.addTask {
                                try await self.redis.withConnection(database: database) { connection in
                                    try await Self.readKeys(keys, on: connection).rows
                                }
                            }
                            reading += 1
                            if reading >= 2, let rows = try await reads.next() {
                                reading -= 1
                                try await write(rows)
                            }
                        }
                        var pending: [String] = []
                        pending.reserveCapacity(batchSize)
                        for pattern in patterns {
                            for try await name in redis.scan(database: database, match: pattern.redisMatch, count: batchSize) {
                                guard let key = name.text else {
                                    if let problem = name.problem, !rejected.isRecorded(name, kind: .key, database: database) {
                                        await rejected.report(name, kind: .key, database: database, problem: problem)
                                    }
                                    continue
                                }
                                guard !key.hasPrefix("ferry:"), pattern.matches(key), seen.insert(key).inserted else { continue }
                                pending.append(key)
                                if pending.count >= batchSize {
                                    try await read(pending)
                                    pending.removeAll(keepingCapacity: true)
                                }
                            }
                        }
                        if !pending.isEmpty { try await read(pending) }
                        for try await rows in reads { try await write(rows) }
                    }
                    for try await (count, session) in group {
                        written += count
                        idle.append(session)
                    }
                    sessions = idle
                }
                deleted += try await markDeleted(database: database, known: known, seen: seen, patterns: patterns, session: sessions[0])
            }
        } catch {
            for session in sessions { await session.close() }
            throw error
        }
        for session in sessions { await session.close() }
        metrics.keysWritten.increment(by: Int64(written))
        metrics.keysDeleted.increment(by: Int64(deleted))
        metrics.scanSeconds.recordNanoseconds(Int64((ContinuousClock.now - started).seconds * 1e9))
        metrics.lastSync.record(Date().timeIntervalSince1970)
        status.recordKeys(written: written, deleted: deleted)
        return written
    }

    /// The keys of `database` stored as present, remembered between scans (loaded from PostgreSQL the first time),
    /// so finding deleted keys needs no PostgreSQL work unless some were deleted.
    private func knownKeys(database: Int, session: PostgresSession) async throws -> Set<String> {
        if let known = keyMemory.known(database: database) { return known }
        let table = tables.keyValues
        let keys = try await session.withConnection { connection -> Set<String> in
            let rows = try await connection.query(
                "SELECT redis_key FROM \(unescaped: table) WHERE redis_db = \(Int32(database)) AND deleted_at IS NULL", logger: logger)
            var keys = Set<String>()
            for try await key in rows.decode(String.self) { keys.insert(key) }
            return keys
        }
        keyMemory.remember(database: database, keys: keys)
        return keys
    }

    /// `rows` as a table `staged` (redis_key, redis_type, value jsonb, ttl_ms), bound as four `text[]` arrays from
    /// `$2` (`$1` is the database).
    static let staged = """
        (SELECT redis_key, redis_type, value::jsonb AS value, ttl_ms::int8 AS ttl_ms
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(redis_key, redis_type, value, ttl_ms)) AS staged
        """

    static func binds(_ rows: [KeyValueRow], database: Int) -> PostgresBindings {
        var keys = PostgresTextArray(capacity: rows.reduce(0) { $0 + $1.key.utf8.count + 4 })
        var types = PostgresTextArray(capacity: rows.count * 10)
        var values = PostgresTextArray(capacity: rows.reduce(0) { $0 + $1.json.readableBytes + 4 })
        var ttls = PostgresTextArray(capacity: rows.count * 12)
        for row in rows {
            keys.append(row.key)
            types.append(row.type)
            values.append(row.json)
            ttls.append(row.ttl.map { String($0) })
        }
        var binds = PostgresBindings(capacity: 5)
        binds.append(Int32(database))
        binds.append(keys)
        binds.append(types)
        binds.append(values)
        binds.append(ttls)
        return binds
    }

    /// Inserts `rows` plainly (one statement); nil (and nothing written) when one of them is already there.
    func insertNew(_ rows: [KeyValueRow], database: Int, session: PostgresSession) async throws -> Int? {
        let binds = Self.binds(rows, database: database)
        let table = tables.keyValues
        do {
            try await session.withConnection { connection in
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "INSERT INTO \(table) (redis_db, redis_key, redis_type, value, ttl_ms) SELECT $1, * FROM \(Self.staged)",
                        binds: binds),
                    logger: logger)
            }
            return rows.count
        } catch  where PostgresDiagnosis.sqlState(of: error) == "23505" {
            return nil
        }
    }

    /// Writes `rows` of `database`; returns how many rows changed (unchanged values are not written).
    func upsert(_ rows: [KeyValueRow], database: Int, session: PostgresSession) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let binds = Self.binds(rows, database: database)
        let table = tables.keyValues
        let changed = try await session.withConnection { connection -> Int in
            // A TTL counts down on every scan; it is refreshed only when the value changes or the key gains or
            // loses its expiry, so an unchanged key is never rewritten.
            let result = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH written AS (
                          INSERT INTO \(table) AS t (redis_db, redis_key, redis_type, value, ttl_ms)
                          SELECT $1, * FROM \(Self.staged)
                          ON CONFLICT (redis_db, redis_key) DO UPDATE
                            SET redis_type = EXCLUDED.redis_type, value = EXCLUDED.value, ttl_ms = EXCLUDED.ttl_ms, updated_at = now(), deleted_at = NULL
                            WHERE t.value IS DISTINCT FROM EXCLUDED.value OR t.redis_type IS DISTINCT FROM EXCLUDED.redis_type
                              OR t.deleted_at IS NOT NULL OR (t.ttl_ms IS NULL) <> (EXCLUDED.ttl_ms IS NULL)
                          RETURNING 1
                        ) SELECT count(*)::int8 FROM written
                        """,
                    binds: binds),
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
    static func readKeys(_ keys: [String], on connection: RedisConnection) async throws -> (rows: [KeyValueRow], missing: [String]) {
        var first: [KeyRead] = []
        first.reserveCapacity(keys.count * 2)
        for key in keys {
            first.append(KeyRead(.type, key))
            first.append(KeyRead(.pttl, key))
        }
        let meta = try await connection.pipeline(first)
        var wanted: [(key: String, type: String, ttl: Int64?)] = []
        var second: [KeyRead] = []
        var missing: [String] = []
        for (index, key) in keys.enumerated() {
            guard case .success(let typeToken) = meta[index * 2], let type = try? typeToken.decode(as: String.self) else { continue }
            if type == "none" {
                missing.append(key)
                continue
            }
            var ttl: Int64?
            if case .success(let ttlToken) = meta[index * 2 + 1], let value = try? ttlToken.decode(as: Int.self), value >= 0 { ttl = Int64(value) }
            let command: KeyRead
            switch type {
            case "string": command = KeyRead(.get, key)
            case "hash": command = KeyRead(.hgetall, key)
            case "list": command = KeyRead(.lrange, key)
            case "set": command = KeyRead(.smembers, key)
            case "zset": command = KeyRead(.zrange, key)
            default: continue  // streams (synced as streams), module types
            }
            wanted.append((key, type, ttl))
            second.append(command)
        }
        guard !second.isEmpty else { return ([], missing) }
        let values = try await connection.pipeline(second)
        var rows: [KeyValueRow] = []
        rows.reserveCapacity(wanted.count)
        for (item, result) in zip(wanted, values) {
            guard case .success(let token) = result, let json = valueJSON(token, type: item.type) else {
                missing.append(item.key)  // deleted between the two round trips
                continue
            }
            rows.append(KeyValueRow(key: item.key, type: item.type, json: json, ttl: item.ttl))
        }
        return (rows, missing)
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
            var first = true
            JSONBytes.forEachInJSONBOrder(
                count: entries.count, name: { entries[$0].0 },
                body: { index in
                    let (key, value) = entries[index]
                    JSONBytes.appendKey(key, first: first, to: &out)
                    first = false
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
                })
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

    /// Marks rows of `database` deleted when their key was present before, matches a current pattern, and was not
    /// seen by this full scan; then remembers what is present now.
    private func markDeleted(database: Int, known: Set<String>, seen: Set<String>, patterns: [GlobPattern], session: PostgresSession)
        async throws -> Int
    {
        var gone: [String] = []
        var stillKnown = seen
        for key in known where !seen.contains(key) {
            if patterns.contains(where: { $0.matches(key) }) { gone.append(key) } else { stillKnown.insert(key) }
        }
        var count = 0
        let table = tables.keyValues
        var start = 0
        while start < gone.count {
            let chunk = Array(gone[start..<min(gone.count, start + 10_000)])
            count += try await session.withConnection { connection -> Int in
                let result = try await connection.query(
                    """
                    WITH gone AS (
                      UPDATE \(unescaped: table) SET deleted_at = now()
                      WHERE redis_db = \(Int32(database)) AND redis_key = ANY(\(chunk)) AND deleted_at IS NULL RETURNING 1
                    ) SELECT count(*)::int8 FROM gone
                    """, logger: logger)
                var count = 0
                for try await value in result.decode(Int64.self) { count = Int(value) }
                return count
            }
            start += 10_000
        }
        keyMemory.remember(database: database, keys: stillKnown)
        return count
    }
}

/// One read of the key scan (three per key), encoded without an argument array per command.
struct KeyRead: RedisCommand {
    enum Operation {
        case type, pttl, get, hgetall, lrange, smembers, zrange
    }

    let operation: Operation
    let key: String

    init(_ operation: Operation, _ key: String) {
        self.operation = operation
        self.key = key
    }

    var name: String {
        switch operation {
        case .type: "TYPE"
        case .pttl: "PTTL"
        case .get: "GET"
        case .hgetall: "HGETALL"
        case .lrange: "LRANGE"
        case .smembers: "SMEMBERS"
        case .zrange: "ZRANGE"
        }
    }

    func encode(into encoder: inout RESPCommandEncoder) {
        switch operation {
        case .type: encoder.encodeArray("TYPE", key)
        case .pttl: encoder.encodeArray("PTTL", key)
        case .get: encoder.encodeArray("GET", key)
        case .hgetall: encoder.encodeArray("HGETALL", key)
        case .lrange: encoder.encodeArray("LRANGE", key, "0", "-1")
        case .smembers: encoder.encodeArray("SMEMBERS", key)
        case .zrange: encoder.encodeArray("ZRANGE", key, "0", "-1", "WITHSCORES")
        }
    }

    func decode(_ token: RESPToken) throws(RESPDecodeError) -> RESPToken { token }
}

/// Per database, the keys stored as present in `redis_key_values` as of the last full scan.
final class KeyMemory: Sendable {
    private let state = Mutex<[Int: Set<String>]>([:])

    func known(database: Int) -> Set<String>? { state.withLock { $0[database] } }

    func remember(database: Int, keys: Set<String>) { state.withLock { $0[database] = keys } }

    func insert(database: Int, keys: [String]) {
        state.withLock { state in
            guard state[database] != nil else { return }
            state[database]!.formUnion(keys)
        }
    }
}

/// Keys reported changed by keyspace notifications, per database, until the next flush.
///
/// A scan also records the keys notified while it runs (``beginRecording()``): it may have read such a key before
/// the change and write that older value after the notification's newer one was written, or mark deleted a key
/// created since. Once the scan is done those keys are flushed again, so the last write is always a read made after
/// the last change.
final class KeyChanges: Sendable {
    private let state = Mutex<[Int: Set<String>]>([:])
    private let recordings = Mutex<(next: Int, keys: [Int: [Int: Set<String>]])>((0, [:]))

    func add(database: Int, key: String) {
        _ = state.withLock { $0[database, default: []].insert(key) }
        recordings.withLock { recordings in
            for id in recordings.keys.keys { recordings.keys[id]![database, default: []].insert(key) }
        }
    }

    /// Starts recording the keys notified from now on; returns the recording's id for ``endRecording(_:)``.
    func beginRecording() -> Int {
        recordings.withLock { recordings in
            recordings.next += 1
            recordings.keys[recordings.next] = [:]
            return recordings.next
        }
    }

    /// Stops a recording and queues the keys notified during it for the next flush again.
    func endRecording(_ id: Int) {
        let noted = recordings.withLock { $0.keys.removeValue(forKey: id) } ?? [:]
        for (database, keys) in noted where !keys.isEmpty { add(database: database, keys: keys) }
    }

    func add(database: Int, keys: Set<String>) { state.withLock { $0[database, default: []].formUnion(keys) } }

    func drain() -> [Int: Set<String>] {
        state.withLock { changes in
            defer { changes = [:] }
            return changes
        }
    }

    /// `__keyspace@3__:user:1` → (3, "user:1"). A key with a NUL byte is left to the scan, which records it in the
    /// dead letters with its exact bytes (``RejectedNames``): PostgreSQL text cannot hold it.
    static func parse(channel: String) -> (database: Int, key: String)? {
        guard channel.hasPrefix("__keyspace@"), let end = channel.range(of: "__:") else { return nil }
        let number = channel[channel.index(channel.startIndex, offsetBy: 11)..<end.lowerBound]
        guard let database = Int(number) else { return nil }
        let key = String(channel[end.upperBound...])
        guard !key.unicodeScalars.contains("\u{0}") else { return nil }
        return (database, key)
    }
}

extension RedisSyncService {
    /// Real-time mode: keyspace notifications of every database in the range mark keys changed, and changed keys
    /// are written (or marked deleted) within about 50 ms. The periodic scan keeps running as a safety net, so a
    /// notification lost while disconnected is caught by the next full scan.
    func notificationLoop() async throws {
        var attempt = 0
        // Changes outlive a reconnection: keys whose write failed (PostgreSQL down) are written after it.
        let changes = keyChanges
        var reconnecting = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await followNotifications(changes, catchUp: reconnecting, resetAttempts: { attempt = 0 })
                return
            } catch let error as RedisError where error.code == .poolClosed {
                return
            } catch let error where Self.isRetryable(error) {
                metrics.retries.increment()
                let backoff = error is RedisError ? config.redisRetry : config.postgresRetry
                if let limit = backoff.maxRetries, attempt >= limit { throw error }
                let message = error is RedisError ? "Redis: \(error)" : PostgresDiagnosis.reason(error)
                status.recordError(message)
                logger.warning("keyspace notifications interrupted, reconnecting", metadata: ["ferry.error": "\(message)"])
                await pause(for: backoff.delay(attempt: attempt))
                attempt += 1
                reconnecting = true
            }
        }
    }

    /// Redis and PostgreSQL outages are retried with backoff; a shutdown, a closed pool (the daemon is stopping) and
    /// a missing permission (retrying cannot help: the job stops and says so) are not.
    static func isRetryable(_ error: any Error) -> Bool {
        if error is CancellationError { return false }
        if let redis = error as? RedisError { return redis.code != .poolClosed }
        if let ferry = error as? FerryError { return ferry.code != .permission }
        return true
    }

    /// Subscribes and writes what the notifications name every 50 ms. With `catchUp` (after an interruption, when
    /// notifications may have been missed while unsubscribed) one full scan runs right after subscribing.
    private func followNotifications(_ changes: KeyChanges, catchUp: Bool, resetAttempts: () -> Void) async throws {
        guard let endpoint = configuration.redis else { return }
        let connection = try await RedisConnection.connect(
            RedisConnectionConfiguration(endpoint), logger: logger,
            onPush: { token in
                guard let message = RedisPushMessage(token), message.kind == "pmessage",
                    let (database, key) = KeyChanges.parse(channel: message.channel)
                else { return }
                changes.add(database: database, key: key)
            })
        let session = PostgresSession(endpoint: target, key: "postgres", logger: logger)
        do {
            try await enableNotifications(on: connection, address: "\(endpoint.host):\(endpoint.port)")
            try await connection.psubscribe(config.databases.map { "__keyspace@\($0)__:*" })
            logger.notice(
                "following keyspace notifications", metadata: ["ferry.databases": "\(RedisSyncConfiguration.formatDatabases(config.databases))"])
            if catchUp { _ = try await scanKeysOnce() }
            status.recordFollowingNotifications(true)
            resetAttempts()
            var lastPing = ContinuousClock.now
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try await Task.sleep(for: .milliseconds(50))
                let patterns = config.keyValues.patterns.map(GlobPattern.init)
                var drained = changes.drain()
                for database in drained.keys.sorted() where config.databases.contains(database) {
                    let wanted = drained[database, default: []].filter { key in !key.hasPrefix("ferry:") && patterns.contains { $0.matches(key) } }
                    do {
                        if !wanted.isEmpty { try await applyChanges(Array(wanted), database: database, session: session) }
                    } catch {
                        for (database, keys) in drained { changes.add(database: database, keys: keys) }
                        throw error
                    }
                    drained[database] = nil
                }
                if ContinuousClock.now - lastPing > .seconds(1) {
                    try await connection.pingSubscribed()
                    lastPing = .now
                }
            }
        } catch {
            status.recordFollowingNotifications(false)
            await connection.close()
            await session.close()
            throw error
        }
        status.recordFollowingNotifications(false)
        await connection.close()
        await session.close()
    }

    /// Keyspace notifications must include keyspace events (`K`) for every command class (`A`); Ferry turns them on
    /// when they are off, or says exactly what to do when it may not.
    private func enableNotifications(on connection: RedisConnection, address: String) async throws {
        let current = try await connection.send(RawCommand("CONFIG", "GET", "notify-keyspace-events"))
        var value = ""
        if case .map(let map) = current.value {
            for (_, setting) in map { value = (try? setting.decode(as: String.self)) ?? "" }
        } else if let items = try? current.elements(), items.count == 2 {
            value = (try? items[1].decode(as: String.self)) ?? ""
        }
        let all = "g$lshzxet"
        if value.contains("K") && (value.contains("A") || all.allSatisfy(value.contains)) { return }
        do {
            _ = try await connection.send(RawCommand("CONFIG", "SET", "notify-keyspace-events", value + "KA"))
            logger.notice(
                "turned on keyspace notifications (notify-keyspace-events KA) for real-time key sync", metadata: ["ferry.redis": "\(address)"])
        } catch {
            throw FerryError(
                .permission, "keyspace notifications are off on Redis at \(address) and this user may not turn them on (\(error))",
                fix:
                    "run `CONFIG SET notify-keyspace-events KA` as an admin (or put `notify-keyspace-events KA` in redis.conf), or set redis_sync.key_values.notifications: false"
            )
        }
    }

    /// Writes the changed keys that exist and marks the ones that are gone.
    private func applyChanges(_ keys: [String], database: Int, session: PostgresSession) async throws {
        try await limiter?.acquire(keys.count * 2)
        let (rows, missing) = try await redis.withConnection(database: database) { connection in
            try await Self.readKeys(keys, on: connection)
        }
        let written = try await upsert(rows, database: database, session: session)
        keyMemory.insert(database: database, keys: rows.map(\.key))
        var deleted = 0
        if !missing.isEmpty {
            let table = tables.keyValues
            deleted = try await session.withConnection { connection -> Int in
                let result = try await connection.query(
                    """
                    WITH gone AS (
                      UPDATE \(unescaped: table) SET deleted_at = now()
                      WHERE redis_db = \(Int32(database)) AND redis_key = ANY(\(missing)) AND deleted_at IS NULL RETURNING 1
                    ) SELECT count(*)::int8 FROM gone
                    """, logger: logger)
                var count = 0
                for try await value in result.decode(Int64.self) { count = Int(value) }
                return count
            }
        }
        metrics.keysWritten.increment(by: Int64(written))
        metrics.keysDeleted.increment(by: Int64(deleted))
        status.recordKeys(written: written, deleted: deleted)
    }
}
