import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRESP
import FerryRedis
import FerrySandbox
import FerrySync
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A Redis sync under test: its own key prefix (so parallel tests never see each other's streams and keys), its
/// own target schema, and a configuration built from the sandbox.
struct RedisSyncWorld {
    let sandbox: Sandbox
    let prefix: String
    let schema: String
    var sync: RedisSyncConfiguration
    let session: PostgresSession
    let logger = Logger(label: "ferry.test.redis_sync")

    static func make(_ name: String, adjust: (inout RedisSyncConfiguration, String) -> Void = { _, _ in }) async throws -> RedisSyncWorld {
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        let unique = "\(name)\(UInt32.random(in: 0..<UInt32.max))"
        var sync = RedisSyncConfiguration()
        sync.databases = [0]
        sync.streams.patterns = ["\(unique)-*"]
        sync.streams.discoveryInterval = .milliseconds(300)
        sync.streams.pollInterval = .milliseconds(20)
        sync.streams.claimIdle = .seconds(1)
        sync.keyValues.patterns = ["\(unique):*"]
        sync.keyValues.interval = .milliseconds(200)
        adjust(&sync, unique)
        return RedisSyncWorld(
            sandbox: sandbox, prefix: unique, schema: "rs_\(unique)", sync: sync,
            session: PostgresSession(endpoint: postgres.endpoint, key: "postgres", logger: Logger(label: "ferry.test.sql")))
    }

    var configuration: FerryConfiguration {
        var configuration = FerryConfiguration()
        var postgres = sandbox.postgres!.endpoint
        postgres.schema = schema
        configuration.postgres = postgres
        configuration.redis = sandbox.redis!.endpoint
        configuration.redisSync = sync
        return configuration
    }

    var streams: String { "\"\(schema)\".redis_streams" }
    var keyValues: String { "\"\(schema)\".redis_key_values" }

    @discardableResult
    func redis(_ arguments: String..., database: Int = 0) async throws -> RESPToken {
        try await RedisAdmin.send(sandbox.redis!, arguments, database: database)
    }

    func client() -> RedisClient {
        RedisClient(configuration: .init(connection: RedisConnectionConfiguration(sandbox.redis!.endpoint)), logger: logger)
    }

    /// One pass of the sync with this configuration.
    @discardableResult
    func runOnce() async throws -> (entries: Int, keys: Int) {
        let redis = client()
        do {
            let result = try await RedisSyncService(configuration: configuration, redis: redis, logger: logger).runOnce()
            await redis.shutdown()
            return result
        } catch {
            await redis.shutdown()
            throw error
        }
    }

    func int(_ query: String) async throws -> Int {
        try await session.withConnection { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: query), logger: logger)
            for try await value in rows.decode(Int.self) { return value }
            return 0
        }
    }

    func strings(_ query: String) async throws -> [String?] {
        try await session.withConnection { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: query), logger: logger)
            var values: [String?] = []
            for try await value in rows.decode(String?.self) { values.append(value) }
            return values
        }
    }

    func sql(_ statement: String) async throws {
        try await session.withConnection { try await $0.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
    }

    func close() async { await session.close() }
}

@Suite("Redis → PostgreSQL sync against real Redis and PostgreSQL", .timeLimit(.minutes(5)), .sandbox)
struct RedisSyncTests {
    @Test func streamsCreatedAfterStartAreDiscoveredInDatabasesZeroAndThreeOnly() async throws {
        let world = try await RedisSyncWorld.make("disc") { sync, _ in
            sync.databases = [0, 3]
            sync.keyValues.enabled = false
        }
        let redis = world.client()
        let service = try RedisSyncService(configuration: world.configuration, redis: redis, logger: world.logger)
        let running = Task { try await service.run() }
        defer { running.cancel() }  // a failing test leaves nothing running
        try await Task.sleep(for: .milliseconds(500))
        // Created after the start: in db 0 and 3 (synced), in db 5 (outside the range), one not matching the pattern.
        try await world.redis("XADD", "\(world.prefix)-a", "*", "sensor", "t1", "value", "21.5")
        try await world.redis("XADD", "\(world.prefix)-b", "*", "sensor", "t2", "value", "7", database: 3)
        try await world.redis("XADD", "\(world.prefix)-c", "*", "sensor", "t3", "value", "1", database: 5)
        try await world.redis("XADD", "other-\(world.prefix)", "*", "sensor", "t4", "value", "1")
        try await eventually("entries of db 0 and db 3") {
            (try? await world.int("SELECT count(*) FROM \(world.streams)")) == 2
        }
        let rows = try await world.strings(
            "SELECT redis_db || ' ' || stream_key || ' ' || (data->>'sensor') || ' ' || (data->>'value') FROM \(world.streams) ORDER BY redis_db")
        #expect(rows == ["0 \(world.prefix)-a t1 21.5", "3 \(world.prefix)-b t2 7"])
        // The timestamp comes from the entry id.
        #expect(
            try await world.int(
                "SELECT count(*) FROM \(world.streams) WHERE \"timestamp\" = to_timestamp(split_part(message_id, '-', 1)::bigint / 1000.0)") == 2)
        // A new entry to a known stream arrives without waiting for discovery.
        try await world.redis("XADD", "\(world.prefix)-a", "*", "sensor", "t1", "value", "22")
        try await eventually("the second entry") { (try? await world.int("SELECT count(*) FROM \(world.streams)")) == 3 }
        // Everything is acknowledged (right after each commit): nothing stays pending for the group.
        try await eventually("no pending entries") {
            (try? await world.redis("XPENDING", "\(world.prefix)-a", "redis-pg-sync").elements().first?.decode(as: Int.self)) == 0
        }
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        #expect(try await world.int("SELECT count(*) FROM \(world.streams) WHERE stream_key LIKE '%-c' OR stream_key LIKE 'other-%'") == 0)
        await world.close()
    }

    @Test func conflictPolicySkipKeepsStoredRowsAndOverwriteReplacesThem() async throws {
        var world = try await RedisSyncWorld.make("conf") { sync, _ in sync.keyValues.enabled = false }
        let stream = "\(world.prefix)-orders"
        for index in 1...20 { try await world.redis("XADD", stream, "*", "order", "\(index)", "amount", "\(index * 10)") }
        // At least once: on a starved machine a consumer may claim entries another is still applying (claim_idle is 1s
        // here), and both count them; the row counts below prove each landed once.
        #expect(try await world.runOnce().entries >= 20)
        #expect(try await world.int("SELECT count(*) FROM \(world.streams)") == 20)
        // Someone changed stored rows; the entries are delivered again (the group is rewound).
        try await world.sql("UPDATE \(world.streams) SET data = '{\"edited\": true}' WHERE (data->>'order')::int <= 5")
        try await world.redis("XGROUP", "SETID", stream, "redis-pg-sync", "0")
        try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.streams) WHERE data ? 'edited'") == 5, "skip keeps what is stored")
        #expect(try await world.int("SELECT count(*) FROM \(world.streams)") == 20, "never a duplicate")
        world.sync.streams.conflict = .overwrite
        try await world.redis("XGROUP", "SETID", stream, "redis-pg-sync", "0")
        try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.streams) WHERE data ? 'edited'") == 0, "overwrite replaces it")
        #expect(try await world.int("SELECT count(*) FROM \(world.streams)") == 20)
        await world.close()
    }

    @Test func entriesPendingWithAStoppedConsumerAreClaimedByAnother() async throws {
        let world = try await RedisSyncWorld.make("claim") { sync, _ in sync.keyValues.enabled = false }
        let stream = "\(world.prefix)-events"
        for index in 1...50 { try await world.redis("XADD", stream, "*", "n", "\(index)") }
        // A consumer took every entry and died before acknowledging any.
        try await world.redis("XGROUP", "CREATE", stream, "redis-pg-sync", "0")
        try await world.redis("XREADGROUP", "GROUP", "redis-pg-sync", "crashed", "STREAMS", stream, ">")
        try await Task.sleep(for: .milliseconds(1_100))
        try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.streams)") == 50)
        #expect(try await world.int("SELECT count(DISTINCT data->>'n') FROM \(world.streams)") == 50)
        let pending = try await world.redis("XPENDING", stream, "redis-pg-sync")
        #expect(try pending.elements().first?.decode(as: Int.self) == 0)
        await world.close()
    }

    @Test func mappedFieldsFillATypedTableAndABadValueGoesToTheDeadLetters() async throws {
        let world = try await RedisSyncWorld.make("map") { sync, prefix in
            sync.keyValues.enabled = false
            sync.streams.mappings = [
                StreamMapping(
                    stream: "\(prefix)-orders", table: "orders",
                    columns: [.init(field: "order_id", type: "bigint"), .init(field: "amount", type: "numeric(10,2)"), .init(field: "customer")])
            ]
        }
        let stream = "\(world.prefix)-orders"
        try await world.redis("XADD", stream, "*", "order_id", "1", "amount", "10.50", "customer", "ana")
        try await world.redis("XADD", stream, "*", "order_id", "two", "amount", "3", "customer", "bob")
        try await world.redis("XADD", stream, "*", "order_id", "3", "amount", "7.25", "customer", "eva")
        try await world.runOnce()
        let rows = try await world.strings("SELECT order_id || ' ' || amount || ' ' || customer FROM \"\(world.schema)\".orders ORDER BY order_id")
        #expect(rows == ["1 10.50 ana", "3 7.25 eva"])
        let dead = try await world.strings(
            "SELECT pipeline || ' | ' || (row_data->>'order_id') || ' | ' || reason FROM \"\(world.schema)\".ferry_dead_letters")
        #expect(dead.count == 1)
        #expect(dead.first??.hasPrefix("redis:0:\(stream) | two | invalid input syntax for type bigint") == true, "\(dead)")
        await world.close()
    }

    @Test func everyKeyTypeRoundTripsUnchangedKeysAreNotWrittenAndDeletedKeysAreMarked() async throws {
        let world = try await RedisSyncWorld.make("kv") { sync, _ in sync.streams.enabled = false }
        let p = world.prefix
        try await world.redis("SET", "\(p):string", "hello \"world\"")
        let expiring = ContinuousClock.now
        try await world.redis("PEXPIRE", "\(p):string", "600000")
        try await world.redis("HSET", "\(p):hash", "a", "1", "b", "two")
        try await world.redis("RPUSH", "\(p):list", "x", "y", "x")
        try await world.redis("SADD", "\(p):set", "m2", "m1", "m3")
        try await world.redis("ZADD", "\(p):zset", "1.5", "low", "10", "high")
        try await world.redis("SET", "\(p):binary", "caf\u{e9}")
        let first = try await world.runOnce()
        #expect(first.keys == 6)
        let values = try await world.strings(
            "SELECT redis_key || ' ' || redis_type || ' ' || value::text FROM \(world.keyValues) ORDER BY redis_key")
        #expect(
            values == [
                "\(p):binary string \"café\"", "\(p):hash hash {\"a\": \"1\", \"b\": \"two\"}", "\(p):list list [\"x\", \"y\", \"x\"]",
                "\(p):set set [\"m1\", \"m2\", \"m3\"]", "\(p):string string \"hello \\\"world\\\"\"",
                "\(p):zset zset {\"low\": 1.5, \"high\": 10.0}",
            ], "\(values)")
        // The stored time to live is what was left when the scan read it (a loaded machine may take seconds to get there).
        let ttl = try await world.int("SELECT ttl_ms FROM \(world.keyValues) WHERE redis_key = '\(p):string'")
        let elapsed = Int((ContinuousClock.now - expiring).seconds * 1000) + 1
        #expect(ttl >= 600_000 - elapsed && ttl <= 600_000, "ttl \(ttl) ms, \(elapsed) ms after PEXPIRE")

        // Nothing changed: nothing is written.
        #expect(try await world.runOnce().keys == 0)
        // One changed, one deleted.
        try await world.redis("HSET", "\(p):hash", "c", "3")
        try await world.redis("DEL", "\(p):list")
        #expect(try await world.runOnce().keys == 1)
        #expect(try await world.int("SELECT count(*) FROM \(world.keyValues) WHERE deleted_at IS NOT NULL") == 1)
        #expect(try await world.strings("SELECT redis_key FROM \(world.keyValues) WHERE deleted_at IS NOT NULL") == ["\(p):list"])
        // It comes back: no longer deleted.
        try await world.redis("RPUSH", "\(p):list", "z")
        try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.keyValues) WHERE deleted_at IS NOT NULL") == 0)
        await world.close()
    }

    @Test func keyspaceNotificationsSyncChangesBetweenScans() async throws {
        let world = try await RedisSyncWorld.make("notify") { sync, _ in
            sync.streams.enabled = false
            sync.keyValues.notifications = true
            sync.keyValues.interval = .seconds(3600)  // only the first scan: every later change comes by notification
        }
        let p = world.prefix
        let redis = world.client()
        let service = try RedisSyncService(configuration: world.configuration, redis: redis, logger: world.logger)
        let running = Task { try await service.run() }
        defer { running.cancel() }  // a failing test leaves nothing running
        try await eventually("the sync to follow keyspace notifications") { service.status.snapshot.followingNotifications }
        try await world.redis("SET", "\(p):live", "one")
        try await world.redis("HSET", "\(p):profile", "name", "ana")
        try await eventually("the keys written through notifications", timeout: .seconds(10)) {
            (try? await world.int("SELECT count(*) FROM \(world.keyValues)")) == 2
        }
        try await world.redis("SET", "\(p):live", "two")
        try await eventually("the changed value") {
            (try? await world.strings("SELECT value #>> '{}' FROM \(world.keyValues) WHERE redis_key = '\(p):live'")) == ["two"]
        }
        try await world.redis("DEL", "\(p):profile")
        try await eventually("the deleted key marked") {
            (try? await world.int("SELECT count(*) FROM \(world.keyValues) WHERE deleted_at IS NOT NULL")) == 1
        }
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        await world.close()
    }

    @Test func aUserWhoMayNotCreateTablesGetsTheStatementsOrUsesExistingTables() async throws {
        let world = try await RedisSyncWorld.make("perm") { sync, _ in sync.keyValues.enabled = false }
        let role = "limited_\(world.prefix)"
        try await world.sql("CREATE SCHEMA \"\(world.schema)\"")
        try await world.sql("CREATE ROLE \"\(role)\" LOGIN PASSWORD 'pw'")
        try await world.sql("GRANT USAGE ON SCHEMA \"\(world.schema)\" TO \"\(role)\"")
        var configuration = world.configuration
        configuration.postgres?.user = role
        configuration.postgres?.password = Secret("pw")
        let redis = world.client()
        do {
            _ = try await RedisSyncService(configuration: configuration, redis: redis, logger: world.logger).runOnce()
            Issue.record("expected a permission error")
        } catch let error as FerryError {
            #expect(error.code == .permission)
            #expect(error.description.contains("may not create tables"), "\(error)")
            #expect(error.fix?.contains("CREATE TABLE IF NOT EXISTS \"\(world.schema)\".\"redis_streams\"") == true, "\(error.fix ?? "")")
            #expect(error.fix?.contains("GRANT SELECT, INSERT ON \"\(world.schema)\".\"redis_streams\" TO \"\(role)\"") == true, "\(error.fix ?? "")")
            // An owner runs the printed statements; then the limited user syncs.
            let script = try #require(error.fix).split(separator: "\n").dropFirst().joined(separator: "\n")
            for statement in script.components(separatedBy: ";\n") where !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                try await world.sql(statement.hasSuffix(";") ? String(statement.dropLast()) : statement)
            }
        }
        try await world.redis("XADD", "\(world.prefix)-s", "*", "k", "v")
        let result = try await RedisSyncService(configuration: configuration, redis: redis, logger: world.logger).runOnce()
        // At least once: under load a consumer may claim an entry another applied but had not acknowledged yet.
        #expect(result.entries >= 1)
        await redis.shutdown()
        #expect(try await world.int("SELECT count(*) FROM \(world.streams)") == 1, "stored once")
        await world.close()
    }
}

extension RedisSyncTests {
    /// A key-values-only sync of a user who may not create tables keeps working without `ferry_dead_letters` (which
    /// earlier versions did not need for keys): it says so, and syncs.
    @Test func aKeyOnlySyncRunsWithoutTheDeadLettersTableWhenItMayNotCreateIt() async throws {
        let world = try await RedisSyncWorld.make("permkv") { sync, _ in sync.streams.enabled = false }
        let role = "limitedkv_\(world.prefix)"
        // An owner's pass creates the tables; the dead letters are dropped again (a schema made by an earlier version).
        _ = try await world.runOnce()
        try await world.sql("DROP TABLE \"\(world.schema)\".ferry_dead_letters")
        try await world.sql("CREATE ROLE \"\(role)\" LOGIN PASSWORD 'pw'")
        try await world.sql("GRANT USAGE ON SCHEMA \"\(world.schema)\" TO \"\(role)\"")
        try await world.sql("GRANT SELECT, INSERT, UPDATE ON \(world.keyValues) TO \"\(role)\"")
        try await world.sql("GRANT USAGE ON ALL SEQUENCES IN SCHEMA \"\(world.schema)\" TO \"\(role)\"")
        var configuration = world.configuration
        configuration.postgres?.user = role
        configuration.postgres?.password = Secret("pw")
        try await world.redis("SET", "\(world.prefix):a", "1")
        let redis = world.client()
        let result = try await RedisSyncService(configuration: configuration, redis: redis, logger: world.logger).runOnce()
        await redis.shutdown()
        #expect(result.keys == 1)
        #expect(try await world.int("SELECT count(*) FROM \(world.keyValues)") == 1)
        await world.close()
    }
}

extension RedisSyncWorld {
    /// A `ferry.yaml` for a `ferry` process, with `patterns` for streams and keys.
    func writeConfiguration(
        to directory: String, streamPatterns: [String], keyPatterns: [String], claimIdle: String = "30s", discoveryInterval: String = "200ms",
        keyInterval: String = "200ms"
    ) throws {
        let postgres = sandbox.postgres!
        let redis = sandbox.redis!
        let yaml = """
            log:
              level: info
            http:
              enabled: false
            postgres:
              host: 127.0.0.1
              port: \(postgres.port)
              database: \(postgres.database)
              user: \(postgres.user)
              password: "\(postgres.password)"
              schema: \(schema)
              tls: disable
            redis:
              host: 127.0.0.1
              port: \(redis.port)
              password: "\(redis.password ?? "")"
            redis_sync:
              databases: "0"
              streams:
                patterns: [\(streamPatterns.map { "\"\($0)\"" }.joined(separator: ", "))]
                discovery_interval: \(discoveryInterval)
                poll_interval: 20ms
                claim_idle: \(claimIdle)
              key_values:
                patterns: [\(keyPatterns.map { "\"\($0)\"" }.joined(separator: ", "))]
                interval: \(keyInterval)
            """
        try yaml.write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
    }
}

@Suite("ferry redis commands", .timeLimit(.minutes(5)), .sandbox)
struct RedisSyncCLITests {
    @Test func onceJSONAndMonitorJSON() async throws {
        let world = try await RedisSyncWorld.make("cli")
        let directory = try FerryProcess.scratchDirectory()
        try world.writeConfiguration(to: directory, streamPatterns: ["\(world.prefix)-*"], keyPatterns: ["\(world.prefix):*"])
        for index in 1...30 { try await world.redis("XADD", "\(world.prefix)-s", "*", "n", "\(index)") }
        try await world.redis("SET", "\(world.prefix):k", "v")
        let once = try await FerryProcess.run(["redis", "sync", "--once", "--json"], in: directory)
        #expect(once.status == 0, "\(once.stderr.suffix(2000))")
        #expect(once.stdout.contains("\"entries\":30"), "\(once.stdout)")
        #expect(once.stdout.contains("\"keys_written\":1"), "\(once.stdout)")
        // A consumer that took entries and went away shows up in the monitor.
        try await world.redis("XADD", "\(world.prefix)-s", "*", "n", "31")
        try await world.redis("XREADGROUP", "GROUP", "redis-pg-sync", "gone", "STREAMS", "\(world.prefix)-s", ">")
        let monitor = try await FerryProcess.run(["redis", "monitor", "--json", "--idle", "0s"], in: directory)
        #expect(monitor.status == 0, "\(monitor.stderr.suffix(2000))")
        #expect(monitor.stdout.contains("\"stream\":\"\(world.prefix)-s\",\"length\":31"), "\(monitor.stdout)")
        #expect(monitor.stdout.contains("\"pending\":1"), "\(monitor.stdout)")
        #expect(monitor.stdout.contains("\"idle_consumers\":[\"gone\"]"), "\(monitor.stdout)")
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }

    @Test func sighupReloadsThePatterns() async throws {
        let world = try await RedisSyncWorld.make("hup")
        let directory = try FerryProcess.scratchDirectory()
        try world.writeConfiguration(to: directory, streamPatterns: ["\(world.prefix)-a-*"], keyPatterns: ["\(world.prefix):a:*"])
        let process = try FerryProcess.start(["redis", "sync"], in: directory)
        try await world.redis("XADD", "\(world.prefix)-b-1", "*", "n", "1")
        try await world.redis("SET", "\(world.prefix):b:1", "v")
        try await Task.sleep(for: .seconds(1))
        #expect(try await world.int("SELECT count(*) FROM \(world.streams)") == 0, "not matched before the reload")
        try world.writeConfiguration(to: directory, streamPatterns: ["\(world.prefix)-b-*"], keyPatterns: ["\(world.prefix):b:*"])
        process.signal(SIGHUP)
        try await eventually("the stream matched after the reload") {
            let entries = (try? await world.int("SELECT count(*) FROM \(world.streams)")) ?? 0
            let keys = (try? await world.int("SELECT count(*) FROM \(world.keyValues)")) ?? 0
            return entries == 1 && keys == 1
        }
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(10)) == 0)
        #expect(process.errors().contains("configuration reloaded"), "\(process.errors().suffix(2000))")
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }

    /// SIGTERM while the sync waits out a 60-second discovery and scan interval: it stops at once, cleanly (the bound
    /// tells "cut short" from "waited out the interval", with room for a loaded machine; how fast is not a test's business).
    @Test func sigtermDuringALongDiscoveryIntervalStopsAtOnce() async throws {
        let world = try await RedisSyncWorld.make("term")
        let directory = try FerryProcess.scratchDirectory()
        try world.writeConfiguration(
            to: directory, streamPatterns: ["\(world.prefix)-*"], keyPatterns: ["\(world.prefix):*"], discoveryInterval: "60s", keyInterval: "60s")
        try await world.redis("XADD", "\(world.prefix)-s", "*", "n", "1")
        try await world.redis("SET", "\(world.prefix):k", "v")
        let process = try FerryProcess.start(["redis", "sync", "--log-level", "debug"], in: directory)
        try await eventually("the first pass to be applied") {
            let entries = try await world.int("SELECT count(*) FROM \(world.streams)")
            let keys = try await world.int("SELECT count(*) FROM \(world.keyValues)")
            return entries == 1 && keys == 1
        }
        let signalled = ContinuousClock.now
        process.signal(SIGTERM)
        let status = try await process.wait(timeout: .seconds(30))
        let took = ContinuousClock.now - signalled
        print("ferry redis sync stopped \(took) after SIGTERM")
        #expect(status == 0, "\(process.errors().suffix(2000))")
        #expect(took < .seconds(15), "stopped \(took) after SIGTERM; its log:\n\(process.errors().suffix(4000))")
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }
}

@Suite("Rate limiter")
struct RateLimiterTests {
    /// Measured with a tolerance: 150 operations at 100/s with a burst of 50 take at least one second (1.00 s on an
    /// idle machine).
    @Test func holdsTheRate() async throws {
        let limiter = RateLimiter(rate: 100, burst: 50)
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<150 { try await limiter.acquire() }
        let elapsed = (clock.now - start).seconds
        // The limit is never exceeded; how much later than 1 s it ends depends on how loaded the machine is.
        #expect(elapsed >= 0.95, "\(elapsed)s")
        #expect(elapsed < 60, "\(elapsed)s: waits far longer than the rate asks (a second per operation would be 100 s)")
    }
}

/// Redis and PostgreSQL restarted while entries flow: afterwards every entry the stream holds is in
/// `redis_streams`, once.
@Suite("Redis sync under faults", .serialized, .timeLimit(.minutes(10)), .sandbox)
struct RedisSyncFaultTests {
    /// Appends entries until stopped; failures (a server restarting) are retried.
    final class StreamWriter: Sendable {
        let world: RedisSyncWorld
        let stopped = Atomic(false)
        let written = Atomic(0)
        init(world: RedisSyncWorld) { self.world = world }

        func run(stream: String) async {
            var index = 0
            while !stopped.load(ordering: .relaxed), !Task.isCancelled {  // a test that fails cancels its writers: they must end
                index += 1
                if (try? await world.redis("XADD", stream, "*", "n", "\(index)", "payload", "value-\(index)")) != nil {
                    written.add(1, ordering: .relaxed)
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }

        func stop() { stopped.store(true, ordering: .relaxed) }

        /// Waits until 50 more entries were written (a loaded machine writes slower; a fixed sleep made the test
        /// depend on the pace).
        func waitForProgress(_ world: RedisSyncWorld, _ when: String) async throws {
            let goal = written.load(ordering: .relaxed) + 50
            try await eventually("the writer adds 50 entries \(when)", timeout: .seconds(60)) { written.load(ordering: .relaxed) >= goal }
        }
    }

    static func fastRetries(_ sync: inout RedisSyncConfiguration) {
        sync.keyValues.enabled = false
        sync.redisRetry = Backoff(base: .milliseconds(100), maximum: .seconds(1))
        sync.postgresRetry = Backoff(base: .milliseconds(100), maximum: .seconds(1))
        // Well inside the tests' 60 s catch-up wait: a batch left without an answer by a restart is applied again.
        sync.streams.applyTimeout = .seconds(10)
    }

    /// Every entry in the stream is in PostgreSQL exactly once.
    static func expectStreamInPostgres(_ world: RedisSyncWorld, stream: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let ids = try await world.redis("XRANGE", stream, "-", "+").elements().map { try $0.elements()[0].decode(as: String.self) }
        let stored = Set(try await world.strings("SELECT message_id FROM \(world.streams) WHERE stream_key = '\(stream)'").compactMap { $0 })
        let missing = ids.filter { !stored.contains($0) }
        #expect(!ids.isEmpty, sourceLocation: sourceLocation)
        #expect(missing.isEmpty, "\(missing.count) entries of \(ids.count) missing, e.g. \(missing.prefix(3))", sourceLocation: sourceLocation)
        let duplicates = try await world.int(
            "SELECT count(*) FROM (SELECT message_id FROM \(world.streams) GROUP BY redis_db, stream_key, message_id HAVING count(*) > 1) d")
        #expect(duplicates == 0, sourceLocation: sourceLocation)
    }

    /// `kill -9` of `ferry redis sync` at random moments while entries and keys are written; after a final
    /// `--once`, every entry of every stream is stored once, nothing is a dead letter, and the keys match Redis.
    @Test func killNineAtRandomMomentsLosesNothing() async throws {
        let world = try await RedisSyncWorld.make("kill")
        let directory = try FerryProcess.scratchDirectory()
        try world.writeConfiguration(
            to: directory, streamPatterns: ["\(world.prefix)-*"], keyPatterns: ["\(world.prefix):*"], claimIdle: "1s")
        let seed = UInt64.random(in: 0..<UInt64.max)
        print("redis sync kill -9 seed: \(seed)")
        var generator = SeededRandom(seed: seed)
        let writers = (0..<3).map { _ in StreamWriter(world: world) }
        let streams = (0..<3).map { "\(world.prefix)-s\($0)" }
        let keysWritten = Atomic(0)
        let keysStopped = Atomic(false)
        async let a: Void = writers[0].run(stream: streams[0])
        async let b: Void = writers[1].run(stream: streams[1])
        async let c: Void = writers[2].run(stream: streams[2])
        async let keys: Void = {
            var index = 0
            while !keysStopped.load(ordering: .relaxed), !Task.isCancelled {
                index += 1
                if (try? await world.redis("SET", "\(world.prefix):k\(index % 300)", "v\(index)")) != nil { keysWritten.add(1, ordering: .relaxed) }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }()
        for _ in 0..<12 {
            let process = try FerryProcess.start(["redis", "sync"], in: directory)
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...2_000, using: &generator)))
            process.signal(SIGKILL)
            _ = try await process.wait(timeout: .seconds(10))
            #expect(!process.errors().contains("Fatal error"), "\(process.errors().suffix(2000))")
        }
        for writer in writers { writer.stop() }
        keysStopped.store(true, ordering: .relaxed)
        _ = await (a, b, c, keys)
        let drain = try await FerryProcess.run(["redis", "sync", "--once"], in: directory, timeout: .seconds(120))
        #expect(drain.status == 0, "\(drain.stderr.suffix(2000))")
        for stream in streams { try await Self.expectStreamInPostgres(world, stream: stream) }
        #expect(try await world.int("SELECT count(*) FROM \"\(world.schema)\".ferry_dead_letters") == 0, "kills must not make dead letters")
        let present = try await world.int("SELECT count(*) FROM \(world.keyValues) WHERE deleted_at IS NULL")
        #expect(present == min(300, keysWritten.load(ordering: .relaxed)))
        // Every stored value is the one Redis holds now: none older.
        var stale: [String] = []
        for row in try await world.strings("SELECT redis_key || '=' || (value #>> '{}') FROM \(world.keyValues) WHERE deleted_at IS NULL") {
            let parts = (row ?? "").split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let current = try await world.redis("GET", parts[0]).decode(as: String.self)
            if current != parts[1] { stale.append("\(parts[0]): stored \(parts[1]), Redis has \(current)") }
        }
        #expect(stale.isEmpty, "\(stale.prefix(5))")
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }

    @Test(arguments: [SIGKILL, SIGTERM])
    func redisRestartedMidRunLosesNothing(signal: Int32) async throws {
        let world = try await RedisSyncWorld.make("rrestart") { sync, _ in Self.fastRetries(&sync) }
        let redisInstance = try #require(world.sandbox.redis)
        let stream = "\(world.prefix)-s"
        let writer = StreamWriter(world: world)
        async let writing: Void = writer.run(stream: stream)
        var configuration = RedisClient.Configuration(connection: RedisConnectionConfiguration(redisInstance.endpoint))
        configuration.reconnectTimeout = .seconds(60)
        let redis = RedisClient(configuration: configuration, logger: world.logger)
        let service = try RedisSyncService(configuration: world.configuration, redis: redis, logger: world.logger)
        let ended = Shared<String?>(nil)
        let running = Task {
            do {
                try await service.run()
                ended.update { $0 = "returned" }
            } catch {
                ended.update { $0 = "threw \(error)" }
            }
        }
        defer { running.cancel() }  // a failing test leaves nothing running
        try await writer.waitForProgress(world, "before the restart")
        let pid = try #require(redisInstance.pid)
        ProcessTable.signal(pid, signal)
        #expect(await ProcessTable.waitForExit(pid, timeout: .seconds(15)))
        try await Task.sleep(for: .seconds(1))
        try await redisInstance.start()
        try await writer.waitForProgress(world, "after the restart")
        writer.stop()
        _ = await writing
        try await Self.waitForCatchUp(world, stream: stream, service: service, ended: ended)
        #expect(ended.value == nil, "the sync stopped: \(ended.value ?? "")")
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        try await Self.expectStreamInPostgres(world, stream: stream)
        await world.close()
    }

    /// PostgreSQL goes away while keyspace notifications are followed (and no periodic scan would catch up for an
    /// hour): the changes made meanwhile are written once it is back, and the sync never stops.
    @Test func aPostgresOutageDuringKeyspaceNotificationsLosesNoChange() async throws {
        let world = try await RedisSyncWorld.make("pgnotify") { sync, _ in
            Self.fastRetries(&sync)
            sync.keyValues.enabled = true
            sync.streams.enabled = false
            sync.keyValues.notifications = true
            sync.keyValues.interval = .seconds(3600)
        }
        let postgres = try #require(world.sandbox.postgres)
        let p = world.prefix
        let redis = world.client()
        let service = try RedisSyncService(configuration: world.configuration, redis: redis, logger: world.logger)
        let ended = Shared<String?>(nil)
        let running = Task {
            do {
                try await service.run()
                ended.update { $0 = "returned" }
            } catch {
                ended.update { $0 = "threw \(error)" }
            }
        }
        defer { running.cancel() }  // a failing test leaves nothing running
        try await eventually("the sync to follow keyspace notifications") { service.status.snapshot.followingNotifications }
        try await world.redis("SET", "\(p):before", "1")
        try await eventually("the key written before the outage", timeout: .seconds(15)) {
            (try? await world.int("SELECT count(*) FROM \(world.keyValues)")) == 1
        }
        await postgres.kill()
        try await world.redis("SET", "\(p):during", "2")
        try await world.redis("SET", "\(p):before", "changed")
        // The change is seen and its write fails while PostgreSQL is down.
        try await eventually("a failed write to be retried") { service.status.snapshot.lastError != nil }
        try await postgres.start()
        try await world.redis("SET", "\(p):after", "3")
        try await eventually("every change written after the outage", timeout: .seconds(30)) {
            let values = try? await world.strings("SELECT redis_key || '=' || (value #>> '{}') FROM \(world.keyValues) ORDER BY redis_key")
            return values == ["\(p):after=3", "\(p):before=changed", "\(p):during=2"]
        }
        #expect(ended.value == nil, "the sync stopped: \(ended.value ?? "")")
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        await world.close()
    }

    /// An apply that gets no answer (here a lock held on the table for longer than `applyTimeout`) has its connection
    /// closed and is applied again, until PostgreSQL answers: without that, the heartbeat keeps its entries this
    /// consumer's for ever (seen once in CI after a PostgreSQL restart: one entry pending, the sync idle).
    @Test func anApplyThatGetsNoAnswerIsAppliedAgain() async throws {
        let world = try await RedisSyncWorld.make("noanswer") { sync, _ in
            Self.fastRetries(&sync)
            sync.streams.applyTimeout = .seconds(2)
        }
        let postgres = try #require(world.sandbox.postgres)
        let stream = "\(world.prefix)-s"
        try await world.redis("XADD", stream, "*", "n", "0")
        let redis = world.client()
        let service = try RedisSyncService(configuration: world.configuration, redis: redis, logger: world.logger)
        let running = Task { try await service.run() }
        defer { running.cancel() }  // a failing test leaves nothing running
        try await eventually("the first entry", timeout: .seconds(30)) { (try? await world.int("SELECT count(*) FROM \(world.streams)")) == 1 }
        let holder = PostgresSession(endpoint: postgres.endpoint, key: "postgres", logger: world.logger)
        let locked = Shared(false)
        let locking = Task {
            try await holder.withTransaction { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(world.streams) IN ACCESS EXCLUSIVE MODE"), logger: world.logger)
                locked.update { $0 = true }
                try await Task.sleep(for: .seconds(7))
            }
        }
        try await eventually("the lock") { locked.value }
        for index in 1...20 { try await world.redis("XADD", stream, "*", "n", "\(index)") }
        try await locking.value
        await holder.close()
        try await eventually("every entry once the lock is gone", timeout: .seconds(30)) {
            (try? await world.int("SELECT count(*) FROM \(world.streams)")) == 21
        }
        try await Self.expectStreamInPostgres(world, stream: stream)
        #expect(service.status.snapshot.lastError != nil, "the cut apply was retried (and said so)")
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        await world.close()
    }

    @Test func postgresRestartedMidRunLosesNothing() async throws {
        let world = try await RedisSyncWorld.make("prestart") { sync, _ in Self.fastRetries(&sync) }
        let postgres = try #require(world.sandbox.postgres)
        let stream = "\(world.prefix)-s"
        let writer = StreamWriter(world: world)
        async let writing: Void = writer.run(stream: stream)
        let redis = world.client()
        let service = try RedisSyncService(configuration: world.configuration, redis: redis, logger: world.logger)
        let ended = Shared<String?>(nil)
        let running = Task {
            do {
                try await service.run()
                ended.update { $0 = "returned" }
            } catch {
                ended.update { $0 = "threw \(error)" }
            }
        }
        defer { running.cancel() }  // a failing test leaves nothing running
        // Killed three times, each after the sync made progress again: batches in flight fail with an error and are
        // applied again (they are bound statements, not COPYs, which postgres-nio could not survive).
        for round in 1...3 {
            try await writer.waitForProgress(world, "before restart \(round)")
            await postgres.kill()
            try await Task.sleep(for: .milliseconds(300))
            try await postgres.start()
        }
        try await writer.waitForProgress(world, "after the last restart")
        writer.stop()
        _ = await writing
        try await Self.waitForCatchUp(world, stream: stream, service: service, ended: ended)
        #expect(ended.value == nil, "the sync stopped: \(ended.value ?? "")")
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        try await Self.expectStreamInPostgres(world, stream: stream)
        await world.close()
    }

    /// Waits until PostgreSQL holds as many entries as the stream; on a timeout, says where the sync stood.
    static func waitForCatchUp(_ world: RedisSyncWorld, stream: String, service: RedisSyncService, ended: Shared<String?>) async throws {
        let seen = Shared("nothing read yet")
        try await eventually(
            "the sync to catch up after the restart", timeout: .seconds(60),
            diagnostics: "last seen: \(seen.value); the sync \(ended.value ?? "runs"); status: \(service.status.snapshot)"
        ) {
            if let how = ended.value { throw TimedOut(description: "the sync stopped: \(how)") }
            let count = try await world.redis("XLEN", stream).decode(as: Int.self)
            let stored = try await world.int("SELECT count(*) FROM \(world.streams)")
            let dead = try await world.int("SELECT count(*) FROM \"\(world.schema)\".ferry_dead_letters")
            let pending = try await world.redis("XPENDING", stream, world.sync.streams.group).description
            seen.update { $0 = "XLEN \(count), stored \(stored), dead letters \(dead), XPENDING \(pending)" }
            return stored >= count
        }
    }
}
