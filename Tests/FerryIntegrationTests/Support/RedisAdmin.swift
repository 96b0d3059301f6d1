import FerryCore
import FerryPostgresNode
import FerryRESP
import FerryRedis
import FerrySandbox
import Logging

/// One-off administrative commands against a sandbox Redis.
enum RedisAdmin {
    @discardableResult
    static func send(_ instance: RedisInstance, _ arguments: [String], database: Int = 0) async throws -> RESPToken {
        var configuration = RedisConnectionConfiguration(instance.endpoint)
        configuration.database = database
        let connection = try await RedisConnection.connect(configuration, logger: Logger(label: "ferry.test.redis"))
        do {
            let reply = try await connection.send(RawCommand(arguments: arguments))
            await connection.close()
            return reply
        } catch {
            await connection.close()
            throw error
        }
    }

    /// A command whose arguments are any bytes (names that are not UTF-8).
    @discardableResult
    static func send(_ instance: RedisInstance, bytes arguments: [[UInt8]], database: Int = 0) async throws -> RESPToken {
        var configuration = RedisConnectionConfiguration(instance.endpoint)
        configuration.database = database
        let connection = try await RedisConnection.connect(configuration, logger: Logger(label: "ferry.test.redis"))
        do {
            let reply = try await connection.send(BytesCommand(arguments: arguments))
            await connection.close()
            return reply
        } catch {
            await connection.close()
            throw error
        }
    }
}

/// A command of raw byte arguments.
struct BytesCommand: RedisCommand {
    typealias Response = RESPToken
    let arguments: [[UInt8]]
    var blockingTimeout: Duration? { nil }
    var name: String { String(decoding: arguments.first ?? [], as: UTF8.self).uppercased() }
    func encode(into encoder: inout RESPCommandEncoder) {
        encoder.encodeArrayHeader(count: arguments.count)
        for argument in arguments { encoder.encodeBulkBytes(argument) }
    }
}
