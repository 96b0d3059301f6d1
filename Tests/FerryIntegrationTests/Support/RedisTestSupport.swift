import FerryCore
import FerryPostgresNode
import FerryRESP
import FerryRedis
import FerrySandbox
import Logging
import NIOCore
import Synchronization
import Testing

extension RedisInstance {
    func connectionConfiguration(database: Int = 0, resp3: Bool = true) -> RedisConnectionConfiguration {
        var configuration = RedisConnectionConfiguration(endpoint)
        configuration.database = database
        configuration.preferRESP3 = resp3
        return configuration
    }

    func connect(database: Int = 0, resp3: Bool = true, adjust: (inout RedisConnectionConfiguration) -> Void = { _ in }) async throws
        -> RedisConnection
    {
        var configuration = connectionConfiguration(database: database, resp3: resp3)
        adjust(&configuration)
        return try await RedisConnection.connect(configuration, logger: Logger(label: "ferry.test.redis"))
    }

    func client(adjust: (inout RedisClient.Configuration) -> Void = { _ in }) -> RedisClient {
        var configuration = RedisClient.Configuration(connection: connectionConfiguration())
        adjust(&configuration)
        return RedisClient(configuration: configuration, logger: Logger(label: "ferry.test.redis"))
    }
}

/// Runs `body` with a connection and closes it afterwards.
func withRedis<T>(database: Int = 0, resp3: Bool = true, _ body: (RedisConnection) async throws -> T) async throws -> T {
    let redis = try #require(try SandboxContext.require().redis)
    let connection = try await redis.connect(database: database, resp3: resp3)
    do {
        let result = try await body(connection)
        await connection.close()
        return result
    } catch {
        await connection.close()
        throw error
    }
}

/// A key unique to the calling test.
func uniqueKey(_ prefix: String = "k") -> String {
    "test:\(prefix):\(UInt64.random(in: 0..<UInt64.max))"
}

extension ByteBuffer {
    var text: String { String(buffer: self) }
}

/// A value shared between tasks of a test.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) { storage = Mutex(value) }

    var value: Value { storage.withLock { $0 } }

    func update<T>(_ body: (inout Value) -> T) -> T { storage.withLock { body(&$0) } }
}
