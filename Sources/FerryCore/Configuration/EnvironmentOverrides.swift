/// Environment variables of the original design that override keys of `ferry.yaml`.
///
/// The names come from the seed projects' `.env` files, so their users can keep them.
package enum EnvironmentOverrides {
    package struct Override: Sendable {
        package let variable: String
        package let path: [String]
    }

    package static let all: [Override] = [
        .init(variable: "MSSQL_HOST", path: ["sqlserver", "host"]),
        .init(variable: "MSSQL_PORT", path: ["sqlserver", "port"]),
        .init(variable: "MSSQL_DATABASE", path: ["sqlserver", "database"]),
        .init(variable: "MSSQL_USER", path: ["sqlserver", "user"]),
        .init(variable: "MSSQL_PASSWORD", path: ["sqlserver", "password"]),
        .init(variable: "MSSQL_VIEW", path: ["sqlserver", "view"]),
        .init(variable: "PG_HOST", path: ["postgres", "host"]),
        .init(variable: "PG_PORT", path: ["postgres", "port"]),
        .init(variable: "PG_DATABASE", path: ["postgres", "database"]),
        .init(variable: "PG_USER", path: ["postgres", "user"]),
        .init(variable: "PG_PASSWORD", path: ["postgres", "password"]),
        .init(variable: "PG_SCHEMA", path: ["postgres", "schema"]),
        .init(variable: "REDIS_HOST", path: ["redis", "host"]),
        .init(variable: "REDIS_PORT", path: ["redis", "port"]),
        .init(variable: "REDIS_PASSWORD", path: ["redis", "password"]),
        .init(variable: "REDIS_DB", path: ["redis", "db"]),
        .init(variable: "SYNC_INTERVAL", path: ["sync", "interval"]),
        .init(variable: "BATCH_SIZE", path: ["sync", "batch_size"]),
        .init(variable: "LOG_LEVEL", path: ["log", "level"]),
        // The Redis → PostgreSQL sync (seed 02).
        .init(variable: "REDIS_DB_SEARCH_RANGE", path: ["redis_sync", "databases"]),
        .init(variable: "REDIS_RATE_LIMIT", path: ["redis_sync", "rate_limit"]),
        .init(variable: "REDIS_MAX_RETRIES", path: ["redis_sync", "redis_retry", "max_retries"]),
        .init(variable: "REDIS_BACKOFF_BASE", path: ["redis_sync", "redis_retry", "backoff_base"]),
        .init(variable: "REDIS_BACKOFF_MAX", path: ["redis_sync", "redis_retry", "backoff_max"]),
        .init(variable: "PG_MAX_RETRIES", path: ["redis_sync", "postgres_retry", "max_retries"]),
        .init(variable: "PG_BACKOFF_BASE", path: ["redis_sync", "postgres_retry", "backoff_base"]),
        .init(variable: "PG_BACKOFF_MAX", path: ["redis_sync", "postgres_retry", "backoff_max"]),
        .init(variable: "REDIS_STREAMS_ENABLED", path: ["redis_sync", "streams", "enabled"]),
        .init(variable: "REDIS_STREAMS", path: ["redis_sync", "streams", "keys"]),
        .init(variable: "STREAM_CONSUMER_GROUP", path: ["redis_sync", "streams", "group"]),
        .init(variable: "STREAM_CONSUMER_NAME", path: ["redis_sync", "streams", "consumer"]),
        .init(variable: "STREAM_BATCH_SIZE", path: ["redis_sync", "streams", "batch_size"]),
        .init(variable: "STREAM_POLL_INTERVAL", path: ["redis_sync", "streams", "poll_interval"]),
        .init(variable: "STREAM_AUTO_DISCOVERY", path: ["redis_sync", "streams", "discovery"]),
        .init(variable: "STREAM_DISCOVERY_PATTERNS", path: ["redis_sync", "streams", "patterns"]),
        .init(variable: "STREAM_DISCOVERY_INTERVAL", path: ["redis_sync", "streams", "discovery_interval"]),
        .init(variable: "STREAM_AUTO_CREATE_CONSUMER_GROUPS", path: ["redis_sync", "streams", "create_groups"]),
        .init(variable: "STREAM_CONFLICT_OVERWRITE", path: ["redis_sync", "streams", "conflict_overwrite"]),
        .init(variable: "STREAM_TABLE_NAME", path: ["redis_sync", "streams", "table"]),
        .init(variable: "KEY_VALUE_AUTO_DISCOVERY", path: ["redis_sync", "key_values", "enabled"]),
        .init(variable: "KEY_VALUE_PATTERNS", path: ["redis_sync", "key_values", "patterns"]),
        .init(variable: "KEY_VALUE_TABLE_NAME", path: ["redis_sync", "key_values", "table"]),
    ]

    /// Applies every override whose variable is set (and not empty) to `node`.
    package static func apply(to node: ConfigNode, environment: [String: String]) -> ConfigNode {
        var result = node
        for override in all {
            guard let value = environment[override.variable], !value.isEmpty else { continue }
            result = result.setting(.scalar(value, .environment(override.variable)), at: override.path[...])
        }
        return result
    }
}
