package import FerryCore
package import Logging
package import NIOCore
import NIOPosix
package import ServiceLifecycle
import Synchronization

/// Ferry's Redis client: a pool per database index, dedicated connections for blocking reads, reconnection
/// with backoff. Run it as a `Service` (it keeps pools warm and closes everything on shutdown), or call
/// ``shutdown()`` yourself.
package final class RedisClient: Service, Sendable {
    package struct Configuration: Sendable {
        package var connection: RedisConnectionConfiguration
        /// Connections kept open per database. Default 1.
        package var minimumConnections = 1
        /// Most connections per database. Default 8.
        package var maximumConnections = 8
        /// Idle connections beyond the minimum close after this. Default 60s.
        package var idleTimeout: Duration = .seconds(60)
        /// Idle connections are pinged this often. Default 30s.
        package var keepAliveInterval: Duration = .seconds(30)
        /// Between connection attempts. Default 100ms doubling to 5s, with jitter.
        package var backoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))
        /// How long to keep trying to connect before a lease fails. Default 30s.
        package var reconnectTimeout: Duration = .seconds(30)

        package init(connection: RedisConnectionConfiguration) {
            self.connection = connection
        }
    }

    package let configuration: Configuration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let pools = Mutex<[Int: RedisConnectionPool]>([:])
    private let dedicated = Mutex<(closed: Bool, connections: [ObjectIdentifier: RedisConnection])>((false, [:]))

    package init(configuration: Configuration, eventLoopGroup: (any EventLoopGroup)? = nil, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        var logger = logger
        logger[metadataKey: "ferry.redis"] = "\(configuration.connection.address)"
        self.logger = logger
    }

    /// The pool of `database` (default: the configured one), created on first use.
    package func pool(database: Int? = nil) -> RedisConnectionPool {
        let database = database ?? configuration.connection.database
        return pools.withLock { pools in
            if let pool = pools[database] { return pool }
            let pool = RedisConnectionPool(configuration: configuration, database: database, eventLoopGroup: eventLoopGroup, logger: logger)
            pools[database] = pool
            return pool
        }
    }

    /// Leases a connection to `database` for pipelines and transactions.
    @discardableResult
    package func withConnection<T>(database: Int? = nil, _ body: (RedisConnection) async throws -> T) async throws -> T {
        try await pool(database: database).withConnection(body)
    }

    /// Sends one command on a pooled connection.
    @discardableResult
    package func send<Command: RedisCommand>(_ command: Command, database: Int? = nil) async throws -> Command.Response {
        try await withConnection(database: database) { try await $0.send(command) }
    }

    /// Runs `body` on a connection of its own, outside the pools, for blocking reads (`XREADGROUP BLOCK`,
    /// `BLMOVE`). ``shutdown()`` closes it, which ends a blocked command at once.
    package func withDedicatedConnection<T>(database: Int? = nil, _ body: (RedisConnection) async throws -> T) async throws -> T {
        let connection = try await pool(database: database).open()
        let id = ObjectIdentifier(connection)
        let accepted = dedicated.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.connections[id] = connection
            return true
        }
        guard accepted else {
            await connection.close()
            throw RedisError(.poolClosed, "the Redis client was shut down", address: configuration.connection.address)
        }
        defer { dedicated.withLock { _ = $0.connections.removeValue(forKey: id) } }
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Keeps the pools warm until a graceful shutdown, then closes every connection.
    package func run() async throws {
        _ = pool()
        while !Task.isCancelled {
            for pool in pools.withLock({ Array($0.values) }) { await pool.maintain() }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                break
            }
            if Task.isShuttingDownGracefully { break }
        }
        await shutdown()
    }

    /// Closes every pooled and dedicated connection; pending commands fail, later calls fail.
    package func shutdown() async {
        let connections = dedicated.withLock { state -> [RedisConnection] in
            state.closed = true
            return Array(state.connections.values)
        }
        for connection in connections { await connection.close() }
        for pool in pools.withLock({ Array($0.values) }) { await pool.close() }
    }
}
