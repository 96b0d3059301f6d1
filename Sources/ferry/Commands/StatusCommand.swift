import ArgumentParser
import FerryCore
import FerryDaemon
import FerryRedis
import FerrySync
import Foundation
import Logging

/// `ferry status`: every pipeline's position, queue and errors.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each pipeline's source watermark, queue length, pending entries, lag, rows/s and last error."
    )

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print the status as JSON.")
    var json = false

    func run() async throws {
        let loaded = try options.load()
        let configuration = loaded.configuration
        guard !configuration.pipelines.isEmpty else {
            throw FerryError(.configuration, "the configuration has no pipelines", fix: "add one under `pipelines:` (see examples/ventas.yaml)")
        }
        let logger = Logger(label: "ferry.status")
        let redis = try PipelineLookup.redisClient(configuration, logger: logger)
        var statuses: [PipelineStatus] = []
        for pipeline in configuration.pipelines {
            statuses.append(await PipelineStatus.collect(pipeline, configuration: configuration, redis: redis, logger: logger))
        }
        await redis.shutdown()
        Terminal.print(json ? Self.json(statuses) : Self.table(statuses))
    }

    static func table(_ statuses: [PipelineStatus]) -> String {
        var table = TextTable(["PIPELINE", "STATE", "WATERMARK", "QUEUE", "PENDING", "LAG", "APPLIED", "ROWS/S", "DEAD", "LAST ERROR"])
        var notes: [String] = []
        for status in statuses {
            let error = status.lastError.map { Terminal.paint(String($0.prefix(60)), .red) } ?? "-"
            table.add([
                status.pipeline, status.failed ? Terminal.paint("failed", .red) : "ok", status.sourceWatermark ?? "-",
                status.queueLength.map(String.init) ?? "?", status.pending.map(String.init) ?? "?",
                status.lag.map(String.init) ?? "-", status.rowsApplied.map { ProgressBar.grouped(Int($0)) } ?? "-",
                status.rowsPerSecond.map { String(Int($0)) } ?? "-", status.deadLetters.map(String.init) ?? "-", error,
            ])
            for problem in status.problems { notes.append("\(status.pipeline): \(Terminal.paint("warning:", .yellow)) \(problem)") }
            if let backfill = status.backfill {
                let columns = backfill.columns.joined(separator: ", ")
                if let finished = backfill.finishedAt {
                    notes.append(
                        "\(status.pipeline): backfill of new column(s) \(columns) queued all \(ProgressBar.grouped(Int(backfill.rows))) rows (\(ISO8601DateFormatter().string(from: finished)))"
                    )
                } else {
                    let share = backfill.total.flatMap { $0 > 0 ? " (\(min(99, Int(backfill.rows * 100 / $0)))%)" : nil } ?? ""
                    let total = backfill.total.map { " of about \(ProgressBar.grouped(Int($0)))" } ?? ""
                    notes.append(
                        "\(status.pipeline): backfilling new column(s) \(columns): \(ProgressBar.grouped(Int(backfill.rows)))\(total) rows queued\(share); until it ends, older rows show NULL there"
                    )
                }
            }
            if let lastError = status.lastError {
                let at = status.lastErrorAt.map { " (\(ISO8601DateFormatter().string(from: $0)))" } ?? ""
                notes.append("\(status.pipeline): last error\(at): \(lastError)")
            }
        }
        return table.render() + (notes.isEmpty ? "" : "\n\n" + notes.joined(separator: "\n"))
    }

    static func json(_ statuses: [PipelineStatus]) -> String {
        func number<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "null" }
        let formatter = ISO8601DateFormatter()
        let items = statuses.map { status in
            "{\"pipeline\":\(JSONText.string(status.pipeline)),\"state\":\(JSONText.string(status.failed ? "failed" : "ok")),\"source_watermark\":\(status.sourceWatermark.map(JSONText.string) ?? "null"),"
                + "\"queue_length\":\(number(status.queueLength)),\"pending\":\(number(status.pending)),\"lag\":\(number(status.lag)),"
                + "\"consumers\":\(number(status.consumers)),\"rows_produced\":\(number(status.rowsProduced)),\"rows_applied\":\(number(status.rowsApplied)),"
                + "\"rows_per_second\":\(number(status.rowsPerSecond)),\"dead_letters\":\(number(status.deadLetters)),"
                + "\"last_applied\":\(status.lastApplied.map { JSONText.string(formatter.string(from: $0)) } ?? "null"),"
                + "\"last_error\":\(status.lastError.map(JSONText.string) ?? "null"),"
                + "\"last_error_at\":\(status.lastErrorAt.map { JSONText.string(formatter.string(from: $0)) } ?? "null"),"
                + "\"backfill\":\(status.backfill.map { backfillJSON($0, formatter) } ?? "null"),"
                + "\"problems\":[\(status.problems.map(JSONText.string).joined(separator: ","))]}"
        }
        return "{\"pipelines\":[" + items.joined(separator: ",") + "]}"
    }

    static func backfillJSON(_ backfill: PipelineStatus.Backfill, _ formatter: ISO8601DateFormatter) -> String {
        func date(_ value: Date?) -> String { value.map { JSONText.string(formatter.string(from: $0)) } ?? "null" }
        return "{\"columns\":[\(backfill.columns.map(JSONText.string).joined(separator: ","))],\"rows\":\(backfill.rows),"
            + "\"estimated_total\":\(backfill.total.map(String.init) ?? "null"),\"started_at\":\(date(backfill.startedAt)),"
            + "\"finished_at\":\(date(backfill.finishedAt))}"
    }
}
