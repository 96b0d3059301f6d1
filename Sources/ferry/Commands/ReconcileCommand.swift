import ArgumentParser
import FerryCore
import FerryDaemon
import FerryRedis
import FerrySync
import Logging

/// `ferry reconcile PIPELINE [--repair]`.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare a pipeline's source and mirror by key ranges with checksums; with --repair, fix the mirror.",
        discussion: """
            Prints the keys missing from the mirror, different, or no longer in the source. --repair applies missing and different rows again from the source and soft-deletes rows gone from it (deleted_at is set; companion rows stay). Exits 1 when differences remain.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The pipeline's name.")
    var pipeline: String

    @Flag(help: "Repair the differences found.")
    var repair = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let loaded = try options.load()
        let pipeline = try PipelineLookup.find(self.pipeline, in: loaded.configuration)
        let logger = Logger(label: "ferry.reconcile")
        let redis = try PipelineLookup.redisClient(loaded.configuration, logger: logger)
        let report: Reconciler.Report
        do {
            report = try await Reconciler(pipeline, configuration: loaded.configuration, redis: redis, logger: logger).run(repair: repair)
        } catch {
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
        if json {
            func keys(_ list: [[String]]) -> String {
                "[" + list.prefix(1000).map { "[" + $0.map(JSONText.string).joined(separator: ",") + "]" }.joined(separator: ",") + "]"
            }
            Terminal.print(
                "{\"pipeline\":\(JSONText.string(pipeline.name)),\"differences\":\(report.differences),\"missing\":\(keys(report.missing)),"
                    + "\"different\":\(keys(report.different)),\"extra\":\(keys(report.extra)),\"source_rows\":\(report.sourceRows),"
                    + "\"mirror_rows\":\(report.mirrorRows),\"ranges\":\(report.rangesCompared),\"repaired\":\(report.repaired),\"soft_deleted\":\(report.softDeleted),"
                    + "\"backfill_in_progress\":\(report.backfill.map { "{\"columns\":[\($0.columns.map(JSONText.string).joined(separator: ","))],\"rows\":\($0.rows),\"estimated_total\":\($0.total.map(String.init) ?? "null")}" } ?? "null")}"
            )
        } else {
            Terminal.print(Self.text(report, pipeline: pipeline.name, repaired: repair))
        }
        if report.differences > 0 && !repair { throw ExitCode(1) }
    }

    static func text(_ report: Reconciler.Report, pipeline: String, repaired: Bool) -> String {
        var lines = [
            "\(pipeline): compared \(ProgressBar.grouped(report.sourceRows)) source rows with \(ProgressBar.grouped(report.mirrorRows)) mirror rows in \(report.rangesCompared) key ranges"
        ]
        if report.differences == 0 {
            lines.append(Terminal.paint("0 differences", .green))
            return lines.joined(separator: "\n")
        }
        func sample(_ keys: [[String]]) -> String {
            let shown = keys.prefix(10).map { $0.joined(separator: "/") }.joined(separator: ", ")
            return keys.count > 10 ? shown + ", …" : shown
        }
        if !report.missing.isEmpty { lines.append("missing from the mirror: \(report.missing.count) (\(sample(report.missing)))") }
        if !report.different.isEmpty { lines.append("different: \(report.different.count) (\(sample(report.different)))") }
        if !report.extra.isEmpty { lines.append("gone from the source: \(report.extra.count) (\(sample(report.extra)))") }
        if let backfill = report.backfill, !report.different.isEmpty {
            let total = backfill.total.map { " of about \(ProgressBar.grouped(Int($0)))" } ?? ""
            lines.append(
                "a backfill of new column(s) \(backfill.columns.joined(separator: ", ")) is under way (\(ProgressBar.grouped(Int(backfill.rows)))\(total) rows queued): rows it has not reached yet differ in those columns until it gets there; `ferry status` shows its progress"
            )
        }
        if repaired {
            lines.append(Terminal.paint("repaired: \(report.repaired) rows applied again, \(report.softDeleted) soft-deleted", .green))
        } else {
            lines.append("run with --repair to fix them")
        }
        return lines.joined(separator: "\n")
    }
}
