import DequeModule
import FerryCore
import Logging
import NIOCore
import Synchronization

/// Connections to one database of one Redis server, leased one caller at a time.
///
/// A lease reuses an idle connection, opens a new one while below the maximum (retrying with exponential
/// backoff and jitter until ``RedisClient/Configuration/reconnectTimeout``), or waits for a release. A
/// connection that failed (closed, timed out, cancelled) is dropped on release, never handed out again.
package final class RedisConnectionPool: Sendable {
    let configuration: RedisClient.Configuration
    let connectionConfiguration: RedisConnectionConfiguration
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    private let state = Mutex(State())

    private struct Idle {
        let connection: RedisConnection
        let since: ContinuousClock.Instant
    }

    private enum Grant {
        case connection(RedisConnection)
        /// Permission to open a connection (a slot freed up).
        case slot
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [Idle] = []
        /// Connections leased out plus connections being opened.
        var busy = 0
        var waiters: Deque<Waiter> = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    init(configuration: RedisClient.Configuration, database: Int, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        var connectionConfiguration = configuration.connection
        connectionConfiguration.database = database
        self.connectionConfiguration = connectionConfiguration
        self.eventLoopGroup = eventLoopGroup
        var logger = logger
        logger[metadataKey: "ferry.redis.db"] = "\(database)"
        self.logger = logger
    }

    /// Leases a connection for the duration of `body`.
    @discardableResult
    package func withConnection<T>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    func lease() async throws(RedisError) -> RedisConnection {
        enum Decision {
            case use(RedisConnection)
            case open
            case wait
            case closed
        }
        var stale: [RedisConnection] = []
        let decision = state.withLock { state -> Decision in
            if state.closed { return .closed }
            while let idle = state.idle.popLast() {
                if idle.connection.isActive {
                    state.busy += 1
                    return .use(idle.connection)
                }
                stale.append(idle.connection)
            }
            if state.busy < configuration.maximumConnections {
                state.busy += 1
                return .open
            }
            return .wait
        }
        for connection in stale { await connection.close() }
        switch decision {
        case .use(let connection): return connection
        case .closed: throw RedisError(.poolClosed, "the Redis client was shut down", address: connectionConfiguration.address)
        case .open: return try await openCountingFailure()
        case .wait:
            switch try await waitForGrant() {
            case .connection(let connection): return connection
            case .slot: return try await openCountingFailure()
            }
        }
    }

    /// Returns a connection: to the first waiter, to the idle list, or closed if it failed.
    func release(_ connection: RedisConnection) {
        enum Action {
            case none
            case hand(CheckedContinuation<Grant, any Error>, Grant)
            case close
        }
        let usable = connection.isActive
        let action = state.withLock { state -> Action in
            if let waiter = state.waiters.popFirst() {
                return .hand(waiter.continuation, usable ? .connection(connection) : .slot)
            }
            state.busy -= 1
            if usable && !state.closed {
                state.idle.append(Idle(connection: connection, since: .now))
                return .none
            }
            return usable ? .close : .none
        }
        switch action {
        case .none: break
        case .hand(let continuation, let grant):
            if case .slot = grant { connection.closeWithoutWaiting() }
            continuation.resume(returning: grant)
        case .close: connection.closeWithoutWaiting()
        }
    }

    private func waitForGrant() async throws(RedisError) -> Grant {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                    let rejected = state.withLock { state -> Bool in
                        if state.closed || Task.isCancelled { return true }
                        state.waiters.append(Waiter(id: id, continuation: continuation))
                        return false
                    }
                    if rejected {
                        continuation.resume(
                            throwing: RedisError(.cancelled, "stopped waiting for a Redis connection", address: connectionConfiguration.address))
                    }
                }
            } onCancel: {
                let waiter = state.withLock { state -> Waiter? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index)
                }
                waiter?.continuation.resume(
                    throwing: RedisError(.cancelled, "stopped waiting for a Redis connection", address: connectionConfiguration.address))
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.cancelled, "\(error)", address: connectionConfiguration.address)
        }
    }

    /// Opens a connection for a slot already counted as busy; gives the slot back on failure.
    private func openCountingFailure() async throws(RedisError) -> RedisConnection {
        do {
            return try await open()
        } catch {
            let waiter = state.withLock { state -> Waiter? in
                if let waiter = state.waiters.popFirst() { return waiter }
                state.busy -= 1
                return nil
            }
            // A waiter inherits the slot and tries itself (the server may be back by then).
            waiter?.continuation.resume(returning: .slot)
            throw error
        }
    }

    /// Connects, retrying with backoff while the server is unreachable or loading, until the reconnect deadline.
    func open() async throws(RedisError) -> RedisConnection {
        let deadline = ContinuousClock.now + configuration.reconnectTimeout
        var attempt = 0
        while true {
            do {
                return try await RedisConnection.connect(connectionConfiguration, eventLoopGroup: eventLoopGroup, logger: logger)
            } catch {
                let retryable =
                    error.code == .unreachable || error.code == .connectionClosed || error.code == .timeout
                    || error.prefix == "LOADING" || error.prefix == "BUSY" || error.prefix == "MASTERDOWN"
                let remaining = deadline - ContinuousClock.now
                guard retryable, !Task.isCancelled, remaining > .zero, state.withLock({ !$0.closed }) else { throw error }
                let delay = min(configuration.backoff.delay(attempt: attempt), remaining)
                if attempt == 0 {
                    logger.warning(
                        "cannot reach Redis, retrying",
                        metadata: ["ferry.address": "\(connectionConfiguration.address)", "ferry.error": "\(error.message)"])
                }
                attempt += 1
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw RedisError(.cancelled, "stopped reconnecting to Redis", address: connectionConfiguration.address)
                }
            }
        }
    }

    /// Pings connections idle for longer than the keep-alive interval and closes those idle past the timeout
    /// (keeping the minimum); then opens connections up to the minimum.
    func maintain() async {
        let now = ContinuousClock.now
        let (expired, toPing) = state.withLock { state -> ([RedisConnection], [RedisConnection]) in
            var expired: [RedisConnection] = []
            var ping: [RedisConnection] = []
            var keep: [Idle] = []
            for idle in state.idle {
                if !idle.connection.isActive {
                    expired.append(idle.connection)
                } else if now - idle.since > configuration.idleTimeout && keep.count + state.busy >= configuration.minimumConnections {
                    expired.append(idle.connection)
                } else if now - idle.since > configuration.keepAliveInterval {
                    ping.append(idle.connection)
                    state.busy += 1
                } else {
                    keep.append(idle)
                }
            }
            state.idle = keep
            return (expired, ping)
        }
        for connection in expired { await connection.close() }
        for connection in toPing {
            _ = try? await connection.send(RawCommand("PING"))
            release(connection)
        }
        while state.withLock({ state -> Bool in
            guard !state.closed, state.idle.count + state.busy < configuration.minimumConnections else { return false }
            state.busy += 1
            return true
        }) {
            guard let connection = try? await openCountingFailure() else { return }
            release(connection)
        }
    }

    /// Closes every connection and fails waiters; later leases fail.
    func close() async {
        let (idle, waiters) = state.withLock { state -> ([RedisConnection], Deque<Waiter>) in
            state.closed = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle.map(\.connection), state.waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: RedisError(.poolClosed, "the Redis client was shut down", address: connectionConfiguration.address))
        }
        for connection in idle { await connection.close() }
    }

    /// Idle and busy counts, for tests and metrics.
    package var counts: (idle: Int, busy: Int) { state.withLock { ($0.idle.count, $0.busy) } }
}
