import ArgumentParser
import FerryBench
import FerryCore
import FerrySandbox
import Foundation
import Logging

extension BenchCommand {
    struct Extract: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "extract",
            abstract:
                "PostgreSQL and SQL Server → Parquet of the sales table, beside ConnectorX, DuckDB and pymssql with pyarrow.",
            discussion: """
                Starts its own sandbox under .ferry/bench/extract, fills a VW_VENTAS_SYNC-shaped table with --rows rows, then per round runs `ferry extract` (this binary), ConnectorX + pyarrow and DuckDB's postgres scanner (Benchmarks/python/extract_parquet.py; `scripts/setup.sh bench` installs them and DuckDB's extension) on the whole table, each as its own process under /usr/bin/time: rows/s, CPU per row and peak memory. Then the same table from SQL Server: the TDS emulator in a process of its own, replaying from memory what it served once (so the figures are the clients'), read by `ferry extract` and by pymssql + pyarrow. Run it from the repository's root with a release build: make release && .build/release/ferry bench extract
                """
        )

        @Option(help: "Rows in the sales table.")
        var rows = 1_000_000

        @Option(help: "Rounds; the median of each figure is reported.")
        var rounds = 3

        @OptionGroup var server: BenchPostgresSettings

        @Flag(name: [.customLong("skip-peers"), .customLong("skip-peer")], help: "Measure Ferry only.")
        var skipPeers = false

        @Flag(help: "Skip SQL Server → Parquet (a replaying TDS emulator, beside pymssql + pyarrow).")
        var skipSQLServer = false

        @Flag(help: "Print the figures as JSON.")
        var json = false

        func validate() throws {
            guard (1_000...100_000_000).contains(rows) else { throw ValidationError("--rows: 1000–100000000") }
            guard (1...100).contains(rounds) else { throw ValidationError("--rounds: 1–100") }
        }

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            let logger = Logger(label: "ferry.bench")
            var options = ExtractBenchmark.Options(executable: AgentCommand.executablePath)
            options.rows = rows
            options.rounds = rounds
            options.skipPeers = skipPeers
            options.sqlserver = !skipSQLServer
            let quiet = json
            let figures = try await Sandbox.with(root: ".ferry/bench/extract", options: server.sandboxOptions(), logger: logger) { sandbox in
                try await ExtractBenchmark(options: options, logger: logger).run(on: sandbox) { message in
                    if !quiet { Terminal.writeStandardError(message + "\n") }
                }
            }
            BenchReport.printFigures(figures, json: json)
        }
    }
}
