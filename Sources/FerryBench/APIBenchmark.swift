import Crypto
import FerryAPI
import FerryAPIContract
import FerryCore
import FerryPostgres
import FerryPostgresNode
package import FerrySandbox
import Foundation
import Hummingbird
package import Logging
import NIOCore
import ServiceLifecycle

/// `wrk` (Debian's) against the API as `ferry run` serves it, beside a bare Hummingbird hello-world in the same
/// process and run: `GET /jobs/{id}` with a token (authentication, permission, a remembered finished job, an audit
/// event), `GET /health/ready` and `GET /health/live` (open), requests/s and p99 each; the cost of authentication and
/// audit per request is the difference between `/jobs/{id}` and `/health/live`, which share everything else.
package struct APIBenchmark: Sendable {
    package struct Options: Sendable {
        package var seconds = 10
        package var connections = 32
        package var threads = 2
        package var rounds = 3

        package init() {}
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    struct Result {
        var requestsPerSecond: Double
        var p99Milliseconds: Double
    }

    package func run(on sandbox: Sandbox, progress: @escaping @Sendable (String) -> Void) async throws -> [SyncBenchmark.Figure] {
        guard let postgres = sandbox.postgres else { throw FerryError(.sandbox, "the benchmark needs the sandbox's PostgreSQL") }
        let work = FileManager.default.currentDirectoryPath + "/.ferry/bench/api-work"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let quiet = Logger(label: "ferry.bench.api", factory: { _ in SwiftLogNoOpLogHandler() })
        let session = PostgresSession(endpoint: postgres.endpoint, key: "postgres", logger: quiet)
        let store = JobStore(session: session, logger: quiet)
        try await store.prepare()
        let audit = try AuditLog(path: work + "/audit.jsonl", session: session, logger: quiet)
        try await audit.prepare()
        let queue = JobQueue(store: store, logger: quiet)
        let token = APIToken.generate()
        let permissions = try Permissions.parse(
            "users:\n  - name: bench\n    token_sha256: \(token.sha256)\n    permissions:\n      - query: \"*\"\n        access: read\n",
            file: "bench")
        let (record, _) = try await queue.submit(
            kind: .extract, target: "bench", user: "bench", request: "bench \(UUID())", idempotencyKey: nil, work: { _ in "{\"rows\":0}" })
        await queue.drain()
        let environment = APIEnvironment(
            version: "bench", readiness: { .init(status: .ready, endpoints: [], jobs: []) }, metrics: { [] }, jobs: queue, planner: nil)
        let apiGuard = APIGuard(permissions: PermissionsSource(permissions), audit: audit, logger: quiet)
        let apiRouter = try FerryAPIRouter.build(service: FerryAPIService(environment), guard: apiGuard)
        let apiPort = try Self.freePort()
        let helloPort = try Self.freePort()
        let api = Application(router: apiRouter, configuration: .init(address: .hostname("127.0.0.1", port: apiPort)), logger: quiet)
        let helloRouter = Router()
        helloRouter.get("/hello") { _, _ in "hello" }
        let hello = Application(router: helloRouter, configuration: .init(address: .hostname("127.0.0.1", port: helloPort)), logger: quiet)
        let group = ServiceGroup(configuration: .init(services: [api, hello], logger: quiet))
        let servers = Task { try await group.run() }
        defer { servers.cancel() }
        let flusher = Task { await audit.runFlusher() }
        defer { flusher.cancel() }
        try await Task.sleep(for: .milliseconds(500))

        let id = record.id.uuidString.lowercased()
        let auth = "Authorization: Bearer \(token.token)"
        var jobs: [Result] = []
        var ready: [Result] = []
        var live: [Result] = []
        var bare: [Result] = []
        for round in 1...options.rounds {
            progress("round \(round): hello-world, GET /jobs/{id}, /health/ready, /health/live (\(options.seconds) s each)")
            bare.append(try wrk("http://127.0.0.1:\(helloPort)/hello", header: nil))
            jobs.append(try wrk("http://127.0.0.1:\(apiPort)/jobs/\(id)", header: auth))
            ready.append(try wrk("http://127.0.0.1:\(apiPort)/health/ready", header: nil))
            live.append(try wrk("http://127.0.0.1:\(apiPort)/health/live", header: nil))
        }
        flusher.cancel()
        await flusher.value
        servers.cancel()
        await session.close()
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let helloRate = median(bare.map(\.requestsPerSecond))
        let jobsRate = median(jobs.map(\.requestsPerSecond))
        let liveRate = median(live.map(\.requestsPerSecond))
        let peer = "Hummingbird hello-world"
        return [
            .init(
                name: "GET /jobs/{id}, token + audit: requests/s", ferry: jobsRate, unit: "req/s", peer: helloRate, peerName: peer,
                target: 0.7 * helloRate),
            .init(
                name: "GET /jobs/{id}: p99", ferry: median(jobs.map(\.p99Milliseconds)), unit: "ms", peer: median(bare.map(\.p99Milliseconds)),
                peerName: peer, higherIsBetter: false),
            .init(
                name: "GET /health/ready: requests/s", ferry: median(ready.map(\.requestsPerSecond)), unit: "req/s", peer: helloRate, peerName: peer,
                target: 0.7 * helloRate),
            .init(
                name: "GET /health/ready: p99", ferry: median(ready.map(\.p99Milliseconds)), unit: "ms", peer: median(bare.map(\.p99Milliseconds)),
                peerName: peer, higherIsBetter: false),
            .init(name: "GET /health/live (the API's stack, no token): requests/s", ferry: liveRate, unit: "req/s", peer: helloRate, peerName: peer),
            .init(
                name: "token check + permission + audit event, per request", ferry: max(0, 1e6 / jobsRate - 1e6 / liveRate), unit: "µs",
                higherIsBetter: false),
        ]
    }

    /// Runs wrk for `options.seconds` and reads its requests/s and 99th-percentile latency.
    func wrk(_ url: String, header: String?) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        var arguments = ["-t\(options.threads)", "-c\(options.connections)", "-d\(options.seconds)s", "--latency"]
        if let header { arguments += ["-H", header] }
        process.arguments = arguments + [url]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw FerryError(.unsupported, "wrk could not start: \(error)", fix: "install it: `scripts/setup.sh bench` (Debian's wrk)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let rate = Self.number(after: "Requests/sec:", in: text), let p99 = Self.latency(percentile: "99%", in: text) else {
            throw FerryError(.server, "wrk's output did not read: \(text.suffix(400))")
        }
        if text.contains("Non-2xx or 3xx responses") {
            // One of them, for the message.
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = ["-s", "-i"] + (header.map { ["-H", $0] } ?? []) + [url]
            let answer = Pipe()
            curl.standardOutput = answer
            try? curl.run()
            let sample = String(decoding: answer.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            curl.waitUntilExit()
            throw FerryError(.server, "wrk got error responses from \(url), such as: \(sample.prefix(600))")
        }
        return Result(requestsPerSecond: rate, p99Milliseconds: p99)
    }

    static func number(after label: String, in text: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.contains(label) }) else { return nil }
        return line.split(separator: " ").last.flatMap { Double($0) }
    }

    /// `    99%    1.23ms` → 1.23 (µs and s converted).
    static func latency(percentile: String, in text: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(percentile) }),
            let value = line.split(separator: " ").last
        else { return nil }
        for (suffix, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where value.hasSuffix(suffix) {
            return Double(value.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw FerryError(.sandbox, "no free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
