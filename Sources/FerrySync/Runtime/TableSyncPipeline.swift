import CoreMetrics
package import FerryCore
import FerryPostgres
package import FerryRedis
import FerrySQLServer
import Foundation
package import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// One table sync pipeline: its producer and consumers, run as a service by `ferry run` or once by `ferry sync`.
package final class TableSyncPipeline: Service, Sendable {
    package struct Options: Sendable {
        /// Run even when Redis could drop queued rows (eviction policy, no persistence).
        package var allowUnsafeRedis = false
        /// Called with progress a few times a second.
        package var progress: (@Sendable (SyncProgress) -> Void)?
        /// Called after each commit with every applied entry's enqueue→commit latency in microseconds and its row count
        /// (benchmarks).
        package var commitLatency: (@Sendable ([(micros: Int64, rows: Int)]) -> Void)?
        /// Run the producer (default) and the consumers (default); a process may run only one side.
        package var produce = true
        package var consume = true

        package init() {}
    }

    package let pipeline: PipelineConfiguration
    let context: PipelineContext
    let options: Options
    private let consumerPrefix: String
    private let stallReporter = Mutex<(@Sendable (String?) -> Void)?>(nil)

    /// Called with a description when queued entries wait and none is applied for the pipeline's `stall_after`, and
    /// with nil while it makes progress: the daemon marks the job stalled.
    package func reportStalls(_ reporter: @escaping @Sendable (String?) -> Void) { stallReporter.withLock { $0 = reporter } }

    /// Builds the pipeline for `pipeline` of `configuration`, sharing `redis`.
    package init(_ pipeline: PipelineConfiguration, configuration: FerryConfiguration, redis: RedisClient, options: Options = .init(), logger: Logger)
        throws
    {
        guard let postgres = configuration.postgres else {
            throw FerryError(.configuration, "postgres: missing — pipelines write to PostgreSQL", fix: "add a `postgres:` section or set PG_HOST")
        }
        var logger = logger
        logger[metadataKey: "ferry.pipeline"] = "\(pipeline.name)"
        let source = try Self.makeSource(pipeline, configuration: configuration, logger: logger)
        // The producer's control writes commit without waiting for the WAL flush: they are a copy of the
        // checkpoint Redis holds, for recovering a Redis that lost its data, and one lost in a PostgreSQL crash only
        // makes that recovery read again from a little earlier (the mirror ignores versions it has).
        let target = PostgresSession(endpoint: postgres, key: "postgres", settings: ["SET synchronous_commit = off"], logger: logger)
        self.pipeline = pipeline
        self.options = options
        self.context = PipelineContext(
            pipeline: pipeline,
            keys: QueueKeys(pipeline: pipeline.name),
            source: source,
            redis: redis,
            target: target,
            targetEndpoint: postgres,
            control: ControlTables(schema: postgres.schema, pipeline: pipeline.name),
            metrics: SyncMetrics(pipeline: pipeline.name),
            logger: logger,
            progress: ProgressTracker(pipeline: pipeline.name, handler: options.progress),
            commitLatency: options.commitLatency
        )
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        consumerPrefix = "\(host)-\(getpid())"
    }

    static func makeSource(_ pipeline: PipelineConfiguration, configuration: FerryConfiguration, logger: Logger) throws -> any TableSource {
        let relation: PostgresTableSource.Relation
        if let query = pipeline.source.query {
            relation = .query(query)
        } else {
            relation = .table(pipeline.source.table ?? "")
        }
        let excluded = pipeline.columns.filter(\.exclude).map(\.source)
        func postgresSource(_ endpoint: PostgresEndpoint, key: String) -> any TableSource {
            PostgresTableSource(
                endpoint: endpoint, configurationKey: key, relation: relation, key: pipeline.source.key, watermark: pipeline.source.watermark,
                excluding: excluded, logger: logger)
        }
        let connection = pipeline.source.connection
        func sqlServerSource(_ endpoint: SQLServerEndpoint, key: String) throws -> any TableSource {
            guard let target = configuration.postgres else {
                throw FerryError(.configuration, "postgres: missing — pipelines write to PostgreSQL", fix: "add a `postgres:` section or set PG_HOST")
            }
            let sqlRelation: SQLServerTableSource.Relation
            switch relation {
            case .table(let name): sqlRelation = .table(name)
            case .query(let sql): sqlRelation = .query(sql)
            }
            return SQLServerTableSource(
                endpoint: endpoint, configurationKey: key, relation: sqlRelation, key: pipeline.source.key, watermark: pipeline.source.watermark,
                changeTracking: pipeline.source.changeTracking, excluding: excluded,
                hasher: PostgresRowHasher(endpoint: target, key: "postgres", logger: logger), logger: logger)
        }
        if connection == "postgres", let endpoint = configuration.postgres { return postgresSource(endpoint, key: "postgres") }
        if connection == "sqlserver", let endpoint = configuration.sqlserver { return try sqlServerSource(endpoint, key: "sqlserver") }
        switch configuration.sources[connection] {
        case .postgres(let endpoint): return postgresSource(endpoint, key: "sources.\(connection)")
        case .sqlserver(let endpoint): return try sqlServerSource(endpoint, key: "sources.\(connection)")
        case nil:
            throw FerryError(
                .configuration, "pipelines \(pipeline.name): source.connection \"\(connection)\" is not configured", fix: "add it under `sources`")
        }
    }

    /// Checks Redis and the source, then runs the producer and consumers until a graceful shutdown.
    ///
    /// Outages of Redis, the source or the target are retried inside. An error that retrying cannot fix (an
    /// incompatible schema change, NULL watermarks with `refuse`, a missing permission) stops the whole pipeline at
    /// once: the other side is cancelled, the error is recorded in `ferry_pipelines.last_error` (what `ferry status`
    /// shows) and thrown, for the daemon to mark the pipeline failed.
    /// Retry delays while a server is unreachable as the pipeline starts.
    static let startBackoff = Backoff(base: .milliseconds(200), maximum: .seconds(10))
    /// Delays between polls while they fail.
    static let pollBackoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))

    package func run() async throws {
        try await stopping {
            let metadata: Logger.Metadata = ["ferry.pipeline": "\(pipeline.name)"]
            let schema = try await retryingOutages("starting the pipeline", backoff: Self.startBackoff, logger: context.logger, metadata: metadata) {
                try await RedisSafety.verify(
                    context.redis, allowUnsafe: options.allowUnsafeRedis, address: context.redis.configuration.connection.address)
                return try await context.source.describe()
            }
            await context.control.clearStop(session: context.target, logger: context.logger)
            try await withThrowingDiscardingTaskGroup { group in
                if options.produce {
                    group.addTask { [context, pipeline] in
                        var producer = try Producer(context: context, schema: schema)
                        try await retryingOutages("preparing the producer", backoff: Self.startBackoff, logger: context.logger, metadata: metadata) {
                            try await producer.prepare()
                        }
                        // An outage is logged when it begins, then every 30 s while it lasts, and when it ends; polls
                        // back off to at most 5 s apart meanwhile.
                        var failures = 0
                        var lastLogged = ContinuousClock.now
                        while !Task.isCancelled && !Task.isShuttingDownGracefully {
                            do {
                                _ = try await producer.poll()
                                if failures > 0 {
                                    context.logger.notice("polling works again", metadata: ["ferry.failed_polls": "\(failures)"])
                                    failures = 0
                                }
                            } catch let error as FerryError where error.code != .unreachable {
                                throw error
                            } catch is CancellationError {
                                return
                            } catch {
                                context.metrics.errors.increment()
                                failures += 1
                                if failures == 1 || ContinuousClock.now - lastLogged >= .seconds(30) {
                                    lastLogged = .now
                                    context.logger.warning(
                                        "poll failed, retrying", metadata: ["ferry.error": "\(error)", "ferry.failed_polls": "\(failures)"])
                                }
                                await pause(for: max(pipeline.interval, Self.pollBackoff.delay(attempt: failures - 1)))
                                continue
                            }
                            await pause(for: pipeline.interval)
                        }
                    }
                }
                group.addTask { await self.markRunning() }
                if options.consume {
                    group.addTask { [context, pipeline, self] in
                        // Whether entries wait while none is applied (read from the queue's group every few seconds).
                        var watch = StallWatch(after: pipeline.stallAfter)
                        let every = min(pipeline.stallAfter / 4, .seconds(5))
                        while !Task.isCancelled && !Task.isShuttingDownGracefully {
                            await pause(for: every)
                            guard let groups = try? await context.redis.send(XINFOGROUPS(context.keys.stream)),
                                let group = groups.first(where: { $0.name == QueueKeys.group })
                            else { continue }
                            let stall = watch.observe(
                                progress: context.progress.handled, backlog: group.pending + (group.lag ?? 0), what: "row applied")
                            self.stallReporter.withLock { $0 }?(stall)
                        }
                    }
                    for index in 0..<pipeline.consumers {
                        let name = "\(consumerPrefix)-\(index)"
                        group.addTask { [context] in
                            var consumer = Consumer(context: context, name: name, slot: index, logger: context.logger)
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
            }
        }
    }

    /// Produces until the source is caught up, then consumes until the queue is drained; returns the rows
    /// queued and applied.
    package func runOnce() async throws -> (produced: Int, applied: Int) {
        try await stopping {
            let mark = Task { await markRunning() }
            do {
                let result = try await catchUp()
                mark.cancel()
                await mark.value
                _ = try? await context.redis.send(DEL(context.keys.running))
                return result
            } catch {
                mark.cancel()
                throw error
            }
        }
    }

    /// How long the running mark lasts unless renewed (renewed every third of it).
    static let runningMarkLifetime: Duration = .seconds(15)

    /// Keeps `QueueKeys.running` set while the task runs; deletes it after a graceful shutdown.
    private func markRunning() async {
        let key = context.keys.running
        let owner = "\(consumerPrefix)"
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            _ = try? await context.redis.send(SET(key, owner, expiration: .milliseconds(Int(Self.runningMarkLifetime.seconds * 1000))))
            await pause(for: Self.runningMarkLifetime / 3)
        }
        if !Task.isCancelled { _ = try? await context.redis.send(DEL(key)) }
    }

    private func catchUp() async throws -> (produced: Int, applied: Int) {
        try await RedisSafety.verify(context.redis, allowUnsafe: options.allowUnsafeRedis, address: context.redis.configuration.connection.address)
        let schema = try await context.source.describe()
        let producerDone = ProducerFlag()
        let counts = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            if !options.produce { producerDone.set() }
            if options.produce {
                group.addTask { [context] in
                    var producer = try Producer(context: context, schema: schema)
                    try await producer.prepare()
                    defer { producerDone.set() }
                    var total = 0
                    // Poll until a poll finds nothing new (the window re-read may add a few rows once).
                    while true {
                        let queued = try await producer.poll(wholeWindow: true)
                        total += queued
                        if queued == 0 { break }
                    }
                    return (total, 0)
                }
            }
            for index in 0..<(options.consume ? pipeline.consumers : 0) {
                let name = "\(consumerPrefix)-\(index)"
                group.addTask { [context] in
                    var consumer = Consumer(context: context, name: name, slot: index, logger: context.logger)
                    do {
                        try await consumer.run(untilDrained: { producerDone.isSet })
                    } catch {
                        await consumer.close()
                        throw error
                    }
                    await consumer.close()
                    return (0, consumer.applied)
                }
            }
            var produced = 0
            var applied = 0
            for try await (p, a) in group {
                produced += p
                applied += a
            }
            return (produced, applied)
        }
        return counts
    }

    /// Runs `body`, then closes the sessions; an error other than a shutdown's is recorded as the pipeline's stop
    /// before it is rethrown.
    private func stopping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            await context.source.close()
            await context.target.close()
            return result
        } catch is CancellationError {
            await context.source.close()
            await context.target.close()
            throw CancellationError()
        } catch {
            // postgres-nio's errors describe themselves generically (to keep SQL out of logs): say what the server said.
            let stop = error is PSQLError ? PostgresDiagnosis.diagnose(error, endpoint: context.targetEndpoint) : error
            await context.control.recordError(ControlTables.stoppedPrefix + "\(stop)", session: context.target, logger: context.logger)
            await context.source.close()
            await context.target.close()
            throw stop
        }
    }

    /// Where rows that could not be applied go: `schema.ferry_dead_letters`.
    package var deadLetterTable: String { context.control.deadLetters }

    /// The progress so far.
    package var progress: SyncProgress { context.progress.current }
}

/// Set once by the producer of `runOnce`; consumers stop when it is set and the queue is drained.
final class ProducerFlag: Sendable {
    private let flag: Atomic<Bool>
    init(_ value: Bool = false) { flag = Atomic(value) }
    func set() { flag.store(true, ordering: .releasing) }
    /// Clears the flag; returns whether it was set.
    func take() -> Bool { flag.exchange(false, ordering: .acquiringAndReleasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}
