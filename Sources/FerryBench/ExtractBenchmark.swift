import FerryCore
import FerryPostgres
import FerryPostgresNode
package import FerrySandbox
import Foundation
package import Logging
import PostgresNIO

/// PostgreSQL → Parquet (Snappy) of the sales table: `ferry extract` beside ConnectorX + pyarrow and DuckDB's postgres
/// scanner in the same run, each a process of its own timed by /usr/bin/time (wall, CPU, peak memory).
package struct ExtractBenchmark: Sendable {
    package struct Options: Sendable {
        package var rows = 1_000_000
        package var rounds = 3
        package var skipPeers = false
        /// Also SQL Server → Parquet from a replaying TDS emulator (SQL Server cannot run here), beside pymssql + pyarrow.
        package var sqlserver = true
        package var executable: String
        package var script = "Benchmarks/python/extract_parquet.py"

        package init(executable: String) { self.executable = executable }
    }

    /// One run of one tool.
    struct Run {
        var seconds: Double
        var cpu: Double
        var peakMB: Double
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    package func run(on sandbox: Sandbox, progress: @escaping @Sendable (String) -> Void) async throws -> [SyncBenchmark.Figure] {
        guard let postgres = sandbox.postgres else { throw FerryError(.sandbox, "the benchmark needs the sandbox's PostgreSQL") }
        let schema = "bench_extract"
        progress("generating \(options.rows) rows shaped like VW_VENTAS_SYNC")
        try await PostgresSession.using(postgres.endpoint, key: "postgres", logger: logger) { session in
            try await session.withConnection { try await $0.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", logger: logger) }
            try await VentasSource(session: session, schema: schema, logger: logger).create(rows: options.rows)
        }
        let work = FileManager.default.currentDirectoryPath + "/.ferry/bench/extract-work"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work + "/queries", withIntermediateDirectories: true)
        let query = "SELECT * FROM \(schema).\"VW_VENTAS_SYNC\""
        try (query + "\n").write(toFile: work + "/queries/sales.sql", atomically: true, encoding: .utf8)
        let endpoint = postgres.endpoint
        let password = endpoint.password?.value ?? ""
        let environment = [
            "PG_HOST": endpoint.host, "PG_PORT": "\(endpoint.port)", "PG_USER": endpoint.user, "PG_PASSWORD": password,
            "PG_DATABASE": endpoint.database,
        ]
        var ferry: [Run] = []
        var connectorx: [Run] = []
        var duckdb: [Run] = []
        var duckdbProblem: String?
        for round in 1...options.rounds {
            progress("round \(round): ferry extract")
            ferry.append(
                try Self.timed(
                    options.executable,
                    ["extract", "--query", "sales", "--destination", work + "/ferry", "--overwrite", "--queries-path", work + "/queries", "--json"],
                    environment: environment, directory: work))
            guard !options.skipPeers else { continue }
            let arguments = [endpoint.host, "\(endpoint.port)", endpoint.user, password, endpoint.database, query]
            progress("round \(round): ConnectorX + pyarrow")
            connectorx.append(
                try Self.timed(
                    "/usr/bin/python3", [options.script, "connectorx"] + arguments + [work + "/connectorx.parquet"], environment: [:], directory: nil)
            )
            if duckdbProblem == nil {
                progress("round \(round): DuckDB's postgres scanner")
                do {
                    duckdb.append(
                        try Self.timed(
                            "/usr/bin/python3", [options.script, "duckdb"] + arguments + [work + "/duckdb.parquet"], environment: [:], directory: nil)
                    )
                } catch {
                    duckdbProblem = "\(error)"
                    progress("DuckDB's postgres scanner could not run (its extension comes from the internet): \(error)")
                }
            }
        }
        let fromSQLServer = options.sqlserver ? try sqlServerRounds(postgres: postgres, schema: schema, work: work, progress: progress) : nil
        try? FileManager.default.removeItem(atPath: work)
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let rows = Double(options.rows)
        var figures: [SyncBenchmark.Figure] = [
            .init(
                name: "PostgreSQL → Parquet (Snappy), \(options.rows) sales rows", ferry: rows / median(ferry.map(\.seconds)), unit: "rows/s",
                peer: connectorx.isEmpty ? nil : rows / median(connectorx.map(\.seconds)), peerName: "ConnectorX + pyarrow", target: 1_000_000),
            .init(
                name: "  CPU per row (client process)", ferry: median(ferry.map(\.cpu)) / rows * 1e6, unit: "µs",
                peer: connectorx.isEmpty ? nil : median(connectorx.map(\.cpu)) / rows * 1e6, peerName: "ConnectorX + pyarrow",
                higherIsBetter: false),
            .init(
                name: "  peak memory", ferry: median(ferry.map(\.peakMB)), unit: "MB",
                peer: connectorx.isEmpty ? nil : median(connectorx.map(\.peakMB)), peerName: "ConnectorX + pyarrow", target: 200,
                higherIsBetter: false),
        ]
        if !duckdb.isEmpty {
            figures.append(
                .init(
                    name: "PostgreSQL → Parquet (Snappy), \(options.rows) sales rows", ferry: rows / median(ferry.map(\.seconds)), unit: "rows/s",
                    peer: rows / median(duckdb.map(\.seconds)), peerName: "DuckDB postgres scanner", target: 1_000_000))
        }
        if let (ferry, pymssql) = fromSQLServer {
            let peer = "pymssql + pyarrow"
            figures += [
                .init(
                    name: "SQL Server (replaying emulator) → Parquet (Snappy), \(options.rows) sales rows",
                    ferry: rows / median(ferry.map(\.seconds)),
                    unit: "rows/s", peer: pymssql.isEmpty ? nil : rows / median(pymssql.map(\.seconds)), peerName: peer),
                .init(
                    name: "  CPU per row (client process)", ferry: median(ferry.map(\.cpu)) / rows * 1e6, unit: "µs",
                    peer: pymssql.isEmpty ? nil : median(pymssql.map(\.cpu)) / rows * 1e6, peerName: peer, higherIsBetter: false),
                .init(
                    name: "  peak memory", ferry: median(ferry.map(\.peakMB)), unit: "MB",
                    peer: pymssql.isEmpty ? nil : median(pymssql.map(\.peakMB)), peerName: peer, target: 200, higherIsBetter: false),
            ]
        }
        return figures
    }

    /// SQL Server → Parquet: the same table served by the TDS emulator in its own process, replaying from memory what
    /// it served once (so the rates are the clients', where the live emulator would cap both). One unmeasured run of
    /// each fills the replay; then `rounds` of `ferry extract` and of pymssql + pyarrow.
    private func sqlServerRounds(
        postgres: PostgresInstance, schema: String, work: String, progress: @escaping @Sendable (String) -> Void
    ) throws -> (ferry: [Run], pymssql: [Run]) {
        let emulator = try TDSEmulatorProcess.start(postgres: postgres.endpoint, schema: schema, replay: true)
        defer { emulator.stop() }
        let query = "SELECT * FROM [VW_VENTAS_SYNC]"
        try query.write(toFile: work + "/queries/sales_mssql.sql", atomically: true, encoding: .utf8)
        let environment = [
            "MSSQL_HOST": "127.0.0.1", "MSSQL_PORT": "\(emulator.port)", "MSSQL_DATABASE": "ventas", "MSSQL_USER": "ferry",
            "MSSQL_PASSWORD": "s3cret",
        ]
        let ferryArguments = [
            "extract", "--query", "sales_mssql", "--destination", work + "/ferry", "--overwrite", "--queries-path", work + "/queries", "--json",
        ]
        let peerArguments = [
            options.script, "pymssql", "127.0.0.1", "\(emulator.port)", "ferry", "s3cret", "ventas", query, work + "/pymssql.parquet",
        ]
        progress("SQL Server: filling the replaying emulator")
        _ = try Self.timed(options.executable, ferryArguments, environment: environment, directory: work)
        if !options.skipPeers { _ = try Self.timed("/usr/bin/python3", peerArguments, environment: [:], directory: nil) }
        var ferry: [Run] = []
        var pymssql: [Run] = []
        for round in 1...options.rounds {
            progress("round \(round): ferry extract from SQL Server")
            ferry.append(try Self.timed(options.executable, ferryArguments, environment: environment, directory: work))
            guard !options.skipPeers else { continue }
            progress("round \(round): pymssql + pyarrow")
            pymssql.append(try Self.timed("/usr/bin/python3", peerArguments, environment: [:], directory: nil))
        }
        return (ferry, pymssql)
    }

    /// Runs `executable` under /usr/bin/time: wall seconds, user+system CPU seconds, peak resident MB.
    static func timed(_ executable: String, _ arguments: [String], environment: [String: String], directory: String?) throws -> Run {
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-bench-time-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: report) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        process.arguments = ["-f", "%e %U %S %M", "-o", report, executable] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let fields = ((try? String(contentsOfFile: report, encoding: .utf8)) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
            .compactMap { Double($0) }
        guard process.terminationStatus == 0, fields.count >= 4 else {
            throw FerryError(
                .server,
                "\(URL(fileURLWithPath: executable).lastPathComponent) \(arguments.first ?? "") failed: \(String(decoding: stderr, as: UTF8.self).suffix(400))",
                fix: "install the peers (`scripts/setup.sh bench`), or pass --skip-peers")
        }
        return Run(seconds: fields[0], cpu: fields[1] + fields[2], peakMB: fields[3] / 1024)
    }
}
