import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRedis
import FerrySQLServer
package import FerrySandbox
import FerrySync
import Foundation
package import Logging
import PostgresNIO
import TDSEmulator

/// Reading the sales view through TDS: Ferry's SQL Server client (FreeTDS's DB-Library) beside pymssql (the same
/// FreeTDS underneath, what the original scripts use) and python-tds, all against the TDS emulator serving the same
/// PostgreSQL table; and the emulator alone (a reader that discards the bytes), so the report shows whether the
/// emulator is what limits the rate.
package struct SQLServerBenchmark: Sendable {
    package struct Options: Sendable {
        package var rows = 1_000_000
        package var skipPeers = false
        package var batchRows = 1000
        package var pythonScript = "Benchmarks/python/tds_read.py"
        /// Also load the view into a mirror through the table sync, from SQL Server and from PostgreSQL.
        package var fullLoads = true
        /// Rows written into an empty table by the SQL Server target (bulk copy) and its peers; 0 skips the writes.
        package var writeRows = 100_000
        package var pythonWriteScript = "Benchmarks/python/tds_write.py"

        package init() {}
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    package func run(on sandbox: Sandbox, progress: @escaping @Sendable (String) -> Void) async throws -> [SyncBenchmark.Figure] {
        guard let postgres = sandbox.postgres else { throw FerryError(.sandbox, "the benchmark needs the sandbox's PostgreSQL") }
        let schema = "bench_tds"
        progress("generating \(options.rows) rows shaped like VW_VENTAS_SYNC")
        try await PostgresSession.using(postgres.endpoint, key: "postgres", logger: logger) { session in
            try await session.withConnection { try await $0.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", logger: logger) }
            try await VentasSource(session: session, schema: schema, logger: logger).create(rows: options.rows)
        }
        // The emulator runs in a process of its own: Ferry's CPU and the emulator's are measured apart, as they would
        // be with SQL Server on its own machine (here they still share the two cores).
        let emulator = try TDSEmulatorProcess.start(postgres: postgres.endpoint, schema: schema)
        defer { emulator.stop() }
        var endpoint = SQLServerEndpoint()
        endpoint.host = "127.0.0.1"
        endpoint.port = emulator.port
        endpoint.database = "ventas"
        endpoint.user = "ferry"
        endpoint.password = Secret("s3cret")
        let statement = "SELECT * FROM [VW_VENTAS_SYNC]"

        // A first pass warms PostgreSQL's cache and the emulator's code paths; every measured read comes after it.
        progress("warming up: one read of every row")
        _ = try await TDSRawReader.read(statement, port: emulator.port)
        progress("the emulator alone: the rows read and discarded")
        let emulatorBefore = ProcessCPU.seconds(ofProcess: emulator.pid)
        let (alone, _) = try await measure { try await TDSRawReader.read(statement, port: emulator.port) }
        let aloneCPU = ProcessCPU.seconds(ofProcess: emulator.pid) - emulatorBefore
        progress("ferry: reading every row (batches of \(options.batchRows), as COPY text)")
        let connection = try await SQLServerConnection.connect(endpoint)
        let (read, ferryCPU) = try await measure {
            try await connection.query(statement, batchRows: options.batchRows) { _ in }.rows
        }
        progress("FreeTDS alone: every row fetched, nothing converted")
        let (floor, floorCPU) = try await measure { try await connection.countRows(statement) }
        await connection.close()
        guard read.count == options.rows, alone.count >= options.rows, floor.count == options.rows else {
            throw FerryError(.server, "read \(read.count) rows (the emulator alone: \(alone.count)) of \(options.rows)")
        }
        var pymssql: (rate: Double, cpu: Double)?
        var pytds: (rate: Double, cpu: Double)?
        if !options.skipPeers {
            progress("pymssql: reading every row")
            pymssql = try python("pymssql", port: emulator.port)
            progress("python-tds: reading every row")
            pytds = try python("pytds", port: emulator.port)
        }
        let rows = Double(options.rows)
        let replayed = try await replayedReads(statement: statement, endpoint: endpoint, postgres: postgres, schema: schema, progress: progress)
        var figures: [SyncBenchmark.Figure] = [
            .init(name: "rows/s read: Ferry vs pymssql", ferry: rows / read.seconds, unit: "rows/s", peer: pymssql?.rate, peerName: "pymssql"),
            .init(name: "rows/s read: Ferry vs python-tds", ferry: rows / read.seconds, unit: "rows/s", peer: pytds?.rate, peerName: "python-tds"),
            .init(name: "rows/s the emulator serves alone", ferry: rows / alone.seconds, unit: "rows/s"),
            .init(name: "CPU per row: Ferry's client (its process)", ferry: ferryCPU * 1e6 / rows, unit: "µs", higherIsBetter: false),
            .init(name: "CPU per row: the emulator", ferry: aloneCPU * 1e6 / rows, unit: "µs", higherIsBetter: false),
            .init(name: "CPU per row: FreeTDS alone (rows fetched, not converted)", ferry: floorCPU * 1e6 / rows, unit: "µs", higherIsBetter: false),
        ]
        if let pymssql {
            figures.append(.init(name: "CPU per row: pymssql (its process)", ferry: pymssql.cpu * 1e6 / rows, unit: "µs", higherIsBetter: false))
        }
        if let pytds {
            figures.append(.init(name: "CPU per row: python-tds (its process)", ferry: pytds.cpu * 1e6 / rows, unit: "µs", higherIsBetter: false))
        }
        figures += replayed
        if options.writeRows > 0 {
            figures += try await writes(endpoint: endpoint, emulator: emulator, postgres: postgres, schema: schema, progress: progress)
        }
        if options.fullLoads, let redisInstance = sandbox.redis {
            var configuration = FerryConfiguration()
            configuration.postgres = postgres.endpoint
            configuration.redis = redisInstance.endpoint
            configuration.sqlserver = endpoint
            let run = "\(UInt32(Date().timeIntervalSince1970) % 100_000)"
            var clientConfiguration = RedisClient.Configuration(connection: RedisConnectionConfiguration(redisInstance.endpoint))
            clientConfiguration.reconnectTimeout = .seconds(30)
            let redis = RedisClient(configuration: clientConfiguration, logger: logger)
            progress("table sync: full load of \(options.rows) rows from PostgreSQL (the same table, read directly)")
            let (fromPostgres, postgresCPU) = try await ProcessCPU.measure(postgres: postgres, redis: redisInstance) {
                try await fullLoad("postgres", table: "\(schema).VW_VENTAS_SYNC", name: "pg_\(run)", configuration: configuration, redis: redis)
            }
            progress(String(format: "  %.1f s, %.0f rows/s", fromPostgres, rows / fromPostgres))
            progress("table sync: full load of \(options.rows) rows from SQL Server (the emulator)")
            let emulatorBeforeLoad = ProcessCPU.seconds(ofProcess: emulator.pid)
            let (fromSQLServer, sqlServerCPU) = try await ProcessCPU.measure(postgres: postgres, redis: redisInstance) {
                try await fullLoad("sqlserver", table: "dbo.VW_VENTAS_SYNC", name: "mssql_\(run)", configuration: configuration, redis: redis)
            }
            let emulatorLoadCPU = ProcessCPU.seconds(ofProcess: emulator.pid) - emulatorBeforeLoad
            progress(String(format: "  %.1f s, %.0f rows/s", fromSQLServer, rows / fromSQLServer))
            // Change Tracking: the same table tracked (every row without a version: loaded by key), then a tenth of the
            // rows updated and a thousandth deleted, read again by it and by the watermark pipeline loaded above.
            progress("table sync: full load of \(options.rows) rows from SQL Server with change_tracking: true")
            try await PostgresSession.using(postgres.endpoint, key: "postgres", logger: logger) { session in
                try await session.withConnection { connection in
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "SELECT sys.enable_change_tracking('\(schema).\"VW_VENTAS_SYNC\"')"), logger: logger)
                }
            }
            let emulatorBeforeTracked = ProcessCPU.seconds(ofProcess: emulator.pid)
            let (tracked, trackedCPU) = try await ProcessCPU.measure(postgres: postgres, redis: redisInstance) {
                try await fullLoad(
                    "sqlserver", table: "dbo.VW_VENTAS_SYNC", name: "ct_\(run)", configuration: configuration, redis: redis, changeTracking: true)
            }
            let emulatorTrackedCPU = ProcessCPU.seconds(ofProcess: emulator.pid) - emulatorBeforeTracked
            progress(String(format: "  %.1f s, %.0f rows/s", tracked, rows / tracked))
            let changed = max(1, options.rows / 10)
            let deleted = max(1, options.rows / 1_000)
            try await PostgresSession.using(postgres.endpoint, key: "postgres", logger: logger) { session in
                try await session.withConnection { connection in
                    let table = "\(schema).\"VW_VENTAS_SYNC\""
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: """
                                UPDATE \(table) SET "CLIENTE" = "CLIENTE" || ' *', "ULTIMA_MODIFICACION" = "ULTIMA_MODIFICACION" + interval '400 days'
                                WHERE "CONDUCE" IN (SELECT "CONDUCE" FROM \(table) ORDER BY "CONDUCE" LIMIT \(changed))
                                """), logger: logger)
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: """
                                DELETE FROM \(table) WHERE "CONDUCE" IN (SELECT "CONDUCE" FROM \(table) ORDER BY "CONDUCE" DESC LIMIT \(deleted))
                                """), logger: logger)
                }
            }
            progress("table sync: \(changed) rows updated and \(deleted) deleted, read by Change Tracking and by the watermark")
            let trackedChanges = try await incremental(
                "sqlserver", table: "dbo.VW_VENTAS_SYNC", name: "ct_\(run)", configuration: configuration, redis: redis, changeTracking: true)
            let watermarkChanges = try await incremental(
                "sqlserver", table: "dbo.VW_VENTAS_SYNC", name: "mssql_\(run)", configuration: configuration, redis: redis, changeTracking: false)
            progress(
                String(
                    format: "  Change Tracking %.2f s (%d rows), watermark %.2f s (%d rows)", trackedChanges.seconds, trackedChanges.rows,
                    watermarkChanges.seconds, watermarkChanges.rows))
            await redis.shutdown()
            let perRow = 1e6 / rows
            figures += [
                .init(
                    name: "full load into the mirror: SQL Server source vs PostgreSQL source", ferry: rows / fromSQLServer, unit: "rows/s",
                    peer: rows / fromPostgres, peerName: "PostgreSQL source"),
                .init(
                    name: "full load, Ferry's CPU per row: SQL Server source vs PostgreSQL source", ferry: sqlServerCPU.ferry * perRow, unit: "µs",
                    peer: postgresCPU.ferry * perRow, peerName: "PostgreSQL source", higherIsBetter: false),
                .init(
                    name: "full load, the source server's CPU per row: the emulator vs PostgreSQL",
                    ferry: (emulatorLoadCPU + sqlServerCPU.postgres) * perRow, unit: "µs", peer: postgresCPU.postgres * perRow,
                    peerName: "PostgreSQL (source and target)", higherIsBetter: false),
                .init(
                    name: "full load from SQL Server: change_tracking vs watermark", ferry: rows / tracked, unit: "rows/s",
                    peer: rows / fromSQLServer, peerName: "watermark"),
                .init(
                    name: "full load, change_tracking vs watermark: Ferry's CPU per row", ferry: trackedCPU.ferry * perRow, unit: "µs",
                    peer: sqlServerCPU.ferry * perRow, peerName: "watermark", higherIsBetter: false),
                .init(
                    name: "full load, change_tracking vs watermark: the source server's CPU per row",
                    ferry: (emulatorTrackedCPU + trackedCPU.postgres) * perRow, unit: "µs",
                    peer: (emulatorLoadCPU + sqlServerCPU.postgres) * perRow, peerName: "watermark", higherIsBetter: false),
                .init(
                    name: "changes after 10% updated, 0.1% deleted: change_tracking vs watermark",
                    ferry: Double(changed + deleted) / trackedChanges.seconds,
                    unit: "rows/s", peer: Double(changed) / watermarkChanges.seconds, peerName: "watermark (deletes unseen)"),
            ]
        }
        figures.append(.init(name: "peak resident memory", ferry: SyncBenchmark.peakResidentMegabytes(), unit: "MB", higherIsBetter: false))
        return figures
    }

    /// The same reads from a replaying server (``TDSResultCache``: the emulator answers from memory what it served
    /// once), in a process of its own: the server then costs almost nothing, so the rates are the clients' own, where
    /// the live emulator caps them all.
    private func replayedReads(
        statement: String, endpoint: SQLServerEndpoint, postgres: PostgresInstance, schema: String,
        progress: @escaping @Sendable (String) -> Void
    ) async throws -> [SyncBenchmark.Figure] {
        progress("a replaying server (the emulator answers from memory what it served once): the clients alone")
        let replay = try TDSEmulatorProcess.start(postgres: postgres.endpoint, schema: schema, replay: true)
        defer { replay.stop() }
        var endpoint = endpoint
        endpoint.port = replay.port
        _ = try await TDSRawReader.read(statement, port: replay.port)
        let serverBefore = ProcessCPU.seconds(ofProcess: replay.pid)
        let (alone, _) = try await measure { try await TDSRawReader.read(statement, port: replay.port) }
        let connection = try await SQLServerConnection.connect(endpoint)
        let (read, ferryCPU) = try await measure {
            try await connection.query(statement, batchRows: options.batchRows) { _ in }.rows
        }
        await connection.close()
        let serverCPU = ProcessCPU.seconds(ofProcess: replay.pid) - serverBefore
        guard read.count == options.rows, alone.count >= options.rows else {
            throw FerryError(.server, "read \(read.count) rows from the replaying server (its reader alone: \(alone.count)) of \(options.rows)")
        }
        let rows = Double(options.rows)
        var figures: [SyncBenchmark.Figure] = [
            .init(name: "rows/s the replaying server serves alone", ferry: rows / alone.seconds, unit: "rows/s"),
            .init(
                name: "CPU per row: the replaying server (its reader alone and Ferry)", ferry: serverCPU * 1e6 / rows / 2, unit: "µs",
                higherIsBetter: false),
        ]
        if options.skipPeers {
            figures.append(.init(name: "rows/s read, replaying server: Ferry", ferry: rows / read.seconds, unit: "rows/s"))
        } else {
            progress("  pymssql and python-tds from the replaying server")
            let pymssql = try python("pymssql", port: replay.port)
            let pytds = try python("pytds", port: replay.port)
            figures += [
                .init(
                    name: "rows/s read, replaying server: Ferry vs pymssql", ferry: rows / read.seconds, unit: "rows/s", peer: pymssql.rate,
                    peerName: "pymssql"),
                .init(
                    name: "rows/s read, replaying server: Ferry vs python-tds", ferry: rows / read.seconds, unit: "rows/s", peer: pytds.rate,
                    peerName: "python-tds"),
                .init(
                    name: "CPU per row, replaying server: Ferry vs pymssql", ferry: ferryCPU * 1e6 / rows, unit: "µs",
                    peer: pymssql.cpu * 1e6 / rows, peerName: "pymssql", higherIsBetter: false),
            ]
        }
        return figures
    }

    /// Rows written into an empty table: Ferry's SQL Server target (bulk copy, in one transaction) beside python-tds's
    /// bulk copy (`copy_to`) and pymssql's `executemany` (pymssql 2.4 has no bulk copy), each into a table of its own.
    private func writes(
        endpoint: SQLServerEndpoint, emulator: TDSEmulatorProcess, postgres: PostgresInstance, schema: String,
        progress: @escaping @Sendable (String) -> Void
    ) async throws -> [SyncBenchmark.Figure] {
        let count = options.writeRows
        let tables = ["carga_ferry", "carga_pytds", "carga_pymssql"]
        try await PostgresSession.using(postgres.endpoint, key: "postgres", logger: logger) { session in
            try await session.withConnection { connection in
                for table in tables {
                    try await connection.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(schema).\(table)"), logger: logger)
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL:
                                "CREATE TABLE \(schema).\(table) (id int PRIMARY KEY, cliente varchar(50), monto numeric(12,2), momento timestamp(6))"
                        ),
                        logger: logger)
                }
            }
        }
        // The rows the Python peers write (Benchmarks/python/tds_write.py), as PostgreSQL text.
        let rows: [[String?]] = (1...count).map { index in
            let cents = index % 100_000
            let seconds = index
            let time = String(format: "2026-01-%02d %02d:%02d:%02d", 1 + seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60)
            return ["\(index)", "cliente \(index % 997)", String(format: "%d.%02d", cents / 100, cents % 100), time]
        }
        var options = SQLServerOptions()
        options.bulkCopy = true
        let session = SQLServerSession(endpoint: endpoint, key: "sqlserver", options: options)
        let target = SQLServerTableTarget(session: session, table: "dbo.carga_ferry", key: ["id"])
        progress("ferry: writing \(count) rows with the SQL Server target (bulk copy, one transaction)")
        let emulatorBefore = ProcessCPU.seconds(ofProcess: emulator.pid)
        let written: (count: Int, seconds: Double)
        let ferryCPU: Double
        do {
            (written, ferryCPU) = try await measure {
                try await target.apply(SQLServerChanges(columns: ["id", "cliente", "monto", "momento"], inserts: rows)).inserted
            }
            await session.close()
        } catch {
            await session.close()
            throw error
        }
        let emulatorCPU = ProcessCPU.seconds(ofProcess: emulator.pid) - emulatorBefore
        guard written.count == count else { throw FerryError(.server, "the target wrote \(written.count) of \(count) rows") }
        progress(String(format: "  %.1f s, %.0f rows/s", written.seconds, Double(count) / written.seconds))
        var pytds: Double?
        var pymssql: Double?
        if !self.options.skipPeers {
            progress("python-tds: writing \(count) rows with copy_to (bulk copy)")
            pytds = try PythonPeer.rate(script: self.options.pythonWriteScript, arguments: ["pytds", "\(emulator.port)", "carga_pytds", "\(count)"])
            // executemany sends one batch per row: a tenth of the rows keeps its run under a minute.
            let fewer = max(1, count / 10)
            progress("pymssql: writing \(fewer) rows with executemany")
            pymssql = try PythonPeer.rate(
                script: self.options.pythonWriteScript, arguments: ["pymssql", "\(emulator.port)", "carga_pymssql", "\(fewer)"])
        }
        let perRow = 1e6 / Double(count)
        return [
            .init(
                name: "rows/s written: Ferry's target (bulk copy) vs python-tds copy_to", ferry: Double(count) / written.seconds, unit: "rows/s",
                peer: pytds, peerName: "python-tds"),
            .init(
                name: "rows/s written: Ferry's target (bulk copy) vs pymssql executemany", ferry: Double(count) / written.seconds, unit: "rows/s",
                peer: pymssql, peerName: "pymssql"),
            .init(name: "CPU per row written: Ferry's client (its process)", ferry: ferryCPU * perRow, unit: "µs", higherIsBetter: false),
            .init(name: "CPU per row written: the emulator", ferry: emulatorCPU * perRow, unit: "µs", higherIsBetter: false),
        ]
    }

    /// Seconds for the table sync's initial load of `table` (from `connection`) into a fresh mirror: one `ferry sync
    /// --once`, the same pipeline settings for both sources.
    private func fullLoad(
        _ connection: String, table: String, name: String, configuration: FerryConfiguration, redis: RedisClient, changeTracking: Bool = false
    ) async throws -> Double {
        let (seconds, applied) = try await runOnce(
            connection, table: table, name: name, configuration: configuration, redis: redis, changeTracking: changeTracking)
        guard applied >= options.rows else {
            throw FerryError(.server, "the load from \(connection) applied \(applied) of \(options.rows) rows")
        }
        return seconds
    }

    /// One more pass of a pipeline loaded before: seconds and rows applied.
    private func incremental(
        _ connection: String, table: String, name: String, configuration: FerryConfiguration, redis: RedisClient, changeTracking: Bool
    ) async throws -> (seconds: Double, rows: Int) {
        let (seconds, applied) = try await runOnce(
            connection, table: table, name: name, configuration: configuration, redis: redis, changeTracking: changeTracking)
        return (seconds, applied)
    }

    /// `ferry sync --once` of the pipeline `bench_NAME` into its own mirror schema: wall seconds and rows applied.
    private func runOnce(
        _ connection: String, table: String, name: String, configuration: FerryConfiguration, redis: RedisClient, changeTracking: Bool
    ) async throws -> (Double, Int) {
        var configuration = configuration
        let schema = "bench_mirror_\(name)"
        configuration.postgres?.schema = schema
        var pipeline = PipelineConfiguration(
            name: "bench_\(name)",
            source: .init(connection: connection, table: table, query: nil, key: ["CONDUCE"], watermark: "ULTIMA_MODIFICACION"),
            target: .init(schema: schema, table: "datos_vista"), batchSize: configuration.sync.batchSize, interval: .milliseconds(100))
        if changeTracking {
            pipeline.source.changeTracking = true
            pipeline.source.watermark = PipelineConfiguration.Source.changeVersionColumn
            pipeline.source.lookback = .zero
        }
        configuration.pipelines = [pipeline]
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await TableSyncPipeline(pipeline, configuration: configuration, redis: redis, logger: logger).runOnce()
        return ((clock.now - start).seconds, result.applied)
    }

    /// Wall seconds and this process's CPU seconds of `body`.
    private func measure(_ body: () async throws -> Int) async throws -> ((count: Int, seconds: Double), Double) {
        let clock = ContinuousClock()
        let cpuBefore = Self.cpuSeconds(RUSAGE_SELF)
        let start = clock.now
        let count = try await body()
        let seconds = (clock.now - start).seconds
        return ((count, seconds), Self.cpuSeconds(RUSAGE_SELF) - cpuBefore)
    }

    /// Rows/s and the peer process's CPU seconds.
    private func python(_ driver: String, port: Int) throws -> (rate: Double, cpu: Double) {
        let before = Self.cpuSeconds(RUSAGE_CHILDREN)
        let rate = try PythonPeer.rate(script: options.pythonScript, arguments: [driver, "\(port)"])
        return (rate, Self.cpuSeconds(RUSAGE_CHILDREN) - before)
    }

    private static func cpuSeconds(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
