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
        discussion: "Without --once the pipeline runs until SIGTERM/SIGINT, like `ferry run` does for every pipeline."
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

    func run() async throws {
        let loaded = try options.load()
        let pipeline = try PipelineLookup.find(self.pipeline, in: loaded.configuration)
        let logger = Logger(label: "ferry.sync")
        let redis = try PipelineLookup.redisClient(loaded.configuration, logger: logger)
        let bar = ProgressBar()
        var syncOptions = TableSyncPipeline.Options()
        syncOptions.allowUnsafeRedis = allowUnsafeRedis
        if !json { syncOptions.progress = { bar.update($0) } }
        let runner = try TableSyncPipeline(pipeline, configuration: loaded.configuration, redis: redis, options: syncOptions, logger: logger)
        do {
            if once {
                let clock = ContinuousClock()
                let start = clock.now
                let (produced, applied) = try await runner.runOnce()
                let elapsed = clock.now - start
                bar.finish()
                let rate = elapsed.seconds > 0 ? Double(applied) / elapsed.seconds : 0
                if json {
                    Terminal.print(
                        "{\"pipeline\":\(JSONText.string(pipeline.name)),\"queued\":\(produced),\"applied\":\(applied),\"seconds\":\(elapsed.seconds),\"rows_per_second\":\(Int(rate))}"
                    )
                } else {
                    Terminal.print(
                        "\(pipeline.name): queued \(produced) rows, applied \(applied) in \(String(format: "%.1f", elapsed.seconds))s (\(Int(rate)) rows/s)"
                    )
                }
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
