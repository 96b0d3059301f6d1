extension FerryConfiguration {
    /// Reads and validates the whole tree; problems are recorded in `reader.issues`, never thrown one by one.
    package static func read(_ root: ConfigReader) -> FerryConfiguration {
        var config = FerryConfiguration()
        config.log = LogSettings.read(root.section("log"))
        config.http = HTTPSettings.read(root.section("http"))
        let api = root.section("api")
        if api.isPresent { config.api = APISettings.read(api) }
        let postgres = root.section("postgres")
        if postgres.isPresent { config.postgres = PostgresEndpoint.read(postgres) }
        let redis = root.section("redis")
        if redis.isPresent { config.redis = RedisEndpoint.read(redis) }
        let sqlserver = root.section("sqlserver")
        if sqlserver.isPresent { config.sqlserver = SQLServerEndpoint.read(sqlserver) }
        for (name, reader) in root.namedSections("sources") {
            if let source = SourceEndpoint.read(reader) { config.sources[name] = source }
        }
        config.sync = SyncSettings.read(root.section("sync"))
        let pipelineReaders = root.sections("pipelines")
        let pipelines = pipelineReaders.compactMap { reader in
            PipelineConfiguration.read(reader, config: config).map { (path: reader.path, pipeline: $0) }
        }
        config.pipelines = pipelines.map(\.pipeline)
        let redisSync = root.section("redis_sync")
        if redisSync.isPresent {
            config.redisSync = RedisSyncConfiguration.read(redisSync, sync: config.sync)
            if config.postgres == nil {
                root.issues.add("postgres", "missing", fix: "the Redis sync writes to PostgreSQL: add a `postgres:` section or set PG_HOST")
            }
            if config.redis == nil {
                root.issues.add("redis", "missing", fix: "the Redis sync reads from Redis: add a `redis:` section or set REDIS_HOST")
            }
        }
        let cluster = root.section("cluster")
        if cluster.isPresent { config.cluster = ClusterConfiguration.read(cluster) }
        config.backup = readBackup(root, postgres: config.postgres)
        if config.api != nil, config.postgres == nil {
            root.issues.add("postgres", "missing", fix: "the API keeps its jobs and audit in PostgreSQL: add a `postgres:` section or set PG_HOST")
        }
        root.finish()
        config.validatePipelines(paths: pipelines.map(\.path), declared: pipelineReaders.count, issues: root.issues)
        return config
    }

    /// The `backup:` section (and the top-level `postgres` it falls back to), for `ferry backup`: the rest of the file is
    /// not read, so a problem elsewhere does not stop a backup.
    package static func readBackupOnly(_ root: ConfigReader) -> FerryConfiguration {
        var config = FerryConfiguration()
        let postgres = root.section("postgres")
        if postgres.isPresent { config.postgres = PostgresEndpoint.read(postgres) }
        config.backup = readBackup(root, postgres: config.postgres)
        if config.backup == nil, root.issues.all.isEmpty {
            root.issues.add("backup", "missing", fix: "add a `backup:` section (see examples/ferry.yaml), or pass --repository and --data-directory")
        }
        return config
    }

    static func readBackup(_ root: ConfigReader, postgres: PostgresEndpoint?) -> BackupConfiguration? {
        let section = root.section("backup")
        guard section.isPresent, let backup = BackupConfiguration.read(section) else { return nil }
        if backup.postgres == nil, postgres == nil {
            root.issues.add(
                "backup.postgres", "missing",
                fix: "add `backup.postgres` or a top-level `postgres:` section: the backup starts and stops on that server")
        }
        return backup
    }

    private func validatePipelines(paths: [String], declared: Int, issues: ConfigIssues) {
        var seen: [String: String] = [:]
        for (path, pipeline) in zip(paths, pipelines) {
            if let first = seen[pipeline.name] {
                issues.add("\(path).name", "\"\(pipeline.name)\" is also the name of \(first)", fix: "give every pipeline its own name")
            }
            seen[pipeline.name] = path
            let connection = pipeline.source.connection
            let known = connection == "postgres" ? postgres != nil : connection == "sqlserver" ? sqlserver != nil : sources[connection] != nil
            if !known {
                let names = (["postgres", "sqlserver"] + sources.keys.sorted()).map { "`\($0)`" }.joined(separator: ", ")
                issues.add(
                    "\(path).source.connection", "\"\(connection)\" is not configured", fix: "add a `\(connection)` section or use one of \(names)")
            }
        }
        if declared > 0 {
            if postgres == nil { issues.add("postgres", "missing", fix: "pipelines write to PostgreSQL: add a `postgres:` section or set PG_HOST") }
            if redis == nil { issues.add("redis", "missing", fix: "pipelines queue rows in Redis: add a `redis:` section or set REDIS_HOST") }
        }
    }
}

extension LogSettings {
    static func read(_ reader: ConfigReader) -> LogSettings {
        var settings = LogSettings()
        if let level = reader.choice("level", as: Level.self) { settings.level = level }
        if let format = reader.choice("format", as: Format.self) { settings.format = format }
        settings.file = reader.string("file")
        reader.finish()
        return settings
    }
}

extension HTTPSettings {
    static func read(_ reader: ConfigReader) -> HTTPSettings {
        var settings = HTTPSettings()
        if let host = reader.string("host") { settings.host = host }
        if let port = reader.int("port", range: 0...65535) { settings.port = port }
        if let enabled = reader.bool("enabled") { settings.enabled = enabled }
        settings.tlsCertificate = reader.string("tls_certificate")
        settings.tlsKey = reader.string("tls_key")
        if (settings.tlsCertificate == nil) != (settings.tlsKey == nil) {
            reader.issues.add(
                reader.keyPath(settings.tlsCertificate == nil ? "tls_certificate" : "tls_key"), "missing",
                fix: "give both tls_certificate and tls_key (PEM files), or neither")
        }
        if let insecure = reader.bool("allow_insecure") { settings.allowInsecure = insecure }
        reader.finish()
        return settings
    }
}

extension APISettings {
    static func read(_ reader: ConfigReader) -> APISettings {
        var settings = APISettings()
        if let path = reader.string("permissions", required: "name the permissions file, e.g. `permissions: config/permissions.yaml` (docs/API.md)") {
            settings.permissions = path
        }
        if let path = reader.string("audit_log") { settings.auditLog = path }
        let limits = reader.section("max_jobs")
        for kind in ["extract", "sync", "reconcile"] {
            if let value = limits.int(kind, range: 1...64) { settings.maxJobs[kind] = value }
        }
        limits.finish()
        if let path = reader.string("queries_path") { settings.queriesPath = path }
        if let path = reader.string("config_path") { settings.configPath = path }
        if let path = reader.string("extract_root") { settings.extractRoot = path }
        reader.finish()
        return settings
    }
}

extension SyncSettings {
    static func read(_ reader: ConfigReader) -> SyncSettings {
        var settings = SyncSettings()
        if let interval = reader.duration("interval", minimum: .milliseconds(10)) { settings.interval = interval }
        if let batch = reader.int("batch_size", range: 1...1_000_000) { settings.batchSize = batch }
        reader.finish()
        return settings
    }
}

extension PostgresEndpoint {
    static func read(_ reader: ConfigReader) -> PostgresEndpoint {
        var endpoint = PostgresEndpoint()
        if let host = reader.string("host") { endpoint.host = host }
        if let port = reader.int("port", range: 1...65535) { endpoint.port = port }
        if let database = reader.string("database", required: "name the database, e.g. `database: syncdb`") { endpoint.database = database }
        if let user = reader.string("user", required: "name the role to log in as, e.g. `user: ferry`") { endpoint.user = user }
        endpoint.password = reader.secret("password")
        if let schema = reader.string("schema") { endpoint.schema = schema }
        if let tls = reader.choice("tls", as: TLSMode.self) { endpoint.tls = tls }
        if let timeout = reader.duration("connect_timeout", minimum: .milliseconds(100)) { endpoint.connectTimeout = timeout }
        reader.finish()
        return endpoint
    }
}

extension RedisEndpoint {
    static func read(_ reader: ConfigReader) -> RedisEndpoint {
        var endpoint = RedisEndpoint()
        if let host = reader.string("host") { endpoint.host = host }
        if let port = reader.int("port", range: 1...65535) { endpoint.port = port }
        endpoint.user = reader.string("user")
        endpoint.password = reader.secret("password")
        if let db = reader.int("db", range: 0...10_000, fix: "use a database index such as 0 (Redis has 16 by default)") { endpoint.db = db }
        if let tls = reader.bool("tls") { endpoint.tls = tls }
        if let timeout = reader.duration("connect_timeout", minimum: .milliseconds(100)) { endpoint.connectTimeout = timeout }
        if let hint = reader.bool("idle_tick_hint") { endpoint.idleTickHint = hint }
        reader.finish()
        return endpoint
    }
}

extension SQLServerEndpoint {
    static func read(_ reader: ConfigReader, allowView: Bool = true) -> SQLServerEndpoint {
        var endpoint = SQLServerEndpoint()
        if let host = reader.string("host", required: "name the SQL Server, e.g. `host: 10.0.0.6`") { endpoint.host = host }
        if let port = reader.int("port", range: 1...65535) { endpoint.port = port }
        if let database = reader.string("database", required: "name the database, e.g. `database: g_FACU`") { endpoint.database = database }
        if let user = reader.string("user", required: "name the login, e.g. `user: INV`") { endpoint.user = user }
        endpoint.password = reader.secret("password")
        if allowView { endpoint.view = reader.string("view") }
        if let timeout = reader.duration("connect_timeout", minimum: .milliseconds(100)) { endpoint.connectTimeout = timeout }
        if let version = reader.choice("tds_version", as: SQLServerEndpoint.TDSVersion.self) { endpoint.tdsVersion = version }
        if let timeout = reader.duration("query_timeout", minimum: .seconds(1)) { endpoint.queryTimeout = timeout }
        if let encryption = reader.choice("encryption", as: SQLServerEndpoint.Encryption.self) { endpoint.encryption = encryption }
        endpoint.caFile = reader.string("ca_file")
        reader.finish()
        return endpoint
    }
}

extension SourceEndpoint {
    enum Kind: String, CaseIterable { case postgres, sqlserver }

    static func read(_ reader: ConfigReader) -> SourceEndpoint? {
        guard let kind = reader.choice("type", as: Kind.self) else {
            if !reader.has("type") {
                reader.issues.add(reader.keyPath("type"), "missing", fix: "say which database this is: `type: postgres` or `type: sqlserver`")
            }
            return nil
        }
        switch kind {
        case .postgres: return .postgres(PostgresEndpoint.read(reader))
        case .sqlserver: return .sqlserver(SQLServerEndpoint.read(reader, allowView: false))
        }
    }
}

extension PipelineConfiguration {
    /// `change_tracking: true` reads a SQL Server table's Change Tracking: no watermark, lookback or NULL-watermark
    /// policy goes with it, and neither does a query or a PostgreSQL source.
    private static func checkChangeTracking(_ reader: ConfigReader, connection: String, config: FerryConfiguration, query: String?) {
        let isSQLServer: Bool
        switch config.sources[connection] {
        case .sqlserver: isSQLServer = true
        case .postgres: isSQLServer = false
        case nil: isSQLServer = connection == "sqlserver"
        }
        if !isSQLServer {
            reader.issues.add(
                reader.keyPath("change_tracking"), "is SQL Server's Change Tracking; source.connection \"\(connection)\" is not a SQL Server",
                fix: "remove it and name a `watermark` column", origin: reader.origin("change_tracking"))
        }
        if query != nil {
            reader.issues.add(
                reader.keyPath("change_tracking"), "reads a table's changes; this source is a `query`",
                fix: "name the table under `table` (its primary key as `key`), or drop change_tracking and name a `watermark`",
                origin: reader.origin("change_tracking"))
        }
        for key in ["watermark", "lookback", "lookback_every", "null_watermark"] where reader.has(key) {
            reader.issues.add(
                reader.keyPath(key),
                "does not go with change_tracking: Change Tracking's versions are the watermark, and no change commits behind them",
                fix: "remove `\(key)`", origin: reader.origin(key))
        }
    }

    static func read(_ reader: ConfigReader, config: FerryConfiguration) -> PipelineConfiguration? {
        let name = reader.string("name", required: "give the pipeline a short name, e.g. `name: ventas`")
        if let name, !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) {
            reader.issues.add(
                reader.keyPath("name"), "\"\(name)\" has characters Ferry uses in Redis keys", fix: "use letters, digits, `_` and `-`",
                origin: reader.origin("name"))
        }

        let sourceReader = reader.section("source")
        let defaultConnection = config.sqlserver != nil ? "sqlserver" : "postgres"
        let connection = sourceReader.string("connection") ?? defaultConnection
        let table = sourceReader.string("table") ?? (connection == "sqlserver" ? config.sqlserver?.view : nil)
        let query = sourceReader.string("query")
        if table == nil && query == nil {
            sourceReader.issues.add(sourceReader.keyPath("table"), "missing", fix: "name the view or table to read (or give a `query`)")
        } else if sourceReader.has("table") && query != nil {
            sourceReader.issues.add(sourceReader.keyPath("query"), "given together with `table`", fix: "keep either `table` or `query`")
        }
        let key = sourceReader.strings("key") ?? []
        if key.isEmpty, !sourceReader.has("key") {
            sourceReader.issues.add(sourceReader.keyPath("key"), "missing", fix: "name the column(s) that identify a row, e.g. `key: [CONDUCE]`")
        }
        let changeTracking = sourceReader.bool("change_tracking") ?? false
        let watermark: String?
        if changeTracking {
            Self.checkChangeTracking(sourceReader, connection: connection, config: config, query: query)
            watermark = Source.changeVersionColumn
        } else {
            watermark = sourceReader.string(
                "watermark",
                required:
                    "name the column that grows when a row changes, e.g. `watermark: ULTIMA_MODIFICACION` (or, on SQL Server, `change_tracking: true`)"
            )
        }
        var source = Source(connection: connection, table: table, query: query, key: key, watermark: watermark ?? "")
        source.changeTracking = changeTracking
        if changeTracking { source.lookback = .zero }
        if let lookback = sourceReader.duration("lookback") { source.lookback = lookback }
        if let every = sourceReader.duration("lookback_every", minimum: .milliseconds(10)) {
            if every >= source.lookback, source.lookback > .zero {
                sourceReader.issues.add(
                    sourceReader.keyPath("lookback_every"), "must be shorter than lookback (\(DurationParser.format(source.lookback)))",
                    fix: "use a fraction of lookback, e.g. `lookback_every: \(DurationParser.format(source.lookback / 10))`",
                    origin: sourceReader.origin("lookback_every"))
            }
            source.lookbackEvery = every
        }
        if let policy = sourceReader.choice("null_watermark", as: NullWatermarkPolicy.self) { source.nullWatermark = policy }
        sourceReader.finish()

        let targetReader = reader.section("target")
        let targetTable = targetReader.string("table", required: "name the mirror table to write, e.g. `table: datos_vista`")
        let schema = targetReader.string("schema") ?? config.postgres?.schema ?? "public"
        let rowID = targetReader.string("row_id")
        let readers = Self.roles(targetReader, "readers")
        targetReader.finish()

        var columns: [ColumnMapping] = []
        for (sourceName, node) in reader.entries("columns") {
            let path = "\(reader.keyPath("columns")).\(sourceName)"
            switch node {
            case .scalar(let text, let origin):
                if text == "exclude" {
                    columns.append(ColumnMapping(source: sourceName, exclude: true))
                } else if text.isEmpty {
                    reader.issues.add(path, "empty", fix: "write the mirror column name, `exclude`, or `{name: …, type: …}`", origin: origin)
                } else {
                    columns.append(ColumnMapping(source: sourceName, name: text))
                }
            default:
                let columnReader = ConfigReader(node: node, path: path, issues: reader.issues)
                let mapping = ColumnMapping(
                    source: sourceName,
                    name: columnReader.string("name"),
                    type: columnReader.typeName("type"),
                    exclude: columnReader.bool("exclude") ?? false
                )
                columnReader.finish()
                columns.append(mapping)
            }
        }
        for excluded in reader.strings("exclude") ?? [] where !columns.contains(where: { $0.source == excluded }) {
            columns.append(ColumnMapping(source: excluded, exclude: true))
        }

        var companion: Companion?
        let companionReader = reader.section("companion")
        if companionReader.isPresent {
            let companionTable = companionReader.string("table", required: "name the editable table, e.g. `table: datos_seguimiento`")
            var editable: [(name: String, type: String)] = []
            for (column, node) in companionReader.entries("columns") {
                guard case .scalar(let type, _) = node, !type.isEmpty else {
                    companionReader.issues.add(
                        "\(companionReader.keyPath("columns")).\(column)", "missing type", fix: "write `\(column): text` (any PostgreSQL type)",
                        origin: node.origin)
                    continue
                }
                if let problem = PostgresTypeName.problem(type) {
                    companionReader.issues.add(
                        "\(companionReader.keyPath("columns")).\(column)",
                        "\"\(PrintableText.escaped(type))\" is not a PostgreSQL type name: it \(problem)",
                        fix: "write a type such as text, bigint, numeric(12,2), timestamp with time zone or text[]", origin: node.origin)
                    continue
                }
                editable.append((column, type))
            }
            let editors = Self.roles(companionReader, "editors")
            if editable.isEmpty, !companionReader.has("columns") {
                companionReader.issues.add(
                    companionReader.keyPath("columns"), "missing", fix: "list the editable columns and their types, e.g. `nota: text`")
            }
            companionReader.finish()
            if let companionTable {
                companion = Companion(table: companionTable, columns: editable)
                companion?.editors = editors
            }
        }

        let batchSize = reader.int("batch_size", range: 1...1_000_000) ?? config.sync.batchSize
        let interval = reader.duration("interval", minimum: .milliseconds(10)) ?? config.sync.interval
        let rowsPerEntry = reader.int("rows_per_entry", range: 1...100_000)
        let consumers = reader.int("consumers", range: 1...64)
        let maxDeliveries = reader.int("max_deliveries", range: 1...1000)
        let claimIdle = reader.duration("claim_idle", minimum: .milliseconds(100))
        let stallAfter = reader.duration("stall_after", minimum: .seconds(1))
        let maxWait = reader.duration("max_wait", minimum: .milliseconds(1))
        let applyBatchRows = reader.int("apply_batch_rows", range: 1...1_000_000)
        let applyTimeout = reader.duration("apply_timeout", minimum: .seconds(1))
        let protectMirror = reader.bool("protect_mirror")
        let widenColumns = reader.bool("widen_columns")
        let reconcileEvery = reader.duration("reconcile_every", minimum: .seconds(1))
        reader.finish()

        guard let name, let targetTable, watermark != nil, !key.isEmpty, table != nil || query != nil else { return nil }
        var pipeline = PipelineConfiguration(
            name: name,
            source: source,
            target: Target(schema: schema, table: targetTable, rowID: rowID),
            batchSize: batchSize,
            interval: interval
        )
        pipeline.target.readers = readers
        pipeline.columns = columns
        pipeline.companion = companion
        if let rowsPerEntry { pipeline.rowsPerEntry = rowsPerEntry }
        if let consumers { pipeline.consumers = consumers }
        if let maxDeliveries { pipeline.maxDeliveries = maxDeliveries }
        if let claimIdle { pipeline.claimIdle = claimIdle }
        if let stallAfter { pipeline.stallAfter = stallAfter }
        if let maxWait { pipeline.maxWait = maxWait }
        if let applyBatchRows { pipeline.applyBatchRows = applyBatchRows }
        if let applyTimeout { pipeline.applyTimeout = applyTimeout }
        if let protectMirror { pipeline.protectMirror = protectMirror }
        if let widenColumns { pipeline.widenColumns = widenColumns }
        pipeline.reconcileEvery = reconcileEvery
        return pipeline
    }

    /// A list of PostgreSQL role names (`target.readers`, `companion.editors`).
    static func roles(_ reader: ConfigReader, _ key: String) -> [String] {
        var roles: [String] = []
        for (index, role) in (reader.strings(key) ?? []).enumerated() {
            if role.utf8.count > 63 || role.contains("\0") {
                reader.issues.add(
                    "\(reader.keyPath(key))[\(index)]", "\"\(PrintableText.escaped(role))\" is not a PostgreSQL role name (at most 63 bytes)",
                    fix: "name an existing role", origin: reader.origin(key))
                continue
            }
            if !roles.contains(role) { roles.append(role) }
        }
        return roles
    }
}
