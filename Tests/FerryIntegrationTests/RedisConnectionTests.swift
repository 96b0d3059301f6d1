import FerryCore
import FerryPostgresNode
import FerryRESP
import FerryRedis
import FerrySandbox
import Logging
import NIOCore
import Synchronization
import Testing

@Suite("Redis connections: pipelining, deadlines, cancellation, pools", .serialized, .timeLimit(.minutes(2)), .sandbox { $0.postgres = false })
struct RedisConnectionTests {
    var redis: RedisInstance { get throws { try #require(try SandboxContext.require().redis) } }

    @Test func hundredThousandPipelinedCommands() async throws {
        try await withRedis(database: 1) { connection in
            _ = try await connection.send(FLUSHDB())
            let results = try await connection.pipeline((0..<100_000).map { SET("p:\($0)", "value-\($0)") })
            #expect(results.count == 100_000)
            #expect(results.allSatisfy { (try? $0.get()) == true })
            #expect(try await connection.send(DBSIZE()) == 100_000)
            let sample = try await connection.pipeline([GET("p:0"), GET("p:54321"), GET("p:99999")])
            #expect(sample.map { try? $0.get()?.text } == ["value-0", "value-54321", "value-99999"])
        }
    }

    @Test func blockingReadTimesOutAndTheConnectionStaysUsable() async throws {
        try await withRedis { connection in
            let stream = uniqueKey("block")
            _ = try await connection.send(XGROUPCREATE(stream, group: "g"))
            let clock = ContinuousClock()
            let start = clock.now
            let read = try await connection.send(XREADGROUP(group: "g", consumer: "c", streams: [(key: stream, id: ">")], block: .milliseconds(300)))
            let elapsed = clock.now - start
            #expect(read.isEmpty)
            #expect(elapsed >= .milliseconds(280))
            #expect(elapsed < .seconds(10), "the 300 ms block ended it, not something else")
            #expect(try await connection.send(PING()) == "PONG")
        }
    }

    @Test func cancellingABlockedReadClosesTheConnectionAndFailsFast() async throws {
        let connection = try await redis.connect()
        let stream = uniqueKey("cancel")
        _ = try await connection.send(XGROUPCREATE(stream, group: "g"))
        let id = try await connection.send(RawCommand("CLIENT", "ID")).decode(as: Int.self)
        let task = Task {
            try await connection.send(XREADGROUP(group: "g", consumer: "c", streams: [(key: stream, id: ">")], block: .zero))
        }
        // Cancelled once Redis holds the read blocked: a task cancelled before its request was written fails without
        // closing anything (on CI's loaded machine a fixed 200 ms was sometimes not enough to get there).
        let observer = try await redis.connect()
        try await eventually("the read blocked in Redis", timeout: .seconds(30)) {
            let line = try await observer.send(RawCommand("CLIENT", "LIST", "ID", "\(id)")).decode(as: String.self)
            return line.contains("cmd=xreadgroup") && line.contains("flags=b")
        }
        await observer.close()
        let clock = ContinuousClock()
        let start = clock.now
        task.cancel()
        let result = await task.result
        #expect(clock.now - start < .seconds(5), "cancelled, not left blocked forever")
        guard case .failure(let error as RedisError) = result else {
            Issue.record("a cancelled read must fail, got \(result)")
            return
        }
        #expect(error.code == .cancelled)
        try await connection.closeFuture.get()
        #expect(!connection.isActive, "a cancelled request closes the connection so no reply is read out of step")
        await #expect(throws: RedisError.self) { try await connection.send(PING()) }
    }

    @Test func aCommandPastItsDeadlineClosesTheConnectionAndFailsEverythingPending() async throws {
        let connection = try await redis.connect { $0.commandTimeout = .milliseconds(300) }
        let slow = Task { try await connection.send(RawCommand("DEBUG", "SLEEP", "1.5")) }
        try await Task.sleep(for: .milliseconds(50))
        let behind = Task { try await connection.send(PING()) }
        let slowResult = await slow.result
        let behindResult = await behind.result
        guard case .failure(let error as RedisError) = slowResult else {
            Issue.record("DEBUG SLEEP must time out, got \(slowResult)")
            return
        }
        #expect(error.code == .timeout)
        #expect(error.command == "DEBUG")
        #expect(error.description.contains("127.0.0.1:"))
        if case .success = behindResult { Issue.record("the command queued behind must not get a reply from the wrong request") }
        #expect(!connection.isActive)
        // Let the server finish its sleep before other tests use it.
        try await Task.sleep(for: .milliseconds(1300))
    }

    @Test func aCancelledLeaseNeverReturnsItsConnectionToThePool() async throws {
        let client = try redis.client { $0.maximumConnections = 1 }
        _ = try await client.send(PING())
        for _ in 0..<5 {
            let task = Task { try await client.withConnection { try await $0.send(RawCommand("DEBUG", "SLEEP", "0.2")) } }
            try await Task.sleep(for: .milliseconds(30))
            task.cancel()
            _ = await task.result
            // The next command gets its own reply, never the sleep's late "OK".
            let key = uniqueKey("after-cancel")
            #expect(try await client.send(SET(key, "v")))
            #expect(try await client.send(GET(key))?.text == "v")
            #expect(try await client.send(PING()) == "PONG")
        }
        await client.shutdown()
    }

    @Test func shutdownInterruptsADedicatedBlockingRead() async throws {
        let client = try redis.client()
        let stream = uniqueKey("dedicated")
        _ = try await client.send(XGROUPCREATE(stream, group: "g"))
        let started = Shared(false)
        let task = Task {
            try await client.withDedicatedConnection { connection in
                started.update { $0 = true }
                return try await connection.send(XREADGROUP(group: "g", consumer: "c", streams: [(key: stream, id: ">")], block: .zero))
            }
        }
        while !started.value { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        await client.shutdown()
        let result = await task.result
        guard case .failure(let error as RedisError) = result else {
            Issue.record("the blocked read must end with an error, got \(result)")
            return
        }
        #expect(error.code == .connectionClosed)
        await #expect(throws: RedisError.self) { try await client.send(PING()) }
    }

    @Test func aclUserAndWrongPassword() async throws {
        let redis = try redis
        _ = try await RedisAdmin.send(redis, ["ACL", "SETUSER", "app", "on", ">app-secret", "~app:*", "+@all"])
        let app = try await redis.connect {
            $0.user = "app"
            $0.password = Secret("app-secret")
        }
        #expect(try await app.send(SET("app:x", "1")))
        let denied = await Result(catching: { try await app.send(SET("other:x", "1")) })
        if case .failure(let error as RedisError) = denied {
            #expect(error.prefix == "NOPERM")
        } else {
            Issue.record("a key outside ~app:* must be denied")
        }
        await app.close()

        for resp3 in [true, false] {
            let result = await Result(catching: {
                try await redis.connect(resp3: resp3) {
                    $0.user = "app"
                    $0.password = Secret("not-the-password")
                }
            })
            guard case .failure(let error as RedisError) = result else {
                Issue.record("a wrong password must fail")
                continue
            }
            #expect(error.prefix == "WRONGPASS")
            #expect(error.message.contains("authentication failed"))
            #expect(error.message.contains("REDIS_PASSWORD"))
            #expect(!error.description.contains("not-the-password"))
        }
    }

    @Test func poolsOnDifferentDatabasesNeverSeeEachOthersKeys() async throws {
        let client = try redis.client()
        let key = uniqueKey("db")
        _ = try await client.send(SET(key, "in-db-2"), database: 2)
        _ = try await client.send(SET(key, "in-db-3"), database: 3)
        #expect(try await client.send(GET(key), database: 2)?.text == "in-db-2")
        #expect(try await client.send(GET(key), database: 3)?.text == "in-db-3")
        #expect(try await client.send(GET(key), database: 5) == nil)
        #expect(try await client.send(GET(key)) == nil, "the default database is 0")
        var seen: [String] = []
        for try await found in client.scan(database: 3, match: key) { seen.append(found.description) }
        #expect(seen == [key])
        await client.shutdown()
    }

    @Test func poolLimitsConnectionsAndServesEveryWaiter() async throws {
        let client = try redis.client {
            $0.maximumConnections = 2
            $0.minimumConnections = 0
        }
        let peak = Shared((current: 0, max: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await client.withConnection { connection in
                        peak.update {
                            $0.current += 1
                            $0.max = max($0.max, $0.current)
                        }
                        _ = try await connection.send(SET("pool:\(index)", "v"))
                        try await Task.sleep(for: .milliseconds(5))
                        peak.update { $0.current -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(peak.value.max == 2)
        #expect(client.pool().counts.busy == 0)
        #expect(client.pool().counts.idle <= 2)
        await client.shutdown()
    }

    @Test func pushesAreNeverTakenForReplies() async throws {
        let redis = try redis
        let pushes = Shared<[String]>([])
        var configuration = redis.connectionConfiguration()
        configuration.clientName = "tracking"
        let tracked = try await RedisConnection.connect(configuration, logger: Logger(label: "test")) { push in
            pushes.update { $0.append(push.description) }
        }
        let key = uniqueKey("tracked")
        _ = try await tracked.send(RawCommand("CLIENT", "TRACKING", "ON"))
        _ = try await tracked.send(SET(key, "1"))
        _ = try await tracked.send(GET(key))
        _ = try await RedisAdmin.send(redis, ["SET", key, "2"])
        // Replies after the invalidation push still match their commands.
        for _ in 0..<5 { #expect(try await tracked.send(PING()) == "PONG") }
        #expect(try await tracked.send(GET(key))?.text == "2")
        #expect(pushes.value.contains { $0.contains("invalidate") })
        await tracked.close()
    }

    /// The idle-tick hint (on by default) only touches a private epoll set after each write: replies, their order
    /// and pipelining are the same with it on and off, for many connections sharing an event-loop thread.
    @Test(arguments: [true, false])
    func theIdleTickHintChangesOnlyTiming(hint: Bool) async throws {
        let redis = try redis
        let connections = try await withThrowingTaskGroup(of: RedisConnection.self) { group in
            for _ in 0..<8 { group.addTask { try await redis.connect { $0.idleTickHint = hint } } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let prefix = uniqueKey("hint")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, connection) in connections.enumerated() {
                group.addTask {
                    for step in 0..<200 {
                        let key = "\(prefix):\(index):\(step)"
                        #expect(try await connection.send(SET(key, "\(step)")))
                        #expect(try await connection.send(GET(key))?.text == "\(step)")
                    }
                    let replies = try await connection.pipeline((0..<2_000).map { GET("\(prefix):\(index):\($0 % 200)") })
                    #expect(replies.enumerated().allSatisfy { (try? $1.get()?.text) == "\($0 % 200)" })
                }
            }
            try await group.waitForAll()
        }
        for connection in connections { await connection.close() }
        // A connection made after the others closed uses the same thread's hint and works as well.
        let pong = try await withRedis { connection in try await connection.send(PING()) }
        #expect(pong == "PONG")
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
