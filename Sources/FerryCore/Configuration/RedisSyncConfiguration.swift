/// The Redis → PostgreSQL sync (`redis_sync:`): stream entries into `redis_streams` (or mapped tables) and keys
/// into `redis_key_values`. The environment variables of the original service override its keys.
package struct RedisSyncConfiguration: Sendable, Equatable {
    /// Databases to search for streams and keys (`REDIS_DB_SEARCH_RANGE`: `0-15`, `0,2,3-5`). Default 0-15.
    package var databases: [Int] = Array(0...15)
    /// Redis operations per second at most, across the sync (`REDIS_RATE_LIMIT`); nil: unlimited.
    package var rateLimit: Double?
    /// Retries after Redis and PostgreSQL errors (`REDIS_MAX_RETRIES`, `REDIS_BACKOFF_BASE`, `REDIS_BACKOFF_MAX`, and
    /// the `PG_` ones). Default: backoff 1s up to 30s, retrying for as long as the process runs.
    package var redisRetry = Backoff(base: .seconds(1), maximum: .seconds(30))
    package var postgresRetry = Backoff(base: .seconds(1), maximum: .seconds(30))
    /// Entries waiting and none applied (or key scans not completing) for this long: the job is reported stalled
    /// (`/health/ready` 503, `ferry_job_stalled` 1) until it moves again. Default 2m.
    package var stallAfter: Duration = .seconds(120)
    package var streams = Streams()
    package var keyValues = KeyValues()

    package init() {}

    /// Stream sync settings.
    package struct Streams: Sendable, Equatable {
        /// Default true; `REDIS_STREAMS_ENABLED`.
        package var enabled = true
        /// Streams to sync always (`REDIS_STREAMS`); `db3:name` names a stream of database 3.
        package var keys: [String] = []
        /// The consumer group (`STREAM_CONSUMER_GROUP`). Default `redis-pg-sync`.
        package var group = "redis-pg-sync"
        /// This consumer's name (`STREAM_CONSUMER_NAME`); default: the host name, so several hosts can share a group.
        package var consumer: String?
        /// Entries per read (`STREAM_BATCH_SIZE`). Default 1000.
        package var batchSize = 1000
        /// How long a read waits for new entries (`STREAM_POLL_INTERVAL`). Default 100ms.
        package var pollInterval: Duration = .milliseconds(100)
        /// Discover streams by pattern (`STREAM_AUTO_DISCOVERY`). Default true.
        package var discovery = true
        /// Glob patterns for discovery (`STREAM_DISCOVERY_PATTERNS`). Default `*`.
        package var patterns: [String] = ["*"]
        /// How often discovery runs (`STREAM_DISCOVERY_INTERVAL`). Default 10s.
        package var discoveryInterval: Duration = .seconds(10)
        /// Create the group on streams that have none (`STREAM_AUTO_CREATE_CONSUMER_GROUPS`). Default true.
        package var createGroups = true
        /// What an entry already stored does (`STREAM_CONFLICT_OVERWRITE`): keep it (default) or overwrite it.
        package var conflict: ConflictPolicy = .skip
        /// The table (`STREAM_TABLE_NAME`). Default `redis_streams`.
        package var table = "redis_streams"
        /// Consumers per Redis database in this process (they share the group, so entries are spread over them and
        /// applied in parallel transactions). Default 4: while one consumer waits for Redis or decodes, the others
        /// keep PostgreSQL busy (1M entries on 2 cores: 82k entries/s with 2, 97–100k with 3, 104–107k with 4,
        /// 104–105k with 6).
        package var consumers = 4
        /// Entries pending this long with a stopped consumer are claimed. Default 30s.
        package var claimIdle: Duration = .seconds(30)
        /// An apply that has not finished after this long has its PostgreSQL connection closed and is retried (a
        /// connection a restarted server left without an answer). `redis_sync.streams.apply_timeout`.
        package var applyTimeout: Duration = .seconds(60)
        /// Deliveries before an entry is applied alone, and solo attempts before it is a poison entry. Default 5.
        package var maxDeliveries = 5
        /// Streams that get their own series on `/metrics` (length, pending, lag, idle consumers); the others are
        /// summed into `stream="_other"`, so a client creating streams cannot grow the metrics without bound.
        /// Default 100.
        package var metricsStreamLimit = 100
        /// Streams whose fields go to the columns of a typed table instead of `redis_streams`.
        package var mappings: [StreamMapping] = []

        package init() {}
    }

    package enum ConflictPolicy: String, Sendable, CaseIterable { case skip, overwrite }

    /// Key-value sync settings.
    package struct KeyValues: Sendable, Equatable {
        /// Default true; `KEY_VALUE_AUTO_DISCOVERY`.
        package var enabled = true
        /// Glob patterns of keys to sync (`KEY_VALUE_PATTERNS`). Default `*`. Ferry's own keys (`ferry:*`) never are.
        package var patterns: [String] = ["*"]
        /// The table (`KEY_VALUE_TABLE_NAME`). Default `redis_key_values`.
        package var table = "redis_key_values"
        /// Time between full scans (`SYNC_INTERVAL`). Default 1s.
        package var interval: Duration = .seconds(1)
        /// Also follow keyspace notifications for changes between scans. Default false.
        package var notifications = false

        package init() {}
    }
}

/// A stream whose entries fill the columns of a table: `fields` maps an entry field to a column and its type.
package struct StreamMapping: Sendable, Equatable {
    /// A glob over stream names (`orders:*`).
    package var stream: String
    /// `schema.table` or `table` (then in the target schema).
    package var table: String
    package var columns: [Column]

    package struct Column: Sendable, Equatable {
        /// The entry field.
        package var field: String
        /// The column (default: the field name).
        package var column: String
        /// Its PostgreSQL type (default `text`).
        package var type: String

        package init(field: String, column: String? = nil, type: String = "text") {
            self.field = field
            self.column = column ?? field
            self.type = type
        }
    }

    package init(stream: String, table: String, columns: [Column]) {
        self.stream = stream
        self.table = table
        self.columns = columns
    }
}
