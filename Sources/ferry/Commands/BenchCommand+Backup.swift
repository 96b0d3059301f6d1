import ArgumentParser
import FerryBench
import FerryCore
import FerrySandbox
import Foundation
import Logging

extension BenchCommand {
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backup",
            abstract: "Base backups beside pgBackRest: full backup time, incremental after pgbench (bytes stored, time), restore to latest.",
            discussion: """
                Starts its own PostgreSQL 15 under .ferry/bench/backup whose archive_command archives every WAL segment with both `ferry wal push` and `pgbackrest archive-push` (Debian's pgbackrest, installed by `scripts/setup.sh bench`), fills it with `pgbench -i -s SCALE`, then per round: full backups with each compression (zstd, lz4) by both tools, an incremental by each after `pgbench -T 10 -c 2` (zstd), and a restore to the latest WAL by each, timed until the restored server is promoted and answers. Each parallelism in --workers is measured with the same value for both tools (pgBackRest's process-max, Ferry's --workers). Rounds alternate which tool goes first. Run it from the repository's root with a release build: make release && .build/release/ferry bench backup
                """
        )

        @Option(help: "pgbench scale (100: about 1.5 GB of data).")
        var scale = 100

        @Option(help: "Rounds; the median of each figure and of the per-round ratios is reported.")
        var rounds = 2

        @Option(help: ArgumentHelp("Parallelism measured, the same for both tools (repeatable; default 1 and 2).", valueName: "n"))
        var workers: [Int] = [1, 2]

        @Option(name: .customLong("pgbench-seconds"), help: "Seconds of pgbench (2 clients) before each incremental.")
        var pgbenchSeconds = 10

        @Option(help: ArgumentHelp("pgBackRest's executable.", valueName: "path"))
        var pgbackrest = "/usr/bin/pgbackrest"

        @OptionGroup var server: BenchPostgresSettings

        @Flag(name: [.customLong("skip-peer"), .customLong("skip-peers")], help: "Measure Ferry only.")
        var skipPeer = false

        @Flag(help: "Print the figures as JSON.")
        var json = false

        func validate() throws {
            guard (1...100_000).contains(scale) else { throw ValidationError("--scale: 1–100000") }
            guard (1...100).contains(rounds) else { throw ValidationError("--rounds: 1–100") }
            guard !workers.isEmpty, workers.allSatisfy({ (1...64).contains($0) }) else { throw ValidationError("--workers: 1–64") }
            guard (1...3600).contains(pgbenchSeconds) else { throw ValidationError("--pgbench-seconds: 1–3600") }
        }

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            var options = BackupBenchmark.Options(executable: AgentCommand.executablePath)
            options.scale = scale
            options.rounds = rounds
            options.workers = workers
            options.pgbenchSeconds = pgbenchSeconds
            options.pgbackrest = pgbackrest
            options.skipPeer = skipPeer
            options.postgresSettings = server.sandboxOptions().postgresSettings
            let quiet = json
            let figures = try await BackupBenchmark(options: options, logger: Logger(label: "ferry.bench")).run(root: ".ferry/bench/backup") {
                message in
                if !quiet { Terminal.writeStandardError(message + "\n") }
            }
            Terminal.print(json ? BenchReport.json(figures) : BenchReport.table(figures))
        }
    }
}
