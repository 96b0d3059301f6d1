import ArgumentParser
import FerryCore
import FerryDaemon
import FerryRedis
import FerrySync
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry pipeline reset|drop NAME`.
struct PipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Start a table sync pipeline over, or remove what Ferry keeps for it.",
        subcommands: [Reset.self, Drop.self]
    )

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a pipeline over: its next run reads the whole source again.",
            discussion: """
                Deletes the pipeline's queue, checkpoint and schemas in Redis and its rows of ferry_pipelines and ferry_applied \
                (recorded in ferry_pipeline_events). The mirror and the companion table are kept, with every edit: the next run \
                applies every source row again as a new version; `ferry reconcile NAME --repair` then soft-deletes rows no longer \
                at the source. --drop-tables drops the mirror and the companion too (their rows are lost). Stop the pipeline first.
                """
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The pipeline's name.") var pipeline: String
        @Flag(help: "Do not ask for confirmation (scripts).") var yes = false
        @Flag(name: .customLong("drop-tables"), help: "Also drop the mirror and the companion table, losing their rows and edits.")
        var dropTables = false
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await PipelineCommand.perform(
                options: options, name: pipeline, drop: false, dropTables: dropTables, yes: yes, json: json)
        }
    }

    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a pipeline's queue, state, dead letters, mirror and companion table.",
            discussion: "Everything Ferry keeps for the pipeline goes, tables included; remove it from ferry.yaml afterwards. Stop it first."
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The pipeline's name.") var pipeline: String
        @Flag(help: "Do not ask for confirmation (scripts).") var yes = false
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await PipelineCommand.perform(options: options, name: pipeline, drop: true, dropTables: true, yes: yes, json: json)
        }
    }

    static func perform(options: GlobalOptions, name: String, drop: Bool, dropTables: Bool, yes: Bool, json: Bool) async throws {
        let loaded = try options.load()
        let pipeline = try PipelineLookup.find(name, in: loaded.configuration)
        let logger = Logger(label: "ferry.pipeline")
        let redis = try PipelineLookup.redisClient(loaded.configuration, logger: logger)
        do {
            let reset = try PipelineReset(pipeline, configuration: loaded.configuration, redis: redis, logger: logger)
            try await reset.ensureStopped()
            if !yes {
                let what =
                    drop
                    ? "drop pipeline \(name): its queue, state, dead letters and the tables \(reset.tables.joined(separator: ", ")) with every row"
                    : "reset pipeline \(name): delete its queue and checkpoint so the next run reads the whole source again"
                        + (dropTables ? ", and drop \(reset.tables.joined(separator: ", ")) with every row" : " (the mirror and companion are kept)")
                guard isatty(0) == 1 else {
                    throw FerryError(
                        .conflict, "refusing to \(what) without confirmation: there is no terminal to ask on", fix: "add --yes to confirm in a script"
                    )
                }
                Terminal.writeStandardError("This will \(what).\nType the pipeline's name to confirm: ")
                guard readLine()?.trimmingCharacters(in: .whitespaces) == name else {
                    throw FerryError(.cancelled, "not confirmed; nothing was changed", fix: "type the pipeline's name exactly, or pass --yes")
                }
            }
            let outcome = try await reset.reset(dropTables: dropTables, forget: drop)
            await redis.shutdown()
            if json {
                Terminal.print(
                    "{\"pipeline\":\(JSONText.string(name)),\"action\":\(JSONText.string(drop ? "drop" : "reset")),\"redis_keys_deleted\":\(outcome.redisKeys),"
                        + "\"tables_dropped\":[\(outcome.droppedTables.map(JSONText.string).joined(separator: ","))]}")
            } else {
                Terminal.print(
                    drop
                        ? "\(name): dropped (\(outcome.redisKeys) Redis keys, tables \(outcome.droppedTables.joined(separator: ", "))); remove it from the configuration"
                        : "\(name): reset (\(outcome.redisKeys) Redis keys deleted\(dropTables ? ", tables dropped" : "")); the next run reads the whole source again"
                )
            }
        } catch {
            await redis.shutdown()
            throw error
        }
    }
}
