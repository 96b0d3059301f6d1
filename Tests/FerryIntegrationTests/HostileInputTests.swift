import FerryCluster
import FerryCore
import FerryDaemon
import FerryEtcd
import FerryRESP
import FerryRedis
import FerrySandbox
import FerryServer
import FerrySync
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import Testing

/// Hostile and careless input against the real servers: names with NUL bytes, bytes that are not UTF-8, control
/// characters, CR/LF, very long names, every Redis type. For each: the other data still arrives, the bad item is
/// accounted for (a dead letter with its exact bytes), and the sync keeps running.
@Suite("Hostile input: one bad name or entry costs itself only", .timeLimit(.minutes(3)), .sandbox)
struct HostileInputTests {
    /// Names as bytes; `good` ones are text PostgreSQL can store, the others are not.
    static func names(_ prefix: String) -> (good: [String], bad: [(bytes: [UInt8], problem: String)]) {
        let good = [
            "\(prefix)-plain", "\(prefix)-crlf\r\n2026-12-05T00:00:00Z CRITICAL forged", "\(prefix)-tab\tbell\u{7}esc\u{1B}[31m",
            "\(prefix)-" + String(repeating: "long", count: 2_000), "\(prefix)-ünï-✓-🚀", "\(prefix)-quote'\"\\;DROP TABLE x",
        ]
        let bad: [(bytes: [UInt8], problem: String)] = [
            (Array("\(prefix)-nul".utf8) + [0] + Array("stream".utf8), "NUL"),
            (Array("\(prefix)-bad".utf8) + [0xFF, 0xFE], "UTF-8"),
            (Array("\(prefix)-surrogate".utf8) + [0xED, 0xA0, 0x80], "UTF-8"),
        ]
        return (good, bad)
    }

    static func deadLetterNames(_ world: RedisSyncWorld, kind: String) async throws -> [[UInt8]] {
        try await world.strings(
            "SELECT row_data->'name'->>'base64' FROM \"\(world.schema)\".ferry_dead_letters WHERE row_data->>'kind' = '\(kind)' ORDER BY id"
        ).compactMap { $0.flatMap { Data(base64Encoded: $0) }.map { Array($0) } }
    }

    @Test func streamsWithNamesPostgresCannotStoreAreDeadLettersAndTheOthersFlow() async throws {
        let world = try await RedisSyncWorld.make("hs") { sync, _ in sync.keyValues.enabled = false }
        let redisInstance = try #require(world.sandbox.redis)
        let (good, bad) = Self.names(world.prefix)
        for name in bad {
            for index in 1...3 {
                try await RedisAdmin.send(
                    redisInstance, bytes: [Array("XADD".utf8), name.bytes, Array("*".utf8), Array("n".utf8), Array("\(index)".utf8)])
            }
        }
        let redis = world.client()
        let service = try RedisSyncService(configuration: world.configuration, redis: redis, logger: world.logger)
        let ended = Shared<String?>(nil)
        let running = Task {
            do {
                try await service.run()
                ended.update { $0 = "returned" }
            } catch {
                ended.update { $0 = "threw \(error)" }
            }
        }
        defer { running.cancel() }  // a failing test leaves nothing running
        // Written while the sync runs, after the bad streams: every good stream arrives whole, one entry 10 MB.
        for name in good {
            for index in 1...3 { try await world.redis("XADD", name, "*", "n", "\(index)", "nul\u{0}field", "value\u{0}with NUL") }
        }
        try await world.redis("XADD", good[0], "*", "n", "big", "nul\u{0}field", "x", "payload", String(repeating: "y", count: 10_000_000))
        try await eventually("every entry of the good streams", timeout: .seconds(30)) {
            (try? await world.int("SELECT count(*) FROM \(world.streams)")) == good.count * 3 + 1
        }
        try await eventually("a dead letter for each bad stream name", timeout: .seconds(30)) {
            (try? await Self.deadLetterNames(world, kind: "stream").count) == bad.count
        }
        #expect(Set(try await Self.deadLetterNames(world, kind: "stream")) == Set(bad.map(\.bytes)), "the exact bytes, losslessly")
        let stored = Set(try await world.strings("SELECT DISTINCT stream_key FROM \(world.streams)").compactMap { $0 })
        #expect(stored == Set(good))
        // A NUL inside a field name or value survives as base64, not as a failed batch.
        let field = "base64:" + Data("nul\u{0}field".utf8).base64EncodedString()
        #expect(try await world.int("SELECT length(data->>'payload') FROM \(world.streams) WHERE data->>'n' = 'big'") == 10_000_000)
        #expect(
            try await world.int("SELECT count(*) FROM \(world.streams) WHERE data ? '\(field)' AND data->'\(field)' ? 'base64'") == good.count * 3,
            "the values with a NUL")
        let reasons = try await world.strings("SELECT reason FROM \"\(world.schema)\".ferry_dead_letters ORDER BY id").compactMap { $0 }
        #expect(reasons.allSatisfy { $0.contains("RENAME") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("NUL byte") } && reasons.contains { $0.contains("not valid UTF-8") })
        // The bad streams' entries are untouched in Redis, and nothing made them a consumer group.
        for name in bad {
            let length = try await RedisAdmin.send(redisInstance, bytes: [Array("XLEN".utf8), name.bytes]).decode(as: Int.self)
            #expect(length == 3)
        }
        // Later passes do not record them again.
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await Self.deadLetterNames(world, kind: "stream").count == bad.count)
        #expect(ended.value == nil, "the sync stopped: \(ended.value ?? "")")
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        // `--once` succeeds too (it used to exit 1 on every run).
        _ = try await world.runOnce()
        await world.close()
    }

    @Test func keysWithNamesPostgresCannotStoreAreDeadLettersAndEveryTypeOfTheOthersArrives() async throws {
        let world = try await RedisSyncWorld.make("hk") { sync, unique in
            sync.streams.enabled = false
            sync.keyValues.patterns = ["\(unique)-*"]
        }
        let redisInstance = try #require(world.sandbox.redis)
        let (good, bad) = Self.names(world.prefix)
        // The bad names come first in the keyspace as often as not; what follows them must still arrive.
        for name in bad {
            try await RedisAdmin.send(redisInstance, bytes: [Array("SET".utf8), name.bytes, Array("v".utf8)])
        }
        for name in good { try await world.redis("SET", name, "value of \(name.prefix(20))") }
        let p = world.prefix
        try await world.redis("RPUSH", "\(p)-list", "a", "b\u{0}c", "a")
        try await world.redis("SADD", "\(p)-set", "x", "y")
        try await world.redis("ZADD", "\(p)-zset", "1.5", "a", "-inf", "b")
        try await world.redis("HSET", "\(p)-hash", "field", "value", "nul\u{0}", "x")
        try await world.redis("XADD", "\(p)-stream", "*", "f", "v")
        try await world.redis("SET", "\(p)-big", String(repeating: "x", count: 10_000_000))
        try await RedisAdmin.send(redisInstance, bytes: [Array("SET".utf8), Array("\(p)-binary-value".utf8), [0xFF, 0x00, 0xFE]])
        // Streams are the stream sync's (not key values): the key scan passes over them.
        let others = ["\(p)-list", "\(p)-set", "\(p)-zset", "\(p)-hash", "\(p)-big", "\(p)-binary-value"]
        _ = try await world.runOnce()
        let stored = Set(try await world.strings("SELECT redis_key FROM \(world.keyValues)").compactMap { $0 })
        #expect(stored == Set(good + others), "missing: \(Set(good + others).subtracting(stored).map { $0.prefix(40) })")
        #expect(Set(try await Self.deadLetterNames(world, kind: "key")) == Set(bad.map(\.bytes)))
        #expect(
            try await world.strings("SELECT value::text FROM \(world.keyValues) WHERE redis_key = '\(p)-binary-value'")
                == ["{\"base64\": \"/wD+\"}"])
        // A second pass: the same rows, no new dead letters, no error.
        _ = try await world.runOnce()
        #expect(try await Self.deadLetterNames(world, kind: "key").count == bad.count)
        await world.close()
    }
}

/// The HTTP API against hostile clients: numbers out of range, oversized and broken bodies, slow clients, floods of
/// requests without a token. Every one gets a 4xx that says why (no internals) and the daemon stays up.
@Suite("Hostile input: the HTTP API", .timeLimit(.minutes(2)))
struct HostileAPITests {
    static let token = "hostile-test-token"

    static func router() -> Router<BasicRequestContext> {
        let logger = Logger(label: "ferry.test.api")
        var postgres = PostgresEndpoint()
        postgres.host = "127.0.0.1"
        postgres.port = 9
        let operations = ClusterOperations(etcd: EtcdClient(endpoints: ["http://127.0.0.1:9"]), scope: "hostile", postgres: postgres, logger: logger)
        let api = ClusterAPI(token: Secret(token), operations: operations, nodes: [], logger: logger)
        return FerryHTTPServer.buildRouter(
            readiness: ReadinessMonitor(configuration: FerryConfiguration(), logger: logger), registry: PrometheusCollectorRegistry(), cluster: api)
    }

    static func post(_ client: some TestClientProtocol, _ path: String, _ body: ByteBuffer, token: String? = token) async throws -> (Int, String) {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: path, method: .post, headers: headers, body: body) { (Int($0.status.code), String(buffer: $0.body)) }
    }

    @Test func outOfRangeNumbersOversizedAndBrokenBodiesGetA4xx() async throws {
        try await Application(router: Self.router()).test(.router) { client in
            // Used to crash the daemon: Double(Int.max) does not fit an Int.
            for timeout in ["9223372036854775807", "-1", "0", "86401", "1e308", "18446744073709551616"] {
                let (status, body) = try await Self.post(
                    client, "/cluster/switchover", ByteBuffer(string: "{\"to\":\"node2\",\"timeout_seconds\":\(timeout)}"))
                #expect(status == 400, "timeout_seconds \(timeout): \(status) \(body)")
                #expect(!body.contains("Fatal") && !body.contains("Swift."), "\(body)")
            }
            let (tooLarge, largeBody) = try await Self.post(client, "/cluster/failover", ByteBuffer(repeating: UInt8(ascii: " "), count: 200_000))
            #expect(tooLarge == 413, "\(largeBody)")
            #expect(largeBody.contains("64 KiB") && !largeBody.contains("NIO"), "\(largeBody)")
            for garbage in ["{", "[1,2]", "{\"to\": 5}", "\u{0}\u{1}\u{2}", "{\"to\":\"\u{0}\"}", String(repeating: "[", count: 10_000)] {
                let (status, body) = try await Self.post(client, "/cluster/failover", ByteBuffer(string: garbage))
                #expect(status == 400 || status == 503, "\(garbage.prefix(20)): \(status) \(body)")
            }
            let (unauthorized, _) = try await Self.post(client, "/cluster/switchover", ByteBuffer(string: "{}"), token: "wrong")
            #expect(unauthorized == 401)
            #expect(try await client.execute(uri: "/health/live", method: .get) { $0.status } == .ok, "still up")
        }
    }

    @Test func requestsWithoutATokenAreAuditedAFewAtATimeThenCounted() {
        let throttle = AuditThrottle(linesPerWindow: 3, window: .seconds(60))
        let start = ContinuousClock.now
        #expect((0..<3).map { _ in throttle.admit(now: start) } == [0, 0, 0])
        #expect((0..<1_000).allSatisfy { _ in throttle.admit(now: start + .seconds(1)) == nil }, "a flood is not logged line by line")
        #expect(throttle.admit(now: start + .seconds(61)) == 1_000, "the next window's first line says how many were not logged")
        #expect(throttle.admit(now: start + .seconds(62)) == 0)
    }

    /// A client that opens a connection and dribbles a request head (or says nothing) is disconnected after the
    /// idle timeout instead of holding the connection for ever.
    @Test func aSlowClientIsDisconnected() async throws {
        var configuration = FerryConfiguration()
        configuration.http.port = 0
        var options = Daemon.Options()
        options.httpIdleTimeout = .milliseconds(500)
        let daemon = try Daemon(
            configuration: configuration, file: nil, registry: PrometheusCollectorRegistry(), options: options, logger: Logger(label: "ferry.test"))
        let server = try #require(daemon.httpServer)
        try await server.test(.live) { client in
            let port = try #require(client.port)
            _ = client
            let socket = try RawSocket(port: port)
            defer { socket.close() }
            try socket.send("GET /health/live HTTP/1.1\r\nHost: x\r\n")  // the head never ends
            let started = ContinuousClock.now
            #expect(socket.readUntilClosed(timeout: .seconds(20)), "the server closed the connection")
            #expect(ContinuousClock.now - started < .seconds(15), "closed for idling, not by chance")
            // Others are served (on a new connection: the test client's idle one was closed too).
            let other = try RawSocket(port: port)
            defer { other.close() }
            try other.send("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(other.readAll(timeout: .seconds(30)).hasPrefix("HTTP/1.1 200"))
        }
    }
}

/// A blocking TCP client, for speaking HTTP badly on purpose.
struct RawSocket {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TimedOut(description: "cannot connect to 127.0.0.1:\(port)") }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else { throw TimedOut(description: "cannot write") }
    }

    /// Reads until the peer closes (true) or `timeout` passes (false).
    func readUntilClosed(timeout: Duration) -> Bool {
        var interval = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    /// Everything the peer sends until it closes (or `timeout` passes).
    func readAll(timeout: Duration) -> String {
        var interval = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count <= 0 { return String(decoding: received, as: UTF8.self) }
            received += buffer[0..<count]
        }
    }

    func close() { _ = Glibc.close(descriptor) }
}

/// The table sync with hostile names and values at the source: identifiers that are SQL, quotes, spaces and
/// Unicode; values with control characters, CR/LF, backslashes, a megabyte of text. Everything arrives exactly, and
/// reconcile finds no difference.
@Suite("Hostile input: the table sync", .timeLimit(.minutes(3)), .sandbox)
struct HostileTableSyncTests {
    @Test func hostileIdentifiersAndValuesArriveExactly() async throws {
        let world = try await SyncWorld.make("hostile", companion: false) { pipeline in
            pipeline.source.table = "src_\(pipeline.name).we\"ird; DROP TABLE x; --"
            pipeline.source.key = ["Key \"Col\""]
            pipeline.source.watermark = "select"
            pipeline.target.table = "mirror \"of\" weird"
        }
        let table = "\"\(world.sourceSchema)\".\"we\"\"ird; DROP TABLE x; --\""
        try await world.sql(
            #"""
            CREATE TABLE \#(table) ("Key ""Col""" text PRIMARY KEY, "select" timestamp(6) NOT NULL DEFAULT now(), "ünï ✓" text,
              "x); DROP TABLE y; --" text, "Mixed Case" integer);
            INSERT INTO \#(table) ("Key ""Col""", "ünï ✓", "x); DROP TABLE y; --", "Mixed Case") VALUES
              (E'k\r\n1', E'line\nbreak\ttab\u001b[31mesc', E'back\\slash \\N '' "', 1),
              ('k2''quote', repeat('x', 1000000), '🚀 ünïcödé', -2147483648),
              ('k3', '', NULL, NULL)
            """#)
        _ = try await world.runOnce()
        let mirror = "\"\(world.targetSchema)\".\"mirror \"\"of\"\" weird\""
        let source = try await world.strings(
            "SELECT md5(string_agg(concat_ws('|', \"Key \"\"Col\"\"\", \"ünï ✓\", \"x); DROP TABLE y; --\", \"Mixed Case\"), ',' ORDER BY \"Key \"\"Col\"\"\")) FROM \(table)"
        )
        let mirrored = try await world.strings(
            "SELECT md5(string_agg(concat_ws('|', \"key \"\"col\"\"\", \"ünï ✓\", \"x); drop table y; --\", \"mixed case\"), ',' ORDER BY \"key \"\"col\"\"\")) FROM \(mirror)"
        )
        #expect(source == mirrored && source.first != nil, "source \(source), mirror \(mirrored)")
        let report = try await world.reconcile()
        #expect(report.differences == 0 && report.sourceRows == 3)
        #expect(try await world.int("SELECT count(*) FROM \"\(world.sourceSchema)\".\"we\"\"ird; DROP TABLE x; --\"") == 3, "nothing was dropped")
        await world.close()
    }
}
