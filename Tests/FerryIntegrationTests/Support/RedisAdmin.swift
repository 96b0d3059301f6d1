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
}
