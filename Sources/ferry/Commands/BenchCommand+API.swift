import ArgumentParser
import FerryBench
import FerryCore
import FerrySandbox
import Foundation
import Logging

extension BenchCommand {
    struct API: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "api",
            abstract: "wrk against the HTTP API (GET /jobs/{id} with a token, /health/ready) beside a bare Hummingbird hello-world.",
            discussion: """
                Starts its own sandbox under .ferry/bench/api (PostgreSQL keeps the jobs and the audit), serves the API as ferry run does with one finished job, and a Hummingbird hello-world beside it in the same process; per round runs Debian's wrk (`scripts/setup.sh bench`) against each: requests/s and p99, and the cost of the token check, permission and audit event per request (/jobs/{id} against /health/live, which share the rest). Run it with a release build: make release && .build/release/ferry bench api
                """
        )

        @Option(help: "Seconds per wrk run.")
        var seconds = 10

        @Option(help: "wrk connections.")
        var connections = 32

        @Option(help: "Rounds; the median of each figure is reported.")
        var rounds = 3

        @OptionGroup var server: BenchPostgresSettings

        @Flag(help: "Print the figures as JSON.")
        var json = false

        func validate() throws {
            guard (1...600).contains(seconds) else { throw ValidationError("--seconds: 1–600") }
            guard (1...10_000).contains(connections) else { throw ValidationError("--connections: 1–10000") }
            guard (1...100).contains(rounds) else { throw ValidationError("--rounds: 1–100") }
        }

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            let logger = Logger(label: "ferry.bench")
            var options = APIBenchmark.Options()
            options.seconds = seconds
            options.connections = connections
            options.rounds = rounds
            let quiet = json
            let figures = try await Sandbox.with(root: ".ferry/bench/api", options: server.sandboxOptions(), logger: logger) { sandbox in
                try await APIBenchmark(options: options, logger: logger).run(on: sandbox) { message in
                    if !quiet { Terminal.writeStandardError(message + "\n") }
                }
            }
            BenchReport.printFigures(figures, json: json)
        }
    }
}
