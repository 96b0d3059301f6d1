import ArgumentParser
import FerryBench
import FerryCluster
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging

/// `ferry bench …`: measurements of Ferry beside a peer tool, on sandbox servers, in one run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Ferry against peer tools on private sandbox servers (use a release build).",
        subcommands: [Redis.self, Sync.self, RedisSync.self, SQLServer.self, HA.self, Backup.self, Extract.self, API.self, TDSEmulatorServer.self]
    )

    /// The TDS emulator in its own process, for `ferry bench sqlserver` (hidden: not a user command).
    struct TDSEmulatorServer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tds-emulator", abstract: "Serve the test tree's TDS emulator until standard input closes (for ferry bench sqlserver).",
            shouldDisplay: false)

        func run() async throws {
            try await TDSEmulatorProcess.serve(logger: Logger(label: "ferry.bench.tds"))
        }
    }

    struct Redis: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ferry's Redis client against redis-benchmark: pipelined SET/XADD throughput, round-trip latency."
        )

        @Option(help: "Commands per throughput measurement.")
        var requests = 1_000_000

        @Option(help: "Commands per pipeline batch.")
        var pipeline = 64

        @Option(help: "Round trips per latency measurement.")
        var latencyRequests = 100_000

        @Option(help: "Rounds; the median of each figure is reported.")
        var rounds = 3

        @Flag(help: "Print the figures as JSON.")
        var json = false

        @Flag(help: ArgumentHelp("Measure Ferry only, for profiling.", visibility: .hidden))
        var skipPeer = false

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            var options = RedisBenchmark.Options()
            options.requests = requests
            options.pipeline = pipeline
            options.latencyRequests = latencyRequests
            options.rounds = rounds
            options.skipPeer = skipPeer
            let logger = Logger(label: "ferry.bench")
            var sandboxOptions = Sandbox.Options()
            sandboxOptions.postgres = false
            let quiet = json
            let figures = try await Sandbox.with(root: ".ferry/bench/redis", options: sandboxOptions, logger: logger) { sandbox in
                try await RedisBenchmark(options: options, logger: logger).run(on: sandbox.redis!) { message in
                    if !quiet { Terminal.writeStandardError(message + "\n") }
                }
            }
            Terminal.print(json ? BenchReport.json(figures) : BenchReport.table(figures))
        }
    }
}

extension BenchCommand {
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The table sync end to end: initial load, update pass, steady-state latency, memory; beside raw COPY and the original Python.",
            discussion: """
                Starts its own sandbox under .ferry/bench/sync, generates a source shaped like VW_VENTAS_SYNC and syncs it (with the seed's companion table) source → Redis → mirror. Peers in the same run: raw `psql \\copy` into an indexed table, and the original design in Python (Benchmarks/python/original_sync.py; needs python3-redis and python3-psycopg2). Run it from the repository's root with a release build: make release && .build/release/ferry bench sync
                """
        )

        @Option(help: "Source rows.")
        var rows = 1_000_000

        @Option(help: "Rows for the Python peer (it runs at a few thousand rows/s).")
        var pythonRows = 100_000

        @Option(help: "Changes per second in the steady state.")
        var steadyRate = 10_000

        @Option(help: "Seconds of steady state measured (after a 3-second warm-up).")
        var steadySeconds = 20

        @Option(help: "Consumers.")
        var consumers = 2

        @Option(help: "The pipeline's source.lookback.")
        var lookback = "30s"

        @Option(help: "The pipeline's poll interval (SYNC_INTERVAL): 10ms, as a pipeline that should keep up within milliseconds is run.")
        var interval = "10ms"

        @Option(
            help:
                "Steady state: the writer commits one transaction of rate × tick changes every tick (10ms: 100 changes at a time, as many small transactions make them; 100ms: bursts of 1,000)."
        )
        var tick = "10ms"

        @OptionGroup var server: BenchPostgresSettings

        @OptionGroup var output: BenchPeersAndOutput

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            var options = SyncBenchmark.Options()
            options.rows = rows
            options.pythonRows = pythonRows
            options.steadyRate = steadyRate
            options.steadySeconds = steadySeconds
            options.consumers = consumers
            options.skipPeers = output.skipPeers
            guard let lookback = DurationParser.parse(lookback) else {
                throw ValidationError("--lookback: \"\(lookback)\" is not a duration like 30s")
            }
            options.lookback = lookback
            guard let interval = DurationParser.parse(interval), let tick = DurationParser.parse(tick) else {
                throw ValidationError("--interval and --tick take durations like 50ms")
            }
            options.interval = interval
            options.tick = tick
            let logger = Logger(label: "ferry.bench")
            let quiet = output.json
            let sandboxOptions = server.sandboxOptions()
            let figures = try await Sandbox.with(root: ".ferry/bench/sync", options: sandboxOptions, logger: logger) { sandbox in
                try await SyncBenchmark(options: options, logger: logger).run(on: sandbox) { message in
                    if !quiet { Terminal.writeStandardError(message + "\n") }
                }
            }
            BenchReport.printFigures(figures, json: output.json)
        }
    }
}

/// `--postgres-setting`, for the benchmarks that start their own PostgreSQL.
struct BenchPostgresSettings: ParsableArguments {
    @Option(
        name: .customLong("postgres-setting"),
        help: ArgumentHelp(
            "A postgresql.conf setting for the benchmark's server, as name=value (repeatable). The server runs with shared_buffers="
                + sharedBuffers + ", as a server sized for its machine would (PostgreSQL's own default is 128MB), unless this sets it."))
    var postgresSettings: [String] = []

    /// The benchmark servers' `shared_buffers`: a million-row mirror, its source and their indexes do not fit in
    /// PostgreSQL's default of 128MB (update pass of 1M rows: 58k rows/s at 128MB, 70k at 1GB).
    static let sharedBuffers = "1GB"

    func validate() throws {
        for setting in postgresSettings where setting.split(separator: "=", maxSplits: 1).count != 2 {
            throw ValidationError("--postgres-setting: \"\(setting)\" is not name=value (e.g. shared_buffers=1GB)")
        }
    }

    /// Sandbox options with these settings.
    func sandboxOptions() -> Sandbox.Options {
        var options = Sandbox.Options()
        options.postgresSettings["shared_buffers"] = Self.sharedBuffers
        for setting in postgresSettings {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { options.postgresSettings[parts[0]] = parts[1] }
        }
        return options
    }
}

/// `--skip-peers` and `--json`, shared by the benchmarks that measure a peer tool.
struct BenchPeersAndOutput: ParsableArguments {
    @Flag(help: "Measure Ferry only.")
    var skipPeers = false

    @Flag(help: "Print the figures as JSON.")
    var json = false
}

/// Prints benchmark figures.
enum BenchReport {
    static func table(_ figures: [BenchmarkFigure]) -> String {
        var table = TextTable(["FIGURE", "FERRY", "PEER", "RATIO", "TARGET"])
        for figure in figures {
            let target = figure.target.map { (figure.higherIsBetter ? "≥ " : "≤ ") + String(format: "%.2f", $0) } ?? "-"
            let verdict = figure.meetsTarget.map { $0 ? Terminal.paint(" met", .green) : Terminal.paint(" missed", .red) } ?? ""
            table.add([
                figure.name, format(figure.ferry, figure.unit), format(figure.peer, figure.unit) + " (\(figure.peerName))",
                String(format: "%.2f", figure.ratio), target + verdict,
            ])
        }
        return table.render()
    }

    static func json(_ figures: [BenchmarkFigure]) -> String {
        let items = figures.map { figure in
            "{\"name\":\(JSONText.string(figure.name)),\"unit\":\(JSONText.string(figure.unit)),\"ferry\":\(figure.ferry),\"peer\":\(figure.peer),"
                + "\"peer_name\":\(JSONText.string(figure.peerName)),\"ratio\":\(figure.ratio),\"target\":\(figure.target.map { "\($0)" } ?? "null"),"
                + "\"met\":\(figure.meetsTarget.map { "\($0)" } ?? "null")}"
        }
        return "[" + items.joined(separator: ",") + "]"
    }

    static func format(_ value: Double, _ unit: String) -> String {
        switch unit {
        case "ms": String(format: "%.3f ms", value)
        case "µs": String(format: "%.1f µs", value)
        case "s": String(format: "%.2f s", value)
        case "MB": String(format: "%.1f MB", value)
        default: ProgressBar.grouped(Int(value.rounded())) + " " + unit
        }
    }
}

extension BenchReport {
    /// Prints sync benchmark figures as a table or JSON.
    static func printFigures(_ figures: [SyncBenchmark.Figure], json: Bool) {
        if json {
            let items = figures.map { figure in
                "{\"name\":\(JSONText.string(figure.name)),\"unit\":\(JSONText.string(figure.unit)),\"ferry\":\(figure.ferry),"
                    + "\"peer\":\(figure.peer.map { "\($0)" } ?? "null"),\"peer_name\":\(figure.peerName.map(JSONText.string) ?? "null"),"
                    + "\"ratio\":\(figure.ratio.map { "\($0)" } ?? "null"),\"target\":\(figure.target.map { "\($0)" } ?? "null"),"
                    + "\"met\":\(figure.met.map { "\($0)" } ?? "null")}"
            }
            Terminal.print("[" + items.joined(separator: ",") + "]")
            return
        }
        var table = TextTable(["FIGURE", "FERRY", "PEER", "RATIO", "TARGET"])
        for figure in figures {
            let target =
                figure.target.map { (figure.higherIsBetter ? "≥ " : "≤ ") + BenchReport.format($0, figure.unit) } ?? "-"
            let verdict = figure.met.map { $0 ? Terminal.paint(" met", .green) : Terminal.paint(" missed", .red) } ?? ""
            table.add([
                figure.name, BenchReport.format(figure.ferry, figure.unit),
                figure.peer.map { BenchReport.format($0, figure.unit) + " (\(figure.peerName ?? ""))" } ?? "-",
                figure.ratio.map { String(format: "%.2f", $0) } ?? "-", target + verdict,
            ])
        }
        Terminal.print(table.render())
    }
}

extension BenchCommand {
    struct RedisSync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redis-sync",
            abstract: "The Redis → PostgreSQL sync: 1,000,000 stream entries and 1,000,000 keys, beside redis-py + psycopg2.",
            discussion:
                "Starts its own sandbox under .ferry/bench/redis-sync, writes stream entries of 5 fields and keys of mixed types (60% strings, 10% each hash, list, set, sorted set), and times one `ferry redis sync --once` pass over each. The peer in the same run is Benchmarks/python/redis_pg_sync.py (needs python3-redis and python3-psycopg2). Run it from the repository's root with a release build: make release && .build/release/ferry bench redis-sync"
        )

        @Option(help: "Stream entries.")
        var entries = 1_000_000

        @Option(help: "Keys.")
        var keys = 1_000_000

        @Option(help: "Entries and keys for the Python peer.")
        var pythonCount = 200_000

        @Option(help: "Stream consumers (redis_sync.streams.consumers).")
        var consumers = RedisSyncBenchmark.Options().consumers

        @OptionGroup var server: BenchPostgresSettings

        @OptionGroup var output: BenchPeersAndOutput

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            var options = RedisSyncBenchmark.Options()
            options.entries = entries
            options.keys = keys
            options.pythonEntries = pythonCount
            options.pythonKeys = pythonCount
            options.skipPeers = output.skipPeers
            options.consumers = consumers
            let logger = Logger(label: "ferry.bench")
            let quiet = output.json
            let sandboxOptions = server.sandboxOptions()
            let figures = try await Sandbox.with(root: ".ferry/bench/redis-sync", options: sandboxOptions, logger: logger) { sandbox in
                try await RedisSyncBenchmark(options: options, logger: logger).run(on: sandbox) { message in
                    if !quiet { Terminal.writeStandardError(message + "\n") }
                }
            }
            BenchReport.printFigures(figures, json: output.json)
        }
    }
}

extension BenchCommand {
    struct SQLServer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sqlserver",
            abstract: "Reading the 1,000,000-row sales view through TDS, and writing with bulk copy: Ferry beside pymssql and python-tds.",
            discussion:
                "Starts its own sandbox under .ferry/bench/sqlserver, fills a VW_VENTAS_SYNC-shaped table and serves it through the TDS emulator (SQL Server cannot run here). Ferry's SQL Server client (FreeTDS's DB-Library) reads every row as COPY text; the peers in the same run read it with Benchmarks/python/tds_read.py: pymssql (the same FreeTDS underneath) and python-tds (`scripts/setup.sh bench` installs both). The emulator alone (a reader that discards the bytes) shows whether it limits the rate. Then writes: --write-rows rows into an empty table with Ferry's SQL Server target (bulk copy in one transaction) beside python-tds's bulk copy (copy_to) and pymssql's executemany (a tenth of the rows; Benchmarks/python/tds_write.py). Run it from the repository's root with a release build: make release && .build/release/ferry bench sqlserver"
        )

        @Option(help: "Rows in the view.")
        var rows = 1_000_000

        @Option(help: "Rows written into an empty table by the SQL Server target and its peers (0: no writes).")
        var writeRows = 100_000

        @Flag(help: "Skip the table sync's full loads (SQL Server source vs PostgreSQL source).")
        var skipFullLoads = false

        @OptionGroup var server: BenchPostgresSettings

        @OptionGroup var output: BenchPeersAndOutput

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            var options = SQLServerBenchmark.Options()
            options.rows = rows
            options.writeRows = max(0, writeRows)
            options.fullLoads = !skipFullLoads
            options.skipPeers = output.skipPeers
            let logger = Logger(label: "ferry.bench")
            let quiet = output.json
            let figures = try await Sandbox.with(root: ".ferry/bench/sqlserver", options: server.sandboxOptions(), logger: logger) { sandbox in
                try await SQLServerBenchmark(options: options, logger: logger).run(on: sandbox) { message in
                    if !quiet { Terminal.writeStandardError(message + "\n") }
                }
            }
            BenchReport.printFigures(figures, json: output.json)
        }
    }

    struct HA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ha",
            abstract: "PostgreSQL HA beside Patroni: switchover, crash → writable and rejoin times over several runs, lag under pgbench.",
            discussion:
                "Starts its own etcd under .ferry/bench/ha, then two PostgreSQL 15 nodes managed by Ferry's agents (`ferry agent` processes, watchdog on), then the same with Debian's Patroni (its defaults, then tuned), on the same etcd and binaries. Each run: a planned switchover (request → the standby takes a write), kill -9 of the primary's agent and postmaster (→ the standby takes a write), and the crashed node's return (restart → it streams from the new primary). Then pgbench on the primary while pg_stat_replication is sampled every 50 ms. Reports the median and the maximum, and the ratio of the medians."
        )

        @Option(help: "Runs per tool (the median and the maximum are reported).")
        var runs = 5

        @Option(help: "Ferry's leader lease in seconds.")
        var ttl = 3

        @OptionGroup var output: BenchPeersAndOutput

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            var options = HABenchmark.Options(executable: AgentCommand.executablePath)
            options.runs = max(1, runs)
            options.ferryTTL = ttl
            options.skipPeers = output.skipPeers
            let logger = Logger(label: "ferry.bench")
            let quiet = output.json
            var sandboxOptions = Sandbox.Options()
            sandboxOptions.postgres = false
            sandboxOptions.redis = false
            sandboxOptions.etcd = true
            let results = try await Sandbox.with(root: ".ferry/bench/ha", options: sandboxOptions, logger: logger) { sandbox in
                try await HABenchmark(options: options, logger: logger).run(root: ".ferry/bench/ha", etcd: sandbox.etcd!) { message in
                    if !quiet { Terminal.writeStandardError(message + "\n") }
                }
            }
            Terminal.print(output.json ? Self.json(results) : Self.table(results))
        }

        static func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }

        static let measures: [(name: String, values: @Sendable (HABenchmark.Timings) -> [Double], target: Double)] = [
            ("switchover", { $0.switchover }, 1), ("crash → writable", { $0.crashToWritable }, 5), ("rejoin (restart → streaming)", { $0.rejoin }, 3),
        ]

        static func table(_ results: [HABenchmark.Timings]) -> String {
            guard let ferry = results.first else { return "" }
            var table = TextTable(["FIGURE", "TOOL", "MEDIAN", "MAX", "RUNS", "FERRY ÷ TOOL (MEDIANS)", "TARGET"])
            for measure in measures {
                let ferryMedian = median(measure.values(ferry))
                for timings in results {
                    let values = measure.values(timings)
                    let isFerry = timings.tool == ferry.tool
                    let verdict =
                        isFerry
                        ? "≤ \(Int(measure.target)) s"
                            + (ferryMedian <= measure.target ? Terminal.paint(" met", .green) : Terminal.paint(" missed", .red)) : "-"
                    table.add([
                        measure.name, timings.tool, String(format: "%.2f s", median(values)), String(format: "%.2f s", values.max() ?? 0),
                        "\(values.count)",
                        isFerry ? "-" : String(format: "%.2f", ferryMedian / max(median(values), 0.001)), verdict,
                    ])
                }
            }
            for timings in results {
                table.add([
                    "lag p95 under pgbench", timings.tool, timings.lagP95Bytes.map { String(format: "%.0f B", $0) } ?? "-",
                    timings.lagP95Seconds.map { String(format: "%.4f s", $0) } ?? "-", "1", "-", "-",
                ])
            }
            return table.render()
        }

        static func json(_ results: [HABenchmark.Timings]) -> String {
            let items = results.map { timings in
                "{\"tool\":\(JSONText.string(timings.tool)),"
                    + measures.map { measure in
                        let values = measure.values(timings)
                        return
                            "\(JSONText.string(measure.name)):{\"median\":\(median(values)),\"max\":\(values.max() ?? 0),\"runs\":[\(values.map { "\($0)" }.joined(separator: ","))]}"
                    }.joined(separator: ",") + ",\"lag_p95_bytes\":\(timings.lagP95Bytes ?? 0),\"lag_p95_seconds\":\(timings.lagP95Seconds ?? 0)}"
            }
            return "[" + items.joined(separator: ",") + "]"
        }
    }
}
