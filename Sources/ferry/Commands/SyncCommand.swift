import ArgumentParser
import FerryCore
import FerryDaemon
import FerryRedis
import FerrySync
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `ferry sync PIPELINE [--once]`.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Run one pipeline: with --once, catch up with the source, drain the queue into the mirror and exit.",
        discussion: """
            Without --once the pipeline runs until SIGTERM/SIGINT, like `ferry run` does for every pipeline.

            Exit status with --once: 0 when every row was applied, 3 when it finished but rows went to the dead letters \
            (how many and where are printed, and in --json), 2 for a configuration error, 1 for any other error.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The pipeline's name (pipelines[].name).")
    var pipeline: String

    @Flag(help: "Catch up once and exit.")
    var once = false

    @Flag(name: .customLong("allow-unsafe-redis"), help: "Run even when Redis could evict or lose queued rows.")
    var allowUnsafeRedis = false

    @Flag(help: "Print the result as JSON (no progress bar).")
    var json = false

    @Option(
        name: .customLong("skip-entry"),
        help: ArgumentHelp(
            "Before syncing, take this queue entry out of the way (repeatable): its rows are read again from the source when the mirror takes them, else left for `reconcile --repair`; recorded in ferry_pipeline_events.",
            valueName: "id"))
    var skipEntries: [String] = []

    @Flag(name: .shortAndLong, help: "No progress lines (by default a bar on a terminal, a plain line every 5 seconds otherwise).")
    var quiet = false

    /// `--once` finished but moved rows to the dead letters.
    static let deadLetteredExitCode: Int32 = 3

    func run() async throws {
        let loaded = try options.load()
        let pipeline = try PipelineLookup.find(self.pipeline, in: loaded.configuration)
        let logger = Logger(label: "ferry.sync")
        let redis = try PipelineLookup.redisClient(loaded.configuration, logger: logger)
        let bar = ProgressBar(quiet: quiet)
        var syncOptions = TableSyncPipeline.Options()
        syncOptions.allowUnsafeRedis = allowUnsafeRedis
        if !json { syncOptions.progress = { bar.update($0) } }
        let runner = try TableSyncPipeline(pipeline, configuration: loaded.configuration, redis: redis, options: syncOptions, logger: logger)
        do {
            for skipped in try await runner.skip(entries: skipEntries) {
                let what =
                    skipped.readAgain.map { "\($0) rows read again from the source" }
                    ?? "not read again: the mirror cannot take the source's schema yet; run `ferry reconcile \(pipeline.name) --repair` once it can"
                Terminal.writeStandardError("\(pipeline.name): skipped entry \(skipped.id) (\(skipped.keys) keys, \(what))\n")
            }
            if once {
                let clock = ContinuousClock()
                let start = clock.now
                let (produced, applied) = try await runner.runOnce()
                let elapsed = clock.now - start
                bar.finish()
                let rate = elapsed.seconds > 0 ? Double(applied) / elapsed.seconds : 0
                let deadLettered = runner.progress.deadLettered
                let look =
                    "SELECT * FROM \(runner.deadLetterTable) WHERE pipeline = '\(pipeline.name.replacingOccurrences(of: "'", with: "''"))' ORDER BY id DESC"
                if json {
                    Terminal.print(
                        "{\"pipeline\":\(JSONText.string(pipeline.name)),\"queued\":\(produced),\"applied\":\(applied),\"dead_lettered\":\(deadLettered),"
                            + "\"dead_letters\":\(JSONText.string(runner.deadLetterTable)),\"seconds\":\(elapsed.seconds),\"rows_per_second\":\(Int(rate))}"
                    )
                } else {
                    Terminal.print(
                        "\(pipeline.name): queued \(produced) rows, applied \(applied) in \(String(format: "%.1f", elapsed.seconds))s (\(Int(rate)) rows/s)"
                    )
                    if deadLettered > 0 {
                        Terminal.error("\(deadLettered) rows went to the dead letters (\(runner.deadLetterTable)), each with PostgreSQL's reason")
                        Terminal.hint(
                            "see them with `\(look)` (or `ferry status \(pipeline.name)`); fix the cause, then `ferry reconcile \(pipeline.name) --repair` applies them again"
                        )
                    }
                }
                if deadLettered > 0 { throw ExitCode(Self.deadLetteredExitCode) }
            } else {
                let group = ServiceGroup(
                    configuration: .init(services: [runner], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
                bar.finish()
            }
        } catch {
            bar.finish()
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
    }
}
