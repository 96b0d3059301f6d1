import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRedis
import FerrySandbox
import FerrySync
import Foundation
import Logging
import PostgresNIO
import TDSEmulator
import Testing

/// One test's table sync world inside the suite's sandbox: a source table in its own schema, a target schema,
/// a pipeline with a unique name (so Redis keys do not collide), and helpers to change and inspect both sides.
struct SyncWorld {
    let sandbox: Sandbox
    let name: String
    let sourceSchema: String
    let targetSchema: String
    var pipeline: PipelineConfiguration
    let session: PostgresSession
    let logger = Logger(label: "ferry.test.sync")
    /// Set when the source is read through the TDS emulator (``withSQLServerSource(_:)``).
    var sqlserver: SQLServerEndpoint?

    /// Creates `src_<name>.ventas` shaped like VW_VENTAS_SYNC with `rows` rows (watermarks one second apart
    /// starting at 2025-01-01) and an index on (watermark, key).
    static func make(_ name: String, rows: Int = 0, companion: Bool = true, adjust: (inout PipelineConfiguration) -> Void = { _ in }) async throws
        -> SyncWorld
    {
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        let unique = "\(name)_\(UInt32.random(in: 0..<UInt32.max))"
        let world = SyncWorld(
            sandbox: sandbox,
            name: unique,
            sourceSchema: "src_\(unique)",
            targetSchema: "dst_\(unique)",
            pipeline: {
                var pipeline = PipelineConfiguration(
                    name: unique,
                    source: .init(
                        connection: "postgres", table: "src_\(unique).VW_VENTAS_SYNC", query: nil, key: ["CONDUCE"], watermark: "ULTIMA_MODIFICACION"),
                    target: .init(schema: "dst_\(unique)", table: "datos_vista"),
                    batchSize: 500,
                    interval: .milliseconds(50)
                )
                pipeline.rowsPerEntry = 100
                pipeline.applyBatchRows = 1000
                pipeline.claimIdle = .seconds(2)
                pipeline.maxWait = .milliseconds(20)
                if companion {
                    pipeline.companion = .init(
                        table: "datos_seguimiento", columns: [("nota", "text"), ("ruta", "text"), ("trabajado", "boolean"), ("preparador", "text")])
                }
                adjust(&pipeline)
                return pipeline
            }(),
            session: PostgresSession(endpoint: postgres.endpoint, key: "postgres", logger: Logger(label: "ferry.test.sql"))
        )
        try await world.sql(
            """
            CREATE SCHEMA "src_\(unique)";
            CREATE TABLE "src_\(unique)"."VW_VENTAS_SYNC" (
              "CONDUCE" varchar(20) PRIMARY KEY,
              "FECHA_EMISION" date NOT NULL,
              "FACTURADO" boolean NOT NULL,
              "NUMERO_FACTURA" varchar(20),
              "CODIGO_CLIENTE" varchar(20) NOT NULL,
              "CLIENTE" text NOT NULL,
              "ULTIMA_MODIFICACION" timestamp(6));
            CREATE INDEX ON "src_\(unique)"."VW_VENTAS_SYNC" ("ULTIMA_MODIFICACION", "CONDUCE")
            """)
        if rows > 0 { try await world.insert(1...rows) }
        return world
    }

    var table: String { "\"\(sourceSchema)\".\"VW_VENTAS_SYNC\"" }
    var mirror: String { "\"\(targetSchema)\".\"datos_vista\"" }
    var companion: String { "\"\(targetSchema)\".\"datos_seguimiento\"" }

    /// The configuration a `ferry` process or the library uses for this world.
    var configuration: FerryConfiguration {
        var configuration = FerryConfiguration()
        var postgres = sandbox.postgres!.endpoint
        postgres.schema = targetSchema
        configuration.postgres = postgres
        configuration.redis = sandbox.redis!.endpoint
        configuration.sqlserver = sqlserver
        configuration.pipelines = [pipeline]
        return configuration
    }

    /// Runs `body` with this world's source read as SQL Server: a TDS emulator serves the source schema's tables
    /// (`dbo.VW_VENTAS_SYNC`), and the pipeline reads it through Ferry's SQL Server connector.
    func withSQLServerSource(_ body: (SyncWorld, TDSEmulator) async throws -> Void) async throws {
        let postgres = try #require(sandbox.postgres)
        var configuration = try TDSEmulator.Configuration(
            postgres: postgres.endpoint.connectionConfiguration(), database: "ventas", logins: ["ferry": "s3cret"])
        configuration.postgres.options.additionalStartupParameters = [("search_path", sourceSchema)]
        let emulator = try await TDSEmulator.start(configuration, logger: Logger(label: "ferry.test.tds"))
        var world = self
        var endpoint = SQLServerEndpoint()
        endpoint.host = "127.0.0.1"
        endpoint.port = emulator.port
        endpoint.database = "ventas"
        endpoint.user = "ferry"
        endpoint.password = Secret("s3cret")
        endpoint.connectTimeout = .seconds(5)
        world.sqlserver = endpoint
        world.pipeline.source.connection = "sqlserver"
        if let table = pipeline.source.table { world.pipeline.source.table = "dbo." + (table.split(separator: ".").last.map(String.init) ?? table) }
        do {
            try await body(world, emulator)
        } catch {
            await emulator.close()
            throw error
        }
        await emulator.close()
    }

    /// Runs statements separated by `;` (no data returned).
    /// The source relation `name` of this world's schema, read directly (not through a pipeline).
    func tableSource(_ name: String = "VW_VENTAS_SYNC") throws -> PostgresTableSource {
        let postgres = try #require(sandbox.postgres)
        return PostgresTableSource(
            endpoint: postgres.endpoint, configurationKey: "postgres", relation: .table("\(sourceSchema).\(name)"), key: ["CONDUCE"],
            watermark: "ULTIMA_MODIFICACION", logger: logger)
    }

    func sql(_ statements: String) async throws {
        try await session.withConnection { connection in
            for statement in statements.split(separator: ";\n").map({ String($0) })
            where !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    func int(_ query: String) async throws -> Int {
        try await session.withConnection { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: query), logger: logger)
            for try await value in rows.decode(Int64?.self) { return Int(value ?? 0) }
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

    static func key(_ index: Int) -> String { "C-" + String(repeating: "0", count: max(0, 7 - String(index).count)) + String(index) }

    /// Inserts rows `indexes` with watermarks one second apart from 2025-01-01 (row n at second n), or the given
    /// watermark, or the time of the insert (`now: true`, like a live writer).
    func insert(_ indexes: ClosedRange<Int>, watermark: String? = nil, now: Bool = false) async throws {
        var wm = watermark.map { "timestamp '\($0)'" } ?? "timestamp '2025-01-01' + (i || ' seconds')::interval + interval '0.123456 seconds'"
        if now { wm = "clock_timestamp()" }
        try await sql(
            """
            INSERT INTO \(table) SELECT 'C-' || lpad(i::text, 7, '0'), date '2025-01-01' + (i % 365), i % 3 = 0,
              CASE WHEN i % 3 = 0 THEN 'F-' || i END, 'CL-' || (i % 50), 'Cliente ' || (i % 50) || E' tab\\there', \(wm)
            FROM generate_series(\(indexes.lowerBound), \(indexes.upperBound)) i
            """)
    }

    func runOnce(options: TableSyncPipeline.Options = .init()) async throws -> (produced: Int, applied: Int) {
        let redis = RedisClient(configuration: .init(connection: RedisConnectionConfiguration(sandbox.redis!.endpoint)), logger: logger)
        do {
            let result = try await TableSyncPipeline(pipeline, configuration: configuration, redis: redis, options: options, logger: logger).runOnce()
            await redis.shutdown()
            return result
        } catch {
            await redis.shutdown()
            throw error
        }
    }

    func reconcile(repair: Bool = false) async throws -> Reconciler.Report {
        let redis = RedisClient(configuration: .init(connection: RedisConnectionConfiguration(sandbox.redis!.endpoint)), logger: logger)
        do {
            let report = try await Reconciler(pipeline, configuration: configuration, redis: redis, logger: logger).run(repair: repair)
            await redis.shutdown()
            return report
        } catch {
            await redis.shutdown()
            throw error
        }
    }

    /// Source and mirror hold exactly the same live rows (every column compared as text).
    func expectMirrorEqualsSource(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let columns = "\"CONDUCE\", \"FECHA_EMISION\", \"FACTURADO\", \"NUMERO_FACTURA\", \"CODIGO_CLIENTE\", \"CLIENTE\", \"ULTIMA_MODIFICACION\""
        let mirrorColumns = "conduce, fecha_emision, facturado, numero_factura, codigo_cliente, cliente, ultima_modificacion"
        let missing = try await int(
            "SELECT count(*) FROM (SELECT \(columns) FROM \(table) EXCEPT SELECT \(mirrorColumns) FROM \(mirror) WHERE deleted_at IS NULL) d")
        let extra = try await int(
            "SELECT count(*) FROM (SELECT \(mirrorColumns) FROM \(mirror) WHERE deleted_at IS NULL EXCEPT SELECT \(columns) FROM \(table)) d")
        var examples: [String] = []
        if missing > 0 {
            let sample = try await strings(
                """
                SELECT d."CONDUCE" || ' source=' || d."CLIENTE" || '@' || coalesce(d."ULTIMA_MODIFICACION"::text, 'null') || ' mirror=' ||
                  coalesce(m.cliente || '@' || coalesce(m.ultima_modificacion::text, 'null') || ' seq=' || m.ferry_seq || ' updated=' || m.updated_at, 'absent')
                FROM (SELECT \(columns) FROM \(table) EXCEPT SELECT \(mirrorColumns) FROM \(mirror) WHERE deleted_at IS NULL) d
                LEFT JOIN \(mirror) m ON m.conduce = d."CONDUCE" ORDER BY d."ULTIMA_MODIFICACION" LIMIT 8
                """)
            examples = sample.compactMap { $0 }
        }
        #expect(missing == 0, "rows of the source missing or different in the mirror: \(examples)", sourceLocation: sourceLocation)
        #expect(extra == 0, "rows of the mirror not in the source", sourceLocation: sourceLocation)
    }

    func close() async {
        await session.close()
    }
}
