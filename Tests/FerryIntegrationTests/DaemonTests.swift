import FerryCore
import FerryDaemon
import FerryPostgres
import FerryPostgresNode
import FerryRedis
import FerrySandbox
import FerrySync
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Prometheus
import ServiceLifecycle
import Testing

/// The daemon of `ferry run`, built in-process from a configuration: its routes driven with HummingbirdTesting, its
/// services run in the test's own service group.
@Suite("The daemon in-process: routes, readiness, a job that fails", .timeLimit(.minutes(3)), .sandbox)
struct DaemonTests {
    static func daemon(_ configuration: FerryConfiguration) throws -> Daemon {
        var options = Daemon.Options()
        options.readinessInterval = .milliseconds(200)
        return try Daemon(
            configuration: configuration, file: nil, registry: PrometheusCollectorRegistry(), options: options,
            logger: Logger(label: "ferry.test.daemon"))
    }

    /// Runs the daemon's services until `body` returns, then shuts them down gracefully and waits for them.
    static func running<T: Sendable>(_ services: [any Service], _ body: () async throws -> T) async throws -> T {
        let group = ServiceGroup(services: services, logger: Logger(label: "ferry.test.daemon"))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let result = try await body()
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }

    static func get(_ client: some TestClientProtocol, _ path: String) async throws -> (status: Int, body: String) {
        try await client.execute(uri: path, method: .get) { response in (Int(response.status.code), String(buffer: response.body)) }
    }

    @Test func theRoutesAnswerAndReadinessFollowsTheServers() async throws {
        let sandbox = try SandboxContext.require()
        var configuration = FerryConfiguration()
        configuration.postgres = try #require(sandbox.postgres).endpoint
        configuration.redis = try #require(sandbox.redis).endpoint
        let daemon = try Self.daemon(configuration)
        let services = daemon.services
        try await Application(router: daemon.router).test(.router) { client in
            let index = try await Self.get(client, "/")
            #expect(index.status == 200)
            #expect(index.body.contains("\"/health/ready\""))
            #expect(try await Self.get(client, "/health/live").status == 200)
            // Before the first round of checks nothing is known: not ready.
            #expect(try await Self.get(client, "/health/ready").status == 503)
            let metrics = try await client.execute(uri: "/metrics", method: .get) { $0 }
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            try await Self.running(services) {
                try await eventually("readiness to pass", timeout: .seconds(20)) { try await Self.get(client, "/health/ready").status == 200 }
                let ready = try await Self.get(client, "/health/ready")
                #expect(ready.body.contains("\"name\":\"postgres\""))
                #expect(ready.body.contains("\"jobs\":[]"))
            }
            #expect(try await Self.get(client, "/nowhere").status == 404)
        }
    }

    /// The producer of one pipeline stops with an error while its consumers run: that pipeline is marked failed (in
    /// `/health/ready`, the job registry and `ferry status`), the other pipeline keeps applying new rows, and the
    /// daemon stays up until it is told to stop.
    @Test func aPipelineWhoseProducerFailsIsMarkedFailedAndTheOthersGoOn() async throws {
        let good = try await SyncWorld.make("dgood", rows: 20)
        let bad = try await SyncWorld.make("dbad", rows: 20) { $0.source.nullWatermark = .refuse }
        try await bad.sql("UPDATE \(bad.table) SET \"ULTIMA_MODIFICACION\" = NULL WHERE \"CONDUCE\" <= 'C-0000003'")
        var configuration = good.configuration
        configuration.pipelines.append(bad.pipeline)
        // Each world writes to its own schema: the bad pipeline's target comes from its own pipeline settings.
        let daemon = try Self.daemon(configuration)
        let (services, jobs) = (daemon.services, daemon.jobs)
        try await Application(router: daemon.router).test(.router) { client in
            try await Self.running(services) {
                try await eventually("the bad pipeline to be marked failed", timeout: .seconds(90)) {
                    jobs.failed.map(\.name) == ["pipeline:\(bad.name)"]
                }
                let failed = try #require(jobs.failed.first)
                #expect(failed.error?.contains("NULL ULTIMA_MODIFICACION") == true, "\(failed.error ?? "")")
                try await eventually("readiness to name the failed pipeline", timeout: .seconds(10)) {
                    let ready = try await Self.get(client, "/health/ready")
                    return ready.status == 503 && ready.body.contains("\"name\":\"pipeline:\(bad.name)\",\"state\":\"failed\"")
                }
                // The good pipeline goes on: its first rows, and rows written after the failure.
                try await eventually("the good pipeline's first rows", timeout: .seconds(90)) {
                    try await good.int("SELECT count(*) FROM \(good.mirror)") == 20
                }
                try await good.insert(21...30)
                try await eventually("rows written after the failure", timeout: .seconds(90)) {
                    try await good.int("SELECT count(*) FROM \(good.mirror)") == 30
                }
                #expect(jobs.snapshot.first { $0.name == "pipeline:\(good.name)" }?.state == .running)
            }
        }
        // `ferry status` reads the failure from the control table.
        let redis = try PipelineLookup.redisClient(configuration, logger: bad.logger)
        let status = await PipelineStatus.collect(bad.pipeline, configuration: configuration, redis: redis, logger: bad.logger)
        await redis.shutdown()
        #expect(status.failed)
        #expect(status.lastError?.contains("NULL ULTIMA_MODIFICACION") == true)
        await good.close()
        await bad.close()
    }

    /// Entries wait and none is applied (a transaction holds the table locked): the Redis sync is reported stalled
    /// (`/health/ready` 503 naming it, `ferry_job_stalled` 1); when the lock goes, it catches up and is running again.
    @Test func aRedisSyncThatStopsMakingProgressIsReportedStalled() async throws {
        let world = try await RedisSyncWorld.make("stall") { sync, _ in
            sync.keyValues.enabled = false
            sync.stallAfter = .seconds(1)
        }
        let stream = "\(world.prefix)-s"
        try await world.redis("XADD", stream, "*", "n", "0")
        let daemon = try Self.daemon(world.configuration)
        let (services, jobs) = (daemon.services, daemon.jobs)
        let release = AsyncStream<Void>.makeStream()
        try await Application(router: daemon.router).test(.router) { client in
            try await Self.running(services) {
                try await eventually("the first entry", timeout: .seconds(90)) {
                    (try? await world.int("SELECT count(*) FROM \(world.streams)")) == 1
                }
                let locked = Shared(false)
                let lockSession = PostgresSession(endpoint: try #require(world.sandbox.postgres).endpoint, key: "postgres", logger: world.logger)
                let holder = Task {
                    try await lockSession.withConnection { connection in
                        try await connection.query("BEGIN", logger: world.logger)
                        try await connection.query(
                            PostgresQuery(unsafeSQL: "LOCK TABLE \(world.streams) IN ACCESS EXCLUSIVE MODE"), logger: world.logger)
                        locked.update { $0 = true }
                        for await _ in release.stream { break }
                        try await connection.query("ROLLBACK", logger: world.logger)
                    }
                }
                try await eventually("the lock") { locked.value }
                for index in 1...20 { try await world.redis("XADD", stream, "*", "n", "\(index)") }
                try await eventually("the sync to be reported stalled", timeout: .seconds(90)) {
                    let ready = try await Self.get(client, "/health/ready")
                    return ready.status == 503 && ready.body.contains("\"name\":\"redis_sync\",\"state\":\"stalled\"")
                }
                let stalled = try #require(jobs.snapshot.first { $0.name == "redis_sync" })
                #expect(stalled.error?.contains("no stream entry applied for") == true, "\(stalled.error ?? "")")
                release.continuation.yield()
                release.continuation.finish()
                try await holder.value
                await lockSession.close()
                try await eventually("every entry after the lock", timeout: .seconds(90)) {
                    (try? await world.int("SELECT count(*) FROM \(world.streams)")) == 21
                }
                try await eventually("the sync running again", timeout: .seconds(90)) {
                    jobs.snapshot.first { $0.name == "redis_sync" }?.state == .running
                }
            }
        }
        await world.close()
    }

    /// The same for a table sync pipeline: its mirror locked while changes are queued.
    @Test func aPipelineThatStopsMakingProgressIsReportedStalled() async throws {
        let world = try await SyncWorld.make("dstall", rows: 10) { $0.stallAfter = .seconds(1) }
        let daemon = try Self.daemon(world.configuration)
        let (services, jobs) = (daemon.services, daemon.jobs)
        let name = "pipeline:\(world.name)"
        let release = AsyncStream<Void>.makeStream()
        try await Self.running(services) {
            try await eventually("the first rows", timeout: .seconds(90)) { (try? await world.int("SELECT count(*) FROM \(world.mirror)")) == 10 }
            let locked = Shared(false)
            let lockSession = PostgresSession(endpoint: try #require(world.sandbox.postgres).endpoint, key: "postgres", logger: world.logger)
            let holder = Task {
                try await lockSession.withConnection { connection in
                    try await connection.query("BEGIN", logger: world.logger)
                    try await connection.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(world.mirror) IN ACCESS EXCLUSIVE MODE"), logger: world.logger)
                    locked.update { $0 = true }
                    for await _ in release.stream { break }
                    try await connection.query("ROLLBACK", logger: world.logger)
                }
            }
            try await eventually("the lock") { locked.value }
            try await world.insert(11...40)
            try await eventually("the pipeline to be reported stalled", timeout: .seconds(90)) {
                jobs.snapshot.first { $0.name == name }?.state == .stalled
            }
            #expect(jobs.snapshot.first { $0.name == name }?.error?.contains("no row applied for") == true)
            release.continuation.yield()
            release.continuation.finish()
            try await holder.value
            await lockSession.close()
            try await eventually("every row after the lock", timeout: .seconds(90)) {
                (try? await world.int("SELECT count(*) FROM \(world.mirror)")) == 40
            }
            try await eventually("the pipeline running again", timeout: .seconds(90)) { jobs.snapshot.first { $0.name == name }?.state == .running }
        }
        await world.close()
    }

    /// Four pipelines of one daemon start together on an empty schema: they create the shared control tables one at
    /// a time (it was a unique violation in `pg_type`, and one pipeline stopped), and every row arrives.
    @Test func pipelinesStartingTogetherShareTheirControlTables() async throws {
        var worlds: [SyncWorld] = []
        for index in 0..<4 { worlds.append(try await SyncWorld.make("dtogether\(index)", rows: 30)) }
        var configuration = worlds[0].configuration
        configuration.pipelines = worlds.map(\.pipeline)
        let daemon = try Self.daemon(configuration)
        let jobs = daemon.jobs
        try await Self.running(daemon.services) {
            for world in worlds {
                try await eventually("\(world.name)'s rows (failed: \(jobs.failed.map { "\($0.name): \($0.error ?? "")" }))", timeout: .seconds(60)) {
                    try await world.int("SELECT count(*) FROM \(world.mirror)") == 30
                }
            }
            #expect(jobs.failed.isEmpty, "\(jobs.failed)")
        }
        for world in worlds { await world.close() }
    }

    /// `ferry sync --once` (``TableSyncPipeline/runOnce()``) stops at once with the producer's error.
    @Test func runOnceStopsAtOnceWithTheProducersError() async throws {
        let world = try await SyncWorld.make("donce", rows: 10) { $0.source.nullWatermark = .refuse }
        try await world.sql("UPDATE \(world.table) SET \"ULTIMA_MODIFICACION\" = NULL WHERE \"CONDUCE\" = 'C-0000001'")
        let started = ContinuousClock.now
        await #expect {
            _ = try await world.runOnce()
        } throws: { error in
            "\(error)".contains("NULL ULTIMA_MODIFICACION")
        }
        // The consumers would otherwise wait for the queue to drain, or for ever in daemon mode.
        #expect(ContinuousClock.now - started < .seconds(20))
        await world.close()
    }
}
