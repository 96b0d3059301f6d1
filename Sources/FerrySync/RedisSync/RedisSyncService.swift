import CoreMetrics
package import FerryCore
import FerryPostgres
package import FerryRedis
import Foundation
package import Logging
import ServiceLifecycle
import Synchronization

/// The Redis → PostgreSQL sync: stream entries (configured and discovered streams, one consumer per Redis database
/// reading all of that database's streams) into `redis_streams` or mapped tables, and keys into `redis_key_values`.
///
/// Stream entries go through the same ``StreamConsumer`` as the table sync: acknowledged after commit, pending
/// entries recovered, abandoned ones claimed, rows PostgreSQL rejects isolated into `ferry_dead_letters`.
package final class RedisSyncService: Service, Sendable {
    let configuration: FerryConfiguration
    let redis: RedisClient
    let logger: Logger
    let tables: RedisSyncTables
    let target: PostgresEndpoint
    let metrics = RedisSyncMetrics()
    package let status = RedisSyncStatus()
    private let settings: Mutex<RedisSyncConfiguration>
    private let registry = StreamRegistry()
    let keyMemory = KeyMemory()
    /// Keys named by keyspace notifications, waiting to be written (see ``notificationLoop()``).
    let keyChanges = KeyChanges()
    let limiter: RateLimiter?
    let rejected: RejectedNames
    private let stallReporter = Mutex<(@Sendable (String?) -> Void)?>(nil)
    private let stalls = Mutex<(streams: String?, keys: String?)>((nil, nil))

    /// Fails when the configuration has no `redis_sync`, `postgres` or `redis` section (validation reports those).
    package init(configuration: FerryConfiguration, redis: RedisClient, logger: Logger) throws {
        guard let sync = configuration.redisSync, let postgres = configuration.postgres else {
            throw FerryError(.configuration, "redis_sync: missing", fix: "add a `redis_sync:` section (see examples/redis-sync.yaml)")
        }
        self.configuration = configuration
        self.redis = redis
        self.logger = logger
        self.target = postgres
        tables = RedisSyncTables(schema: postgres.schema, config: sync)
        settings = Mutex(sync)
        limiter = sync.rateLimit.map { RateLimiter(rate: $0) }
        rejected = RejectedNames(target: postgres, deadLetters: tables.deadLetters, logger: logger)
    }

    var config: RedisSyncConfiguration { settings.withLock { $0 } }

    /// Called with a description when the sync stops making progress (entries waiting, none applied; key scans not
    /// completing) for `stall_after`, and with nil when it moves again: the daemon marks the job stalled.
    package func reportStalls(_ reporter: @escaping @Sendable (String?) -> Void) { stallReporter.withLock { $0 = reporter } }

    /// Records the streams' or the keys' stall (nil: moving) and tells the reporter what the whole job's is.
    func recordStall(streams: String?? = nil, keys: String?? = nil) {
        let message = stalls.withLock { stalls -> String? in
            if let streams { stalls.streams = streams }
            if let keys { stalls.keys = keys }
            let parts = [stalls.streams, stalls.keys].compactMap { $0 }
            return parts.isEmpty ? nil : parts.joined(separator: "; ")
        }
        stallReporter.withLock { $0 }?(message)
    }

    /// The consumer name: configured, or this host's name (several hosts can then share the group).
    var consumerName: String {
        config.streams.consumer ?? (ProcessInfo.processInfo.hostName.isEmpty ? "ferry" : ProcessInfo.processInfo.hostName)
    }

    /// Creates or checks the tables (see ``RedisSyncTables``).
    func prepare() async throws {
        try await PostgresSession.using(target, key: "postgres", logger: logger) { session in try await tables.ensure(session, logger: logger) }
    }

    /// Configured streams, then every stream the patterns match in the database range (`SCAN … TYPE stream`).
    /// Returns the databases that have streams now. Ferry's own keys (`ferry:*`) are never synced.
    @discardableResult
    func discover() async throws -> [Int] {
        let config = self.config
        var found: [Int: Set<String>] = [:]
        let defaultDatabase = configuration.redis?.db ?? 0
        for key in config.streams.keys {
            let (database, name) = Self.splitDatabase(key, default: defaultDatabase)
            found[database, default: []].insert(name)
        }
        if config.streams.discovery {
            let patterns = config.streams.patterns.map(GlobPattern.init)
            for database in config.databases {
                for pattern in patterns {
                    for try await name in redis.scan(database: database, match: pattern.redisMatch, count: 1000, type: .stream) {
                        try await limiter?.acquire()
                        guard let key = name.text else {
                            if let problem = name.problem, !rejected.isRecorded(name, kind: .stream, database: database) {
                                await rejected.report(name, kind: .stream, database: database, problem: problem)
                            }
                            continue
                        }
                        if !key.hasPrefix("ferry:") && pattern.matches(key) { found[database, default: []].insert(key) }
                    }
                }
            }
        }
        let added = registry.update(found)
        for (database, stream) in added {
            logger.notice("syncing stream", metadata: ["ferry.redis_db": "\(database)", "ferry.stream": "\(stream)"])
        }
        let all = registry.all
        metrics.streamsDiscovered.record(all.count)
        status.recordStreams(all.map { "db\($0.database):\($0.stream)" })
        return registry.databases
    }

    /// `db3:orders` → (3, "orders"); a name without the prefix is in `default`.
    static func splitDatabase(_ key: String, default database: Int) -> (Int, String) {
        guard key.hasPrefix("db"), let colon = key.firstIndex(of: ":"),
            let number = Int(key[key.index(key.startIndex, offsetBy: 2)..<colon]), colon < key.index(before: key.endIndex)
        else { return (database, key) }
        return (number, String(key[key.index(after: colon)...]))
    }

    private func consumer(for database: Int, index: Int) -> StreamConsumer<RedisStreamApplier> {
        let config = self.config
        var settings = StreamConsumerSettings(
            group: config.streams.group, consumer: index == 0 ? consumerName : "\(consumerName)-\(index)", database: database,
            entriesPerRead: config.streams.batchSize,
            applyBatchRows: max(config.streams.batchSize, 1), block: config.streams.pollInterval, claimIdle: config.streams.claimIdle,
            maxDeliveries: config.streams.maxDeliveries, attemptsKey: "ferry:{redis-sync}:attempts:\(config.streams.group)",
            createGroups: config.streams.createGroups, makeStream: false)
        settings.redisBackoff = config.redisRetry
        settings.redisMaxRetries = config.redisRetry.maxRetries
        settings.postgresBackoff = config.postgresRetry
        settings.postgresMaxRetries = config.postgresRetry.maxRetries
        settings.throttle = limiter
        settings.applyTimeout = config.streams.applyTimeout
        let applier = RedisStreamApplier(
            database: database, tables: tables, session: PostgresSession(endpoint: target, key: "postgres", logger: logger), metrics: metrics,
            logger: logger, status: status)
        let registry = self.registry
        return StreamConsumer(applier: applier, settings: settings, redis: redis, logger: logger, streams: { registry.streams(in: database) })
    }

    /// Runs until a graceful shutdown: discovery every interval, a consumer for each database with streams, and the
    /// key-value scans. Redis and PostgreSQL outages are retried inside each part; an error a part cannot recover
    /// from (a missing permission, retries exhausted) ends the whole job at once (the other parts are cancelled), so
    /// the daemon marks it failed instead of running on half-working.
    package func run() async throws {
        // PostgreSQL restarting while the daemon starts is waited out, as it is once the sync runs.
        try await retryingOutages("creating or checking the tables", backoff: config.postgresRetry, logger: logger) { try await prepare() }
        try await withThrowingDiscardingTaskGroup { group in
            if config.keyValues.enabled {
                group.addTask { try await self.keyValueLoop() }
                if config.keyValues.notifications {
                    group.addTask { try await self.notificationLoop() }
                }
            }
            guard config.streams.enabled else { return }
            var running: Set<Int> = []
            var attempt = 0
            let monitor = StreamMonitor(redis: redis, configuration: configuration, idleThreshold: config.streams.claimIdle)
            var streamWatch = StallWatch(after: config.stallAfter)
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    for database in try await discover() where running.insert(database).inserted {
                        for index in 0..<config.streams.consumers {
                            group.addTask {
                                var consumer = self.consumer(for: database, index: index)
                                do {
                                    try await consumer.run()
                                } catch {
                                    await consumer.close()
                                    throw error
                                }
                                await consumer.close()
                            }
                        }
                    }
                    attempt = 0
                    // The monitor's figures (length, pending, lag, idle consumers per stream) on /metrics, and whether
                    // entries wait while none is applied.
                    if let reports = try? await monitor.collect() {
                        monitor.record(reports, limit: config.streams.metricsStreamLimit, logger: logger)
                        let group = config.streams.group
                        let backlog = reports.reduce(0) { sum, report in
                            sum + report.groups.filter { $0.name == group }.reduce(0) { $0 + $1.pending + ($1.lag ?? 0) }
                        }
                        let snapshot = status.snapshot
                        recordStall(
                            streams: .some(
                                streamWatch.observe(
                                    progress: snapshot.entriesApplied + snapshot.entriesDeadLettered, backlog: backlog, what: "stream entry applied"))
                        )
                    }
                } catch let error as RedisError where error.code != .poolClosed {
                    metrics.retries.increment()
                    status.recordError("Redis: \(error)")
                    logger.warning("stream discovery failed, retrying", metadata: ["ferry.error": "\(error)"])
                    await pause(for: config.redisRetry.delay(attempt: attempt))
                    attempt += 1
                    continue
                }
                await pause(for: config.streams.discoveryInterval)
            }
        }
    }

    /// One pass (`ferry redis sync --once`): discover, apply every entry there is now, scan the keys once.
    /// Returns the entries applied and the keys written.
    package func runOnce() async throws -> (entries: Int, keys: Int) {
        try await prepare()
        var entries = 0
        if config.streams.enabled {
            let databases = try await discover()
            entries = try await withThrowingTaskGroup(of: Int.self) { group in
                for database in databases {
                    for index in 0..<config.streams.consumers {
                        group.addTask {
                            var consumer = self.consumer(for: database, index: index)
                            do {
                                try await consumer.run(untilDrained: { true })
                            } catch {
                                await consumer.close()
                                throw error
                            }
                            await consumer.close()
                            return consumer.applied
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        var keys = 0
        if config.keyValues.enabled {
            keys = try await scanKeysOnce()
        }
        return (entries, keys)
    }

    /// Applies a reloaded configuration (SIGHUP): patterns, database range, rate limit and intervals. Tables and
    /// the group stay as they were.
    package func reload(_ configuration: FerryConfiguration) {
        guard let new = configuration.redisSync else { return }
        let old = config
        settings.withLock {
            $0.databases = new.databases
            $0.rateLimit = new.rateLimit
            $0.streams.patterns = new.streams.patterns
            $0.streams.keys = new.streams.keys
            $0.streams.discoveryInterval = new.streams.discoveryInterval
            $0.keyValues.patterns = new.keyValues.patterns
            $0.keyValues.interval = new.keyValues.interval
        }
        if let rate = new.rateLimit { limiter?.update(rate: rate) }
        logger.notice(
            "configuration reloaded",
            metadata: [
                "ferry.databases":
                    "\(RedisSyncConfiguration.formatDatabases(old.databases)) -> \(RedisSyncConfiguration.formatDatabases(new.databases))",
                "ferry.stream_patterns": "\(old.streams.patterns) -> \(new.streams.patterns)",
                "ferry.key_patterns": "\(old.keyValues.patterns) -> \(new.keyValues.patterns)",
                "ferry.rate_limit": "\(old.rateLimit.map { "\($0)" } ?? "none") -> \(new.rateLimit.map { "\($0)" } ?? "none")",
            ])
    }
}

/// The streams being synced, per database; updated by discovery, read by the consumers.
final class StreamRegistry: Sendable {
    private let state = Mutex<[Int: [String]]>([:])

    /// Adds what `found` has that is new (streams are never dropped while running: a stream deleted in Redis is
    /// skipped by its consumer); returns the additions.
    func update(_ found: [Int: Set<String>]) -> [(database: Int, stream: String)] {
        state.withLock { current in
            var added: [(Int, String)] = []
            for (database, streams) in found {
                let known = Set(current[database] ?? [])
                for stream in streams.sorted() where !known.contains(stream) {
                    current[database, default: []].append(stream)
                    added.append((database, stream))
                }
            }
            return added
        }
    }

    func streams(in database: Int) -> [String] { state.withLock { $0[database] ?? [] } }

    var databases: [Int] { state.withLock { $0.filter { !$0.value.isEmpty }.keys.sorted() } }

    var all: [(database: Int, stream: String)] {
        state.withLock { current in current.keys.sorted().flatMap { database in current[database]!.map { (database, $0) } } }
    }
}
