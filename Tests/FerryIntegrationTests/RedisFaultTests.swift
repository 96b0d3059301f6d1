import FerryCore
import FerryPostgresNode
import FerryRESP
import FerryRedis
import FerrySandbox
import Foundation
import Logging
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Redis client under server faults", .serialized, .timeLimit(.minutes(3)), .sandbox { $0.postgres = false })
struct RedisFaultTests {
    var redis: RedisInstance { get throws { try #require(try SandboxContext.require().redis) } }

    @Test(arguments: [SIGKILL, SIGTERM])
    func serverRestartedInTheMiddleOfAPipeline(signal: Int32) async throws {
        let redis = try redis
        let client = redis.client { $0.reconnectTimeout = .seconds(30) }
        _ = try await client.send(PING())
        // Two hundred commands that keep the server busy for ten seconds: the pipeline is surely in flight when the
        // server goes away (sixty, three seconds, were not always enough on a loaded machine).
        let inFlight = Task {
            try await client.withConnection { connection in
                try await connection.pipeline((0..<200).map { _ in RawCommand("DEBUG", "SLEEP", "0.05") })
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let pid = try #require(redis.pid)
        ProcessTable.signal(pid, signal)
        #expect(await ProcessTable.waitForExit(pid, timeout: .seconds(15)))

        let clock = ContinuousClock()
        let failedAt = clock.now
        let outcome = await inFlight.result
        #expect(clock.now - failedAt < .seconds(5), "in-flight commands fail promptly, nothing hangs")
        switch outcome {
        case .success:
            Issue.record("the pipeline cannot complete: the server stopped in its middle")
        case .failure(let error):
            let redisError = try #require(error as? RedisError)
            #expect(redisError.code == .connectionClosed, "\(redisError)")
            #expect(redisError.description.contains("127.0.0.1:\(redis.port)"))
        }

        // A command sent while the server is down waits for it (reconnecting with backoff) and then succeeds.
        let whileDown = Task { try await client.send(SET("restart:after", "ok")) }
        try await Task.sleep(for: .milliseconds(500))
        try await redis.start()
        #expect(try await whileDown.value)
        #expect(try await client.send(GET("restart:after"))?.text == "ok")
        await client.shutdown()
    }

    @Test func unreachableServerFailsAfterTheReconnectDeadlineWithAClearError() async throws {
        let port = try FreePort.find()
        var configuration = RedisClient.Configuration(connection: RedisConnectionConfiguration(host: "127.0.0.1", port: port))
        configuration.reconnectTimeout = .seconds(1)
        let client = RedisClient(configuration: configuration, logger: Logger(label: "test"))
        let clock = ContinuousClock()
        let start = clock.now
        await #expect {
            try await client.send(PING())
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .unreachable && error.description.contains("127.0.0.1:\(port)") && error.message.contains("connection refused")
        }
        // Gave up after the 1 s deadline, not the default 30 s; the upper bound leaves room for a loaded machine.
        let elapsed = clock.now - start
        #expect(elapsed >= .milliseconds(500))
        #expect(elapsed < .seconds(15))
        await client.shutdown()
    }

    @Test func serversWithoutHELLOGetRESP2() async throws {
        let base = try SandboxContext.require().root
        let legacy = try RedisInstance.create(directory: base + "/legacy-redis", password: true, extraConfiguration: ["rename-command HELLO \"\""])
        try await legacy.start()
        do {
            try await checkRESP2(legacy)
        } catch {
            await legacy.stop()
            throw error
        }
        await legacy.stop()
    }

    func checkRESP2(_ legacy: RedisInstance) async throws {
        let connection = try await legacy.connect(database: 2)
        #expect(connection.info.protocolVersion == 2)
        #expect(connection.info.clientID != nil)
        let key = uniqueKey("legacy")
        #expect(try await connection.send(SET(key, "v")))
        #expect(try await connection.send(GET(key))?.text == "v")
        #expect(try await connection.send(HGETALL(uniqueKey())).isEmpty)
        let names = try await connection.send(RawCommand("CLIENT", "GETNAME"))
        #expect(try names.decode(as: String.self) == "ferry")
        await connection.close()
    }
}
