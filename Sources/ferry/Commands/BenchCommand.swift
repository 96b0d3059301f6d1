import ArgumentParser
import FerryBench
import FerryCore
import FerrySandbox
import Foundation
import Logging

/// `ferry bench …`: measurements of Ferry beside a peer tool, on sandbox servers, in one run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Ferry against peer tools on private sandbox servers (use a release build).",
        subcommands: [Redis.self]
    )

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
        unit == "ms" ? String(format: "%.3f ms", value) : String(format: "%.0f %@", value, unit)
    }
}
