/// Everything Ferry is configured with, read from `ferry.yaml`, `.env` and the environment.
///
/// Reading lives in ``ConfigLoader``; this type and its parts only hold values and their defaults.
package struct FerryConfiguration: Sendable {
    /// Logging: level, format, optional file.
    package var log: LogSettings = .init()
    /// The HTTP server of `ferry run`: health, metrics, later the APIs.
    package var http: HTTPSettings = .init()
    /// The PostgreSQL database Ferry writes to (`PG_*`).
    package var postgres: PostgresEndpoint?
    /// The Redis server used as the durable queue (`REDIS_*`).
    package var redis: RedisEndpoint?
    /// The SQL Server source of the original design (`MSSQL_*`).
    package var sqlserver: SQLServerEndpoint?
    /// More source databases, by name, for pipelines that read from elsewhere.
    package var sources: [String: SourceEndpoint] = [:]
    /// Defaults shared by every pipeline (`SYNC_INTERVAL`, `BATCH_SIZE`).
    package var sync: SyncSettings = .init()
    /// Table sync pipelines.
    package var pipelines: [PipelineConfiguration] = []
    /// The Redis → PostgreSQL sync, when a `redis_sync:` section (or one of its variables) is present.
    package var redisSync: RedisSyncConfiguration?
    /// The HA cluster's control API and agent, when a `cluster:` section is present.
    package var cluster: ClusterConfiguration?
    /// `backup:`, when present.
    package var backup: BackupConfiguration?
    /// `api:`, when present: `ferry run` serves the whole HTTP API (openapi.yaml) with tokens and audit.
    package var api: APISettings?

    package init() {}

    /// Every server this configuration talks to, named as in the file, in a stable order.
    package var endpoints: [(name: String, endpoint: Endpoint)] {
        var result: [(String, Endpoint)] = []
        if let postgres { result.append(("postgres", .postgres(postgres))) }
        if let redis { result.append(("redis", .redis(redis))) }
        if let sqlserver { result.append(("sqlserver", .sqlserver(sqlserver))) }
        for name in sources.keys.sorted() {
            switch sources[name]! {
            case .postgres(let endpoint): result.append(("sources.\(name)", .postgres(endpoint)))
            case .sqlserver(let endpoint): result.append(("sources.\(name)", .sqlserver(endpoint)))
            }
        }
        return result
    }
}

/// A server Ferry connects to.
package enum Endpoint: Sendable {
    case postgres(PostgresEndpoint)
    case redis(RedisEndpoint)
    case sqlserver(SQLServerEndpoint)

    /// `host:port`, for messages.
    package var address: String {
        switch self {
        case .postgres(let e): "\(e.host):\(e.port)"
        case .redis(let e): "\(e.host):\(e.port)"
        case .sqlserver(let e): "\(e.host):\(e.port)"
        }
    }

    package var kind: String {
        switch self {
        case .postgres: "postgresql"
        case .redis: "redis"
        case .sqlserver: "sqlserver"
        }
    }
}

/// A named source database for pipelines.
package enum SourceEndpoint: Sendable {
    case postgres(PostgresEndpoint)
    case sqlserver(SQLServerEndpoint)
}

/// Log output settings.
package struct LogSettings: Sendable, Equatable {
    package enum Format: String, Sendable, CaseIterable { case text, json }
    package enum Level: String, Sendable, CaseIterable { case trace, debug, info, notice, warning, error, critical }

    /// Default `info`; `LOG_LEVEL` overrides.
    package var level: Level = .info
    /// `text` (readable lines) or `json` (one object per line). Default `text`.
    package var format: Format = .text
    /// Also append log lines to this file (for example `logs/sync.log`). Default: none.
    package var file: String?

    package init() {}
}

/// Where `ferry run` serves HTTP.
package struct HTTPSettings: Sendable, Equatable {
    /// Default `127.0.0.1`: health and metrics stay local unless asked otherwise.
    package var host: String = "127.0.0.1"
    /// Default 9620.
    package var port: Int = 9620
    /// Set `enabled: false` to run without an HTTP server.
    package var enabled: Bool = true
    /// PEM files: with both, the server speaks HTTPS only.
    package var tlsCertificate: String?
    package var tlsKey: String?
    /// Binding beyond loopback without TLS or without tokens is refused unless this is set.
    package var allowInsecure = false

    package init() {}

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
    package var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }
}

/// `api:` — the HTTP API of `ferry run` (jobs, tokens, audit; docs/API.md).
package struct APISettings: Sendable, Equatable {
    /// The permissions file: users, their tokens' SHA-256, their permissions.
    package var permissions: String = ""
    /// The audit log's JSON lines file (the events also go to `ferry_api.audit` in `postgres:`).
    package var auditLog: String = "ferry-audit.jsonl"
    /// Jobs of each kind that may run at once (more is a 429).
    package var maxJobs: [String: Int] = ["extract": 2, "sync": 4, "reconcile": 1]
    /// The query library `POST /extract` runs from.
    package var queriesPath: String = "queries"
    package var configPath: String = "config"
    /// Local extraction destinations must be under this directory (Volumes are always allowed).
    package var extractRoot: String = "exports"

    package init() {}
}

/// Defaults shared by all pipelines.
package struct SyncSettings: Sendable, Equatable {
    /// How often a producer polls its source. Default 1s; `SYNC_INTERVAL` (seconds) overrides.
    package var interval: Duration = .seconds(1)
    /// Rows per batch. Default 5000; `BATCH_SIZE` overrides.
    package var batchSize: Int = 5000

    package init() {}
}
