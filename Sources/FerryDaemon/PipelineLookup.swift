package import FerryCore
package import FerryRedis
package import Logging

/// Finding a configured pipeline, and the Redis client every sync job and command shares.
package enum PipelineLookup {
    package static func find(_ name: String, in configuration: FerryConfiguration) throws(FerryError) -> PipelineConfiguration {
        if let pipeline = configuration.pipelines.first(where: { $0.name == name }) { return pipeline }
        let names = configuration.pipelines.map(\.name)
        throw FerryError(
            .configuration,
            "no pipeline named \"\(name)\"" + (names.isEmpty ? " (the configuration has no pipelines)" : ""),
            fix: names.isEmpty ? "add one under `pipelines:` (see examples/ventas.yaml)" : "use one of: \(names.joined(separator: ", "))"
        )
    }

    /// The queue's Redis client: it reconnects for up to a minute before a request fails.
    package static func redisClient(_ configuration: FerryConfiguration, logger: Logger) throws(FerryError) -> RedisClient {
        guard let redis = configuration.redis else {
            throw FerryError(.configuration, "redis: missing — pipelines queue rows in Redis", fix: "add a `redis:` section or set REDIS_HOST")
        }
        var clientConfiguration = RedisClient.Configuration(connection: RedisConnectionConfiguration(redis))
        clientConfiguration.reconnectTimeout = .seconds(60)
        return RedisClient(configuration: clientConfiguration, logger: logger)
    }
}
