/// Environment variables of the original design that override keys of `ferry.yaml`.
///
/// The names come from the seed projects' `.env` files, so their users can keep them.
public enum EnvironmentOverrides {
    public struct Override: Sendable {
        public let variable: String
        public let path: [String]
    }

    public static let all: [Override] = [
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
    ]

    /// Applies every override whose variable is set (and not empty) to `node`.
    public static func apply(to node: ConfigNode, environment: [String: String]) -> ConfigNode {
        var result = node
        for override in all {
            guard let value = environment[override.variable], !value.isEmpty else { continue }
            result = result.setting(.scalar(value, .environment(override.variable)), at: override.path[...])
        }
        return result
    }
}
