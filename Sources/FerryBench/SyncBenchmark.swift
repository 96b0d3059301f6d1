import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRedis
package import FerrySandbox
import FerrySync
import Foundation
package import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The table sync end to end on sandbox servers, beside raw `COPY` and the original Python design, in one run.
///
/// 1. A source shaped like `VW_VENTAS_SYNC` with `rows` rows (database `erp`); the initial load source → Redis →
///    mirror (with the seed's companion table) until the queue is drained.
/// 2. A pass that updates every source row, synced the same way.
/// 3. Raw `COPY` of the same rows into an indexed table with `psql \copy` (the upper bound).
/// 4. The original design (redis-py LPUSH/BRPOP, psycopg2 `executemany` in batches of 50) on `pythonRows` rows.
/// 5. A steady state of `steadyRate` changes/s for `steadySeconds`: enqueue→commit latency per row (p50/p99).
/// 6. The process's peak resident memory (VmHWM), which covers everything above.
package struct SyncBenchmark: Sendable {
    package struct Options: Sendable {
        package var rows = 1_000_000
        package var pythonRows = 100_000
        package var steadyRate = 10_000
        package var steadySeconds = 20
        package var consumers = 2
        package var lookback: Duration = .seconds(30)
        /// The pipeline's poll interval.
        package var interval: Duration = .milliseconds(10)
        /// The writer's transactions in the steady state: one every `tick`, each changing rate × tick rows.
        package var tick: Duration = .milliseconds(10)
        package var skipPeers = false
        package var pythonScript = "Benchmarks/python/original_sync.py"

        package init() {}
    }

    /// One line of the report.
    package struct Figure: Sendable {
        package var name: String
        package var ferry: Double
        package var unit: String
        package var peer: Double?
        package var peerName: String?
        /// An absolute target (the figures for this machine).
        package var target: Double?
        package var higherIsBetter = true

        package var ratio: Double? { peer.flatMap { $0 > 0 ? ferry / $0 : nil } }
        package var met: Bool? { target.map { higherIsBetter ? ferry >= $0 : ferry <= $0 } }
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    package func run(on sandbox: Sandbox, progress: @escaping @Sendable (String) -> Void) async throws -> [Figure] {
        guard let postgres = sandbox.postgres, let redisInstance = sandbox.redis else {
            throw FerryError(.sandbox, "the benchmark needs the sandbox's PostgreSQL and Redis")
        }
        let clock = ContinuousClock()
        let admin = PostgresSession(endpoint: postgres.endpoint, key: "postgres", logger: logger)
        try await admin.withConnection { connection in
            try await connection.query("DROP DATABASE IF EXISTS erp", logger: logger)
            try await connection.query("CREATE DATABASE erp", logger: logger)
        }
        var erpEndpoint = postgres.endpoint
        erpEndpoint.database = "erp"
        let erp = PostgresSession(endpoint: erpEndpoint, key: "sources.erp", logger: logger)
        let source = VentasSource(session: erp, schema: "public", logger: logger)
        progress("generating \(options.rows) source rows")
        try await source.create(rows: options.rows)

        var configuration = FerryConfiguration()
        configuration.postgres = postgres.endpoint
        configuration.redis = redisInstance.endpoint
        configuration.sources["erp"] = .postgres(erpEndpoint)
        var pipeline = PipelineConfiguration(
            name: "bench",
            source: .init(connection: "erp", table: "public.VW_VENTAS_SYNC", query: nil, key: ["CONDUCE"], watermark: "ULTIMA_MODIFICACION"),
            target: .init(schema: "public", table: "datos_vista", rowID: "sync_id"),
            batchSize: configuration.sync.batchSize,
            interval: options.interval
        )
        pipeline.consumers = options.consumers
        pipeline.source.lookback = options.lookback
        pipeline.companion = .init(
            table: "datos_seguimiento", columns: [("nota", "text"), ("ruta", "text"), ("trabajado", "boolean"), ("preparador", "text")])
        configuration.pipelines = [pipeline]
        var clientConfiguration = RedisClient.Configuration(connection: RedisConnectionConfiguration(redisInstance.endpoint))
        clientConfiguration.reconnectTimeout = .seconds(30)
        let redis = RedisClient(configuration: clientConfiguration, logger: logger)
        defer { Task { await redis.shutdown() } }

        var figures: [Figure] = []

        // 1 + 2: Ferry, initial load and update pass.
        progress("ferry: initial load of \(options.rows) rows")
        var start = clock.now
        var loadSeconds = 0.0
        let (first, loadCPU) = try await ProcessCPU.measure(postgres: postgres, redis: redisInstance) {
            defer { loadSeconds = (clock.now - start).seconds }
            return try await TableSyncPipeline(pipeline, configuration: configuration, redis: redis, logger: logger).runOnce()
        }
        guard first.applied >= options.rows else {
            throw FerryError(.invalidInput, "the initial load applied \(first.applied) of \(options.rows) rows")
        }
        progress(String(format: "  %.1f s, %.0f rows/s", loadSeconds, Double(options.rows) / loadSeconds))

        progress("updating every source row (not timed)")
        try await source.updateAll()
        progress("ferry: update pass of \(options.rows) rows")
        start = clock.now
        var updateSeconds = 0.0
        let (second, updateCPU) = try await ProcessCPU.measure(postgres: postgres, redis: redisInstance) {
            defer { updateSeconds = (clock.now - start).seconds }
            return try await TableSyncPipeline(pipeline, configuration: configuration, redis: redis, logger: logger).runOnce()
        }
        progress(String(format: "  %.1f s, %.0f rows/s (%d applied)", updateSeconds, Double(options.rows) / updateSeconds, second.applied))

        // 3: raw COPY.
        var copyRate: Double?
        if !options.skipPeers {
            progress("raw COPY of the same rows into an indexed table (psql \\copy)")
            copyRate = try await rawCopy(postgres: postgres, erp: erpEndpoint, admin: admin)
            progress(String(format: "  %.0f rows/s", copyRate ?? 0))
        }
        figures.append(
            Figure(
                name: "initial load, \(options.rows) rows", ferry: Double(options.rows) / loadSeconds, unit: "rows/s", peer: copyRate,
                peerName: "raw COPY", target: 100_000))
        figures += loadCPU.microseconds(per: options.rows).figures("CPU per row loaded")
        figures.append(
            Figure(
                name: "update pass, every row", ferry: Double(options.rows) / updateSeconds, unit: "rows/s", peer: copyRate, peerName: "raw COPY",
                target: 60_000))
        figures += updateCPU.microseconds(per: options.rows).figures("CPU per row updated")

        // 4: the original design in Python.
        if !options.skipPeers {
            progress("the original Python design on \(options.pythonRows) rows (LPUSH/BRPOP, executemany × 50)")
            let python = try await runPython(postgres: postgres, erp: erpEndpoint, redis: redisInstance, rows: options.pythonRows)
            progress(String(format: "  %.0f rows/s", python))
            figures.append(
                Figure(
                    name: "initial load vs the original", ferry: Double(options.rows) / loadSeconds, unit: "rows/s", peer: python,
                    peerName: "Python original, \(options.pythonRows) rows"))
        }

        // 5: steady state. The load, the update pass and the peers leave gigabytes of WAL and table pages for the
        // kernel and the checkpointer to write back over the next minutes; a system in its steady state is not in
        // the middle of that, so they are flushed first instead of during the measurement.
        progress("checkpoint and flush to disk before the steady state")
        try await admin.withConnection { connection in try await connection.query("CHECKPOINT", logger: logger) }
        sync()
        progress("steady state: \(options.steadyRate) changes/s for \(options.steadySeconds) s (after a warm-up of at least 3 s)")
        let steady = try await steadyState(pipeline, configuration: configuration, redis: redis, source: source)
        progress(String(format: "  %.0f changes/s made, p50 %.1f ms, p99 %.1f ms", steady.rate, steady.p50, steady.p99))
        figures.append(Figure(name: "steady \(options.steadyRate)/s: enqueue→commit p50", ferry: steady.p50, unit: "ms", higherIsBetter: false))
        figures.append(
            Figure(name: "steady \(options.steadyRate)/s: enqueue→commit p99", ferry: steady.p99, unit: "ms", target: 25, higherIsBetter: false))
        figures.append(Figure(name: "steady: changes/s the writer made", ferry: steady.rate, unit: "changes/s"))

        // 6: memory.
        figures.append(
            Figure(name: "peak resident memory (whole process)", ferry: Self.peakResidentMegabytes(), unit: "MB", target: 200, higherIsBetter: false))
        await admin.close()
        await erp.close()
        return figures
    }

    /// `psql \copy` out of the source once, then timed into a fresh table with a primary key.
    private func rawCopy(postgres: PostgresInstance, erp: PostgresEndpoint, admin: PostgresSession) async throws -> Double {
        let file = NSTemporaryDirectory() + "ferry-bench-\(getpid()).copy"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try runPSQL(postgres, database: "erp", "\\copy public.\"VW_VENTAS_SYNC\" TO '\(file)'")
        try await admin.withConnection { connection in
            try await connection.query("DROP TABLE IF EXISTS public.copy_peer", logger: logger)
            try await connection.query(
                """
                CREATE TABLE public.copy_peer (conduce varchar(20) PRIMARY KEY, fecha_emision date, facturado boolean,
                  numero_factura varchar(20), codigo_cliente varchar(20), cliente text, ultima_modificacion timestamp(6))
                """, logger: logger)
        }
        let clock = ContinuousClock()
        let start = clock.now
        try runPSQL(postgres, database: postgres.database, "\\copy public.copy_peer FROM '\(file)'")
        let seconds = (clock.now - start).seconds
        return Double(options.rows) / seconds
    }

    private func runPSQL(_ postgres: PostgresInstance, database: String, _ command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: postgres.binDirectory + "/psql")
        process.arguments = [
            "-h", "127.0.0.1", "-p", "\(postgres.port)", "-U", postgres.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-c", command,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = postgres.password
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FerryError(
                .invalidInput, "psql failed: \(String(decoding: message, as: UTF8.self))", fix: "run the command by hand: psql -c \"\(command)\"")
        }
    }

    private func runPython(postgres: PostgresInstance, erp: PostgresEndpoint, redis: RedisInstance, rows: Int) async throws -> Double {
        let dsn = { (database: String) in
            "host=127.0.0.1 port=\(postgres.port) dbname=\(database) user=\(postgres.user) password=\(postgres.password)"
        }
        return try PythonPeer.rate(
            script: options.pythonScript,
            arguments: [dsn("erp"), dsn(postgres.database), "\(redis.port)", redis.password ?? "", "public.\"VW_VENTAS_SYNC\"", "\(rows)"])
    }

    private struct Steady {
        var rate: Double
        var p50: Double
        var p99: Double
    }

    /// Runs the pipeline as a service while a writer changes `steadyRate` rows a second; latencies are per row.
    private func steadyState(_ pipeline: PipelineConfiguration, configuration: FerryConfiguration, redis: RedisClient, source: VentasSource)
        async throws -> Steady
    {
        let samples = LatencySamples()
        var options = TableSyncPipeline.Options()
        options.commitLatency = { latencies in samples.add(latencies) }
        let runner = try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, options: options, logger: logger)
        let writer = SteadyWriter(
            source: source, rate: self.options.steadyRate, tick: self.options.tick, seconds: self.options.steadySeconds, rows: self.options.rows,
            samples: samples)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: runner), .init(service: writer, successTerminationBehavior: .gracefullyShutdownGroup)],
                logger: logger))
        try await group.run()
        let sorted = samples.sorted()
        func percentile(_ fraction: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]) / 1000
        }
        return Steady(rate: writer.achievedRate.withLock { $0 }, p50: percentile(0.5), p99: percentile(0.99))
    }

    static func peakResidentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.split(separator: " ").compactMap { Double($0) }
            return (digits.first ?? 0) / 1024
        }
        return 0
    }
}

/// Enqueue→commit latencies in microseconds, one per row, collected after the warm-up.
private final class LatencySamples: Sendable {
    private let state = Mutex((counting: false, values: [Int64](), freshSince: ContinuousClock.Instant?.none))

    /// A latency under this is a live change, not the restart's backlog.
    static let fresh: Int64 = 100_000

    func add(_ entries: [(micros: Int64, rows: Int)]) {
        state.withLock { state in
            for entry in entries {
                if entry.micros >= Self.fresh {
                    state.freshSince = nil
                } else if state.freshSince == nil {
                    state.freshSince = .now
                }
            }
            guard state.counting else { return }
            for entry in entries { state.values.append(contentsOf: repeatElement(entry.micros, count: entry.rows)) }
        }
    }

    /// Since when every latency seen has been a live one (nil: the last one was not).
    var freshSince: ContinuousClock.Instant? { state.withLock { $0.freshSince } }

    func start() { state.withLock { $0.counting = true } }

    func sorted() -> [Int64] { state.withLock { $0.values.sorted() } }
}

/// Changes `rate` random rows a second in one transaction per `tick`, for `seconds` after the warm-up.
private final class SteadyWriter: Service {
    let source: VentasSource
    let rate: Int
    let tick: Duration
    let seconds: Int
    let rows: Int
    let samples: LatencySamples
    let achievedRate = Mutex(0.0)

    init(source: VentasSource, rate: Int, tick: Duration, seconds: Int, rows: Int, samples: LatencySamples) {
        self.source = source
        self.rate = rate
        self.tick = tick
        self.seconds = seconds
        self.rows = rows
        self.samples = samples
    }

    func run() async throws {
        let clock = ContinuousClock()
        let perTick = max(1, Int((Double(rate) * tick.seconds).rounded()))
        let warmUp = clock.now + .seconds(3)
        var measuredFrom: ContinuousClock.Instant?
        var changed = 0
        var next = clock.now
        while !Task.isShuttingDownGracefully {
            // Warm-up: at least 3 s, and until the backlog a restarted producer re-queues from its lookback
            // window has been applied — every latency under 100 ms for a second: when the first live entry
            // commits, the other consumers may still be applying backlog entries they took before it, which
            // would count seconds of queueing as steady-state latency — at most 2 minutes.
            let live = samples.freshSince.map { clock.now - $0 >= .seconds(1) } ?? false
            if measuredFrom == nil, clock.now >= warmUp, live || clock.now >= warmUp + .seconds(120) {
                measuredFrom = clock.now
                samples.start()
            }
            if let measuredFrom, clock.now - measuredFrom >= .seconds(seconds) { break }
            let made = try await source.update(randomRows: perTick, upTo: rows)
            if measuredFrom != nil { changed += made }
            next = next + tick
            if next > clock.now { try? await Task.sleep(until: next) } else { next = clock.now }
        }
        // Let the last changes arrive before the group shuts down.
        try? await Task.sleep(for: .seconds(1))
        let elapsed = measuredFrom.map { (clock.now - $0 - .seconds(1)).seconds } ?? 1
        achievedRate.withLock { $0 = Double(changed) / max(elapsed, 0.001) }
    }
}
