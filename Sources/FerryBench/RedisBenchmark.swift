import FerryCore
import FerryPostgresNode
import FerryRESP
import FerryRedis
package import FerrySandbox
import Foundation
package import Logging

/// Ferry's Redis client against `redis-benchmark` on the same server, in the same run.
///
/// Throughput: one connection, batches of `pipeline` commands, the next batch sent when the previous one's
/// replies are in (what `redis-benchmark -c 1 -P 64` does). Latency: one connection, one command at a time.
package struct RedisBenchmark: Sendable {
    package struct Options: Sendable {
        package var requests = 1_000_000
        package var pipeline = 64
        package var latencyRequests = 100_000
        package var rounds = 3
        /// Measure Ferry only (for profiling); peer figures are then zero.
        package var skipPeer = false

        package init() {}
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    package func run(on redis: RedisInstance, progress: @Sendable (String) -> Void) async throws -> [BenchmarkFigure] {
        let tool = try Self.locateRedisBenchmark()
        var setPeer: [Double] = []
        var setFerry: [Double] = []
        var xaddPeer: [Double] = []
        var xaddFerry: [Double] = []
        var p50Peer: [Double] = []
        var p50Ferry: [Double] = []
        var p99Peer: [Double] = []
        var p99Ferry: [Double] = []
        var p50NoHint: [Double] = []
        var configuration = RedisConnectionConfiguration(redis.endpoint)
        configuration.clientName = "ferry-bench"
        let connection = try await RedisConnection.connect(configuration, logger: logger)
        // The same client with the idle-tick hint off, measured in the same rounds, so the hint's share of the
        // round trip is in every report.
        configuration.idleTickHint = false
        let withoutHint: RedisConnection
        do {
            withoutHint = try await RedisConnection.connect(configuration, logger: logger)
        } catch {
            await connection.close()
            throw error
        }
        do {
            try await withTaskExecutorPreference(connection.taskExecutor) { try await measure() }
            await connection.close()
            await withoutHint.close()
        } catch {
            await connection.close()
            await withoutHint.close()
            throw error
        }

        func measure() async throws {
            for round in 1...options.rounds {
                progress("round \(round)/\(options.rounds): SET pipelined")
                _ = try await connection.send(RawCommand("DEL", "bench:stream"))
                setPeer.append(
                    options.skipPeer
                        ? 0 : try await peer(tool, redis, ["-c", "1", "-P", "\(options.pipeline)", "-n", "\(options.requests)", "-t", "set"]).rps)
                setFerry.append(try await pipelined(connection, SET("key:000000000000", "xxx")))
                progress("round \(round)/\(options.rounds): XADD pipelined")
                _ = try await connection.send(RawCommand("DEL", "bench:stream"))
                xaddPeer.append(
                    options.skipPeer
                        ? 0
                        : try await peer(
                            tool, redis, ["-c", "1", "-P", "\(options.pipeline)", "-n", "\(options.requests)", "XADD", "bench:stream", "*", "f", "v"]
                        ).rps)
                _ = try await connection.send(RawCommand("DEL", "bench:stream"))
                xaddFerry.append(try await pipelined(connection, XADD("bench:stream", fields: [(name: "f", value: "v")])))
                _ = try await connection.send(RawCommand("DEL", "bench:stream"))
                progress("round \(round)/\(options.rounds): single-command round trips")
                let latency =
                    options.skipPeer
                    ? PeerResult(rps: 0, p50: 0, p99: 0)
                    : try await peer(tool, redis, ["-c", "1", "-P", "1", "-n", "\(options.latencyRequests)", "-t", "set"])
                p50Peer.append(latency.p50)
                p99Peer.append(latency.p99)
                let (p50, p99) = try await roundTrips(connection)
                p50Ferry.append(p50)
                p99Ferry.append(p99)
                progress("round \(round)/\(options.rounds): single-command round trips, idle-tick hint off")
                p50NoHint.append(try await withTaskExecutorPreference(withoutHint.taskExecutor) { try await roundTrips(withoutHint).p50 })
            }
        }
        let peerName = "redis-benchmark"
        return [
            BenchmarkFigure(
                name: "SET, pipeline \(options.pipeline)", unit: "ops/s", ferry: setFerry, peer: setPeer, peerName: peerName, higherIsBetter: true,
                target: 0.8),
            BenchmarkFigure(
                name: "XADD, pipeline \(options.pipeline)", unit: "ops/s", ferry: xaddFerry, peer: xaddPeer, peerName: peerName, higherIsBetter: true,
                target: 0.8),
            BenchmarkFigure(
                name: "SET round trip p50", unit: "ms", ferry: p50Ferry, peer: p50Peer, peerName: peerName, higherIsBetter: false, target: 1.2),
            BenchmarkFigure(name: "SET round trip p99", unit: "ms", ferry: p99Ferry, peer: p99Peer, peerName: peerName, higherIsBetter: false),
            BenchmarkFigure(
                name: "SET round trip p50, idle-tick hint off", unit: "ms", ferry: p50NoHint, peer: p50Peer, peerName: peerName,
                higherIsBetter: false),
        ]
    }

    private func pipelined<Command: RedisCommand>(_ connection: RedisConnection, _ command: Command) async throws -> Double {
        let batch = [Command](repeating: command, count: options.pipeline)
        let batches = options.requests / options.pipeline
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<batches {
            let results = try await connection.pipeline(batch)
            if case .failure(let error) = results[0] { throw error }
        }
        let elapsed = clock.now - start
        return Double(batches * options.pipeline) / elapsed.seconds
    }

    private func roundTrips(_ connection: RedisConnection) async throws -> (p50: Double, p99: Double) {
        let command = SET("key:000000000000", "xxx")
        var samples: [Duration] = []
        samples.reserveCapacity(options.latencyRequests)
        let clock = ContinuousClock()
        for _ in 0..<options.latencyRequests {
            let start = clock.now
            _ = try await connection.send(command)
            samples.append(clock.now - start)
        }
        samples.sort()
        return (percentile(samples, 0.50).seconds * 1000, percentile(samples, 0.99).seconds * 1000)
    }

    struct PeerResult {
        var rps: Double
        var p50: Double
        var p99: Double
    }

    /// Runs redis-benchmark with `--csv` and reads requests per second and latency percentiles.
    private func peer(_ tool: String, _ redis: RedisInstance, _ arguments: [String]) async throws -> PeerResult {
        var all = ["-h", "127.0.0.1", "-p", "\(redis.port)", "--csv"]
        if let password = redis.password { all += ["-a", password] }
        all += arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = all
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        guard let line = text.split(separator: "\n").last(where: { !$0.hasPrefix("\"test\"") }) else {
            throw FerryError(
                .invalidInput, "redis-benchmark printed nothing usable", fix: "run it by hand: \(tool) \(arguments.joined(separator: " "))")
        }
        let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        guard fields.count >= 7, let rps = Double(fields[1]), let p50 = Double(fields[4]), let p99 = Double(fields[6]) else {
            throw FerryError(.invalidInput, "cannot read redis-benchmark's CSV line")
        }
        return PeerResult(rps: rps, p50: p50, p99: p99)
    }

    static func locateRedisBenchmark() throws -> String {
        for path in ["/usr/bin/redis-benchmark", "/usr/local/bin/redis-benchmark"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw FerryError(.sandbox, "redis-benchmark not found", fix: "install it with `sudo apt-get install redis-tools` (or run `make setup`)")
    }
}
