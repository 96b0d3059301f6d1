import FerryRedis
import Synchronization

/// Keeps entries a consumer is still working on from looking abandoned: `XCLAIM … JUSTID` to itself resets their
/// idle time (without counting a delivery), so another consumer does not claim them during a long apply.
final class Heartbeat: Sendable {
    let stream: String
    let group: String
    let consumer: String
    let ids: [String]
    let interval: Duration
    let connection: RedisConnection
    private let last = Mutex(ContinuousClock.now)

    init(stream: String, group: String, consumer: String, ids: [String], interval: Duration, connection: RedisConnection) {
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.ids = ids
        self.interval = interval
        self.connection = connection
    }

    /// Runs `body` (a transaction that may take long) while beating every `interval` in a child task.
    ///
    /// When `body` ends, the child stops at its next wait. A beat already sent is not cancelled: a cancelled command
    /// closes its Redis connection (so that no reply is read out of step), and that connection is the consumer's,
    /// whose `XACK` for the batch just committed would then fail and the batch be applied a second time.
    func keepingAlive<T>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: interval)
                    } catch {
                        return
                    }
                    try await Task { try await self.beat() }.value
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Sleeps, beating meanwhile, so entries waiting for a retry stay this consumer's.
    func sleep(for duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: min(interval, deadline - ContinuousClock.now))
            try await beat()
        }
    }

    func beat() async throws {
        let due = last.withLock { last -> Bool in
            guard ContinuousClock.now - last >= interval else { return false }
            last = .now
            return true
        }
        guard due, !ids.isEmpty else { return }
        _ = try await connection.send(XCLAIM(stream, group: group, consumer: consumer, minimumIdle: .zero, ids: ids, justID: true))
    }
}
