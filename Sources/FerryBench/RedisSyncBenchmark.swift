import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRedis
package import FerrySandbox
import FerrySync
import Foundation
package import Logging

/// The Redis → PostgreSQL sync: stream entries of 5 fields and keys of mixed types, beside a redis-py + psycopg2
/// equivalent (Benchmarks/python/redis_pg_sync.py) in the same run.
package struct RedisSyncBenchmark: Sendable {
    package struct Options: Sendable {
        package var entries = 1_000_000
        package var keys = 1_000_000
        package var pythonEntries = 200_000
        package var pythonKeys = 200_000
        package var skipPeers = false
        package var consumers = RedisSyncConfiguration.Streams().consumers
        package var pythonScript = "Benchmarks/python/redis_pg_sync.py"

        package init() {}
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    package func run(on sandbox: Sandbox, progress: @escaping @Sendable (String) -> Void) async throws -> [SyncBenchmark.Figure] {
        guard let postgres = sandbox.postgres, let redisInstance = sandbox.redis else {
            throw FerryError(.sandbox, "the benchmark needs the sandbox's PostgreSQL and Redis")
        }
        let redis = RedisClient(configuration: .init(connection: RedisConnectionConfiguration(redisInstance.endpoint)), logger: logger)
        defer { Task { await redis.shutdown() } }
        var figures: [SyncBenchmark.Figure] = []

        // Streams: database 0 for Ferry, database 2 for the peer.
        progress("writing \(options.entries) stream entries")
        try await Self.writeEntries(redis, database: 0, stream: "bench-stream", count: options.entries)
        var sync = RedisSyncConfiguration()
        sync.databases = [0]
        sync.streams.patterns = ["bench-stream"]
        sync.streams.batchSize = 5000
        sync.streams.consumers = options.consumers
        sync.keyValues.enabled = false
        progress("ferry: syncing the stream")
        let streamRun = try await timeOnce(sync, postgres: postgres, redisInstance: redisInstance, redis: redis, schema: "bench_ferry")
        let entryRate = streamRun.entries
        var pythonEntryRate: Double?
        if !options.skipPeers {
            try await Self.writeEntries(redis, database: 2, stream: "bench-py-stream", count: options.pythonEntries)
            progress("redis-py + psycopg2: syncing \(options.pythonEntries) entries")
            pythonEntryRate = try runPython(["streams", "2", "bench-py-stream"], postgres: postgres, redis: redisInstance)
        }
        figures.append(
            .init(
                name: "stream entries (5 fields) → PostgreSQL", ferry: entryRate, unit: "entries/s", peer: pythonEntryRate,
                peerName: "redis-py + psycopg2", target: 100_000))
        figures += streamRun.cpu.microseconds(per: options.entries).figures("CPU per entry")

        // Keys: database 1 for Ferry, database 3 for the peer.
        progress("writing \(options.keys) keys of mixed types")
        try await Self.writeKeys(redis, database: 1, prefix: "bk", count: options.keys)
        sync = RedisSyncConfiguration()
        sync.databases = [1]
        sync.streams.enabled = false
        sync.keyValues.patterns = ["bk:*"]
        progress("ferry: syncing the keys")
        let keyRun = try await timeOnce(sync, postgres: postgres, redisInstance: redisInstance, redis: redis, schema: "bench_ferry")
        let keyRate = keyRun.keys
        var pythonKeyRate: Double?
        if !options.skipPeers {
            try await Self.writeKeys(redis, database: 3, prefix: "pk", count: options.pythonKeys)
            progress("redis-py + psycopg2: syncing \(options.pythonKeys) keys")
            pythonKeyRate = try runPython(["keys", "3", "pk:*"], postgres: postgres, redis: redisInstance)
        }
        figures.append(
            .init(
                name: "keys (mixed types) → PostgreSQL", ferry: keyRate, unit: "keys/s", peer: pythonKeyRate, peerName: "redis-py + psycopg2",
                target: 100_000))
        figures += keyRun.cpu.microseconds(per: options.keys).figures("CPU per key")
        figures.append(.init(name: "peak resident memory", ferry: SyncBenchmark.peakResidentMegabytes(), unit: "MB", higherIsBetter: false))
        return figures
    }

    private func timeOnce(
        _ sync: RedisSyncConfiguration, postgres: PostgresInstance, redisInstance: RedisInstance, redis: RedisClient, schema: String
    ) async throws -> (entries: Double, keys: Double, cpu: ProcessCPU) {
        var configuration = FerryConfiguration()
        var endpoint = postgres.endpoint
        endpoint.schema = schema
        configuration.postgres = endpoint
        configuration.redis = redisInstance.endpoint
        configuration.redisSync = sync
        let service = try RedisSyncService(configuration: configuration, redis: redis, logger: logger)
        let clock = ContinuousClock()
        var seconds = 0.0
        let ((entries, keys), cpu) = try await ProcessCPU.measure(postgres: postgres, redis: redisInstance) {
            let start = clock.now
            defer { seconds = (clock.now - start).seconds }
            return try await service.runOnce()
        }
        return (Double(entries) / seconds, Double(keys) / seconds, cpu)
    }

    static func writeEntries(_ redis: RedisClient, database: Int, stream: String, count: Int) async throws {
        var written = 0
        while written < count {
            let batch = min(5_000, count - written)
            let commands = (0..<batch).map { offset in
                let index = written + offset
                return RawCommand(
                    "XADD", stream, "*", "device", "dev-\(index % 500)", "sensor", "temperature", "value", "\(Double(index % 1000) / 10)", "unit",
                    "C",
                    "seq", "\(index)")
            }
            _ = try await redis.withConnection(database: database) { try await $0.pipeline(commands) }
            written += batch
        }
    }

    /// 60% strings, 10% each of hashes, lists, sets and sorted sets.
    static func writeKeys(_ redis: RedisClient, database: Int, prefix: String, count: Int) async throws {
        var written = 0
        while written < count {
            let batch = min(5_000, count - written)
            let commands = (0..<batch).map { offset -> RawCommand in
                let index = written + offset
                let key = "\(prefix):\(index)"
                switch index % 10 {
                case 6: return RawCommand("HSET", key, "name", "user \(index)", "city", "Santo Domingo", "visits", "\(index % 97)")
                case 7: return RawCommand("RPUSH", key, "a\(index)", "b", "c")
                case 8: return RawCommand("SADD", key, "x\(index)", "y", "z")
                case 9: return RawCommand("ZADD", key, "1", "first", "\(index % 100)", "second")
                default: return RawCommand("SET", key, "value-\(index)-" + String(repeating: "v", count: 20))
                }
            }
            _ = try await redis.withConnection(database: database) { try await $0.pipeline(commands) }
            written += batch
        }
    }

    private func runPython(_ arguments: [String], postgres: PostgresInstance, redis: RedisInstance) throws -> Double {
        let dsn = "host=127.0.0.1 port=\(postgres.port) dbname=\(postgres.database) user=\(postgres.user) password=\(postgres.password)"
        return try PythonPeer.rate(
            script: options.pythonScript,
            arguments: [arguments[0], dsn, "\(redis.port)", redis.password ?? "", arguments[1], arguments[2], "bench_python"])
    }
}
