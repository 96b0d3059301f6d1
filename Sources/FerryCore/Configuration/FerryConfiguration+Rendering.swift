extension FerryConfiguration {
    /// The effective configuration as YAML, defaults included, secrets as `***`, each value annotated with
    /// where it came from when that is not the file itself (`# $PG_HOST`, `# default`).
    package func renderYAML(tree: ConfigNode?) -> String {
        var out = YAMLWriter(tree: tree)
        out.section("log") {
            $0.value("level", log.level.rawValue)
            $0.value("format", log.format.rawValue)
            $0.value("file", log.file)
        }
        out.section("http") {
            $0.value("host", http.host)
            $0.raw("port", "\(http.port)")
            $0.raw("enabled", "\(http.enabled)")
        }
        if let postgres { out.section("postgres") { $0.postgres(postgres) } }
        if let redis {
            out.section("redis") {
                $0.value("host", redis.host)
                $0.raw("port", "\(redis.port)")
                $0.value("user", redis.user)
                $0.secret("password", redis.password)
                $0.raw("db", "\(redis.db)")
                $0.raw("tls", "\(redis.tls)")
                $0.value("connect_timeout", DurationParser.format(redis.connectTimeout))
                $0.raw("idle_tick_hint", "\(redis.idleTickHint)")
            }
        }
        if let sqlserver { out.section("sqlserver") { $0.sqlserver(sqlserver) } }
        if !sources.isEmpty {
            out.section("sources") { writer in
                for name in sources.keys.sorted() {
                    writer.section(name) {
                        switch sources[name]! {
                        case .postgres(let endpoint):
                            $0.value("type", "postgres")
                            $0.postgres(endpoint)
                        case .sqlserver(let endpoint):
                            $0.value("type", "sqlserver")
                            $0.sqlserver(endpoint)
                        }
                    }
                }
            }
        }
        if let cluster {
            out.section("cluster") { writer in
                if cluster.isDefined {
                    writer.value("scope", cluster.scope)
                    writer.raw("etcd", "[" + cluster.etcd.joined(separator: ", ") + "]")
                    writer.raw("ttl", "\(cluster.ttl)")
                    writer.raw("synchronous", "\(cluster.synchronous)")
                    writer.raw("synchronous_strict", "\(cluster.synchronousStrict)")
                    writer.value("state_directory", cluster.stateDirectory)
                    writer.value("archive_repository", cluster.archiveRepository)
                    writer.value("ferry_binary", cluster.ferryBinary)
                    for (key, credentials) in [("replication", cluster.replication), ("superuser", cluster.superuser)] {
                        guard let credentials else { continue }
                        writer.section(key) {
                            $0.value("user", credentials.user)
                            $0.secret("password", credentials.password)
                        }
                    }
                } else {
                    writer.value("directory", cluster.directory)
                }
                writer.value("node", cluster.node)
                writer.secret("api_token", cluster.apiToken)
                if cluster.isDefined {
                    writer.list("nodes", cluster.nodes) { item, node in
                        item.value("name", node.name)
                        item.value("host", node.host)
                        item.raw("port", "\(node.port)")
                        item.value("data_directory", node.dataDirectory)
                        item.value("config_directory", node.configDirectory)
                        item.value("bin_directory", node.binDirectory)
                    }
                }
            }
        }
        out.section("sync") {
            $0.value("interval", DurationParser.format(sync.interval))
            $0.raw("batch_size", "\(sync.batchSize)")
        }
        if !pipelines.isEmpty {
            out.list("pipelines", pipelines) { writer, pipeline in
                writer.value("name", pipeline.name)
                writer.section("source") {
                    $0.value("connection", pipeline.source.connection)
                    $0.value("table", pipeline.source.table)
                    $0.value("query", pipeline.source.query)
                    $0.raw("key", "[" + pipeline.source.key.joined(separator: ", ") + "]")
                    if pipeline.source.changeTracking {
                        $0.raw("change_tracking", "true")
                    } else {
                        $0.value("watermark", pipeline.source.watermark)
                        $0.value("lookback", DurationParser.format(pipeline.source.lookback))
                        $0.value("lookback_every", pipeline.source.lookbackEvery.map(DurationParser.format))
                        $0.value("null_watermark", pipeline.source.nullWatermark.rawValue)
                    }
                }
                writer.section("target") {
                    $0.value("schema", pipeline.target.schema)
                    $0.value("table", pipeline.target.table)
                    $0.value("row_id", pipeline.target.rowID)
                    if !pipeline.target.readers.isEmpty {
                        $0.raw("readers", "[" + pipeline.target.readers.map(JSONText.string).joined(separator: ", ") + "]")
                    }
                }
                if !pipeline.columns.isEmpty {
                    writer.section("columns") { columns in
                        for column in pipeline.columns {
                            if column.exclude {
                                columns.value(column.source, "exclude")
                            } else if column.type == nil, let name = column.name {
                                columns.value(column.source, name)
                            } else {
                                columns.section(column.source) {
                                    $0.value("name", column.name)
                                    $0.value("type", column.type)
                                }
                            }
                        }
                    }
                }
                if let companion = pipeline.companion {
                    writer.section("companion") { section in
                        section.value("table", companion.table)
                        section.section("columns") { columns in
                            for column in companion.columns { columns.value(column.name, column.type) }
                        }
                        if !companion.editors.isEmpty {
                            section.raw("editors", "[" + companion.editors.map(JSONText.string).joined(separator: ", ") + "]")
                        }
                    }
                }
                writer.raw("batch_size", "\(pipeline.batchSize)")
                writer.value("interval", DurationParser.format(pipeline.interval))
                writer.raw("rows_per_entry", "\(pipeline.rowsPerEntry)")
                writer.raw("consumers", "\(pipeline.consumers)")
                writer.raw("max_deliveries", "\(pipeline.maxDeliveries)")
                writer.value("claim_idle", DurationParser.format(pipeline.claimIdle))
                writer.value("stall_after", DurationParser.format(pipeline.stallAfter))
                writer.value("max_wait", DurationParser.format(pipeline.maxWait))
                writer.raw("apply_batch_rows", "\(pipeline.applyBatchRows)")
                writer.value("apply_timeout", DurationParser.format(pipeline.applyTimeout))
                writer.raw("protect_mirror", "\(pipeline.protectMirror)")
                writer.raw("widen_columns", "\(pipeline.widenColumns)")
                writer.value("reconcile_every", pipeline.reconcileEvery.map(DurationParser.format))
            }
        }
        if let redisSync { out.section("redis_sync") { $0.redisSync(redisSync) } }
        if let backup {
            out.section("backup") {
                $0.value("repository", backup.repository)
                $0.value("data_directory", backup.dataDirectory)
                if let postgres = backup.postgres { $0.section("postgres") { $0.postgres(postgres) } }
                $0.value("compression", backup.compression)
                $0.raw("workers", "\(backup.workers)")
                // A catalogue URL may carry a password: only its scheme, host and database are shown.
                $0.value("catalog", backup.catalog.map(Self.withoutCredentials))
                if let keep = backup.keepFull { $0.raw("keep_full", "\(keep)") }
                if let keep = backup.keepDays { $0.raw("keep_days", "\(keep)") }
                $0.value("archive_timeout", DurationParser.format(backup.archiveTimeout))
                $0.value("full_every", backup.fullEvery.map(DurationParser.format))
                $0.value("incremental_every", backup.incrementalEvery.map(DurationParser.format))
            }
        }
        if let api {
            out.section("api") {
                $0.value("permissions", api.permissions)
                $0.value("audit_log", api.auditLog)
                $0.value("queries_path", api.queriesPath)
                $0.value("config_path", api.configPath)
                $0.value("extract_root", api.extractRoot)
                let limits = api.maxJobs
                $0.section("max_jobs") { writer in
                    for kind in limits.keys.sorted() { writer.raw(kind, "\(limits[kind] ?? 1)") }
                }
            }
        }
        return out.text
    }
}

extension FerryConfiguration {
    /// `redis://user:secret@host:6379/0` → `redis://***@host:6379/0`.
    static func withoutCredentials(_ url: String) -> String {
        guard let scheme = url.firstRange(of: "://"), let at = url.lastIndex(of: "@"), at > scheme.upperBound else { return url }
        return String(url[..<scheme.upperBound]) + "***" + String(url[at...])
    }
}

/// Writes indented YAML with origin comments; private to rendering.
struct YAMLWriter {
    private(set) var text = ""
    private var indent = 0
    private var path: [String] = []
    private let tree: ConfigNode?
    private var listItemPending = false

    init(tree: ConfigNode?) { self.tree = tree }

    mutating func section(_ key: String, _ body: (inout YAMLWriter) -> Void) {
        line("\(Self.key(key)):", comment: nil)
        path.append(key)
        indent += 2
        body(&self)
        indent -= 2
        path.removeLast()
    }

    mutating func list<T>(_ key: String, _ items: [T], _ body: (inout YAMLWriter, T) -> Void) {
        line("\(Self.key(key)):", comment: nil)
        for (index, item) in items.enumerated() {
            path.append(key)
            path.append("[\(index)]")
            indent += 2
            listItemPending = true
            body(&self, item)
            indent -= 2
            path.removeLast(2)
        }
    }

    mutating func value(_ key: String, _ value: String?) {
        guard let value else { return }
        line("\(Self.key(key)): \(Self.scalar(value))", comment: originComment(key))
    }

    /// A number, boolean or flow list, written as is.
    mutating func raw(_ key: String, _ value: String) {
        line("\(Self.key(key)): \(value)", comment: originComment(key))
    }

    mutating func secret(_ key: String, _ value: Secret?) {
        guard value != nil else { return }
        line("\(Self.key(key)): \"***\"", comment: originComment(key))
    }

    mutating func postgres(_ endpoint: PostgresEndpoint) {
        value("host", endpoint.host)
        raw("port", "\(endpoint.port)")
        value("database", endpoint.database)
        value("user", endpoint.user)
        secret("password", endpoint.password)
        value("schema", endpoint.schema)
        value("tls", endpoint.tls.rawValue)
        value("connect_timeout", DurationParser.format(endpoint.connectTimeout))
    }

    mutating func sqlserver(_ endpoint: SQLServerEndpoint) {
        value("host", endpoint.host)
        raw("port", "\(endpoint.port)")
        value("database", endpoint.database)
        value("user", endpoint.user)
        secret("password", endpoint.password)
        value("view", endpoint.view)
        value("connect_timeout", DurationParser.format(endpoint.connectTimeout))
        value("tds_version", endpoint.tdsVersion.rawValue)
        value("query_timeout", DurationParser.format(endpoint.queryTimeout))
        value("encryption", endpoint.encryption.rawValue)
        value("ca_file", endpoint.caFile)
    }

    private mutating func line(_ content: String, comment: String?) {
        var prefix = String(repeating: " ", count: indent)
        if listItemPending {
            prefix = String(repeating: " ", count: indent - 2) + "- "
            listItemPending = false
        }
        text += prefix + content + (comment.map { "  # \($0)" } ?? "") + "\n"
    }

    private func originComment(_ key: String) -> String? {
        var node = tree
        for component in path + [key] {
            if component.hasPrefix("["), let index = Int(component.dropFirst().dropLast()) {
                guard case .sequence(let items, _) = node, index < items.count else { return "default" }
                node = items[index]
            } else {
                node = node?[component]
            }
            if node == nil { return "default" }
        }
        switch node?.origin {
        case .environment(let name): return "from $\(name)"
        case .builtin, nil: return "default"
        case .file: return nil
        }
    }

    private static func key(_ key: String) -> String {
        key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } ? key : scalar(key)
    }

    static func scalar(_ value: String) -> String {
        let plainSafe =
            !value.isEmpty && value.first != " " && value.last != " "
            && !value.contains(where: { ":#{}&*!|>'\"%@`,?\n\\".contains($0) })
            && !["true", "false", "yes", "no", "null", "~", "on", "off"].contains(value.lowercased())
            && !(value.hasPrefix("-") || value.hasPrefix("["))
        if plainSafe { return value }
        var escaped = "\""
        for character in value {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }
}

extension YAMLWriter {
    fileprivate mutating func redisSync(_ config: RedisSyncConfiguration) {
        value("databases", RedisSyncConfiguration.formatDatabases(config.databases))
        value("rate_limit", config.rateLimit.map { "\($0)" })
        for (key, backoff) in [("redis_retry", config.redisRetry), ("postgres_retry", config.postgresRetry)] {
            section(key) {
                $0.value("max_retries", backoff.maxRetries.map { "\($0)" })
                $0.value("backoff_base", DurationParser.format(backoff.base))
                $0.value("backoff_max", DurationParser.format(backoff.maximum))
            }
        }
        value("stall_after", DurationParser.format(config.stallAfter))
        let streams = config.streams
        section("streams") {
            $0.raw("enabled", "\(streams.enabled)")
            $0.raw("keys", "[" + streams.keys.joined(separator: ", ") + "]")
            $0.value("group", streams.group)
            $0.value("consumer", streams.consumer)
            $0.raw("batch_size", "\(streams.batchSize)")
            $0.value("poll_interval", DurationParser.format(streams.pollInterval))
            $0.raw("discovery", "\(streams.discovery)")
            $0.raw("patterns", "[" + streams.patterns.map { "\"\($0)\"" }.joined(separator: ", ") + "]")
            $0.value("discovery_interval", DurationParser.format(streams.discoveryInterval))
            $0.raw("create_groups", "\(streams.createGroups)")
            $0.value("conflict", streams.conflict.rawValue)
            $0.value("table", streams.table)
            $0.raw("consumers", "\(streams.consumers)")
            $0.value("claim_idle", DurationParser.format(streams.claimIdle))
            $0.value("apply_timeout", DurationParser.format(streams.applyTimeout))
            $0.raw("max_deliveries", "\(streams.maxDeliveries)")
            $0.raw("metrics_stream_limit", "\(streams.metricsStreamLimit)")
            if !streams.mappings.isEmpty {
                $0.list("mappings", streams.mappings) { writer, mapping in
                    writer.value("stream", mapping.stream)
                    writer.value("table", mapping.table)
                    writer.section("columns") { columns in
                        for column in mapping.columns {
                            columns.section(column.field) {
                                $0.value("column", column.column)
                                $0.value("type", column.type)
                            }
                        }
                    }
                }
            }
        }
        let keyValues = config.keyValues
        section("key_values") {
            $0.raw("enabled", "\(keyValues.enabled)")
            $0.raw("patterns", "[" + keyValues.patterns.map { "\"\($0)\"" }.joined(separator: ", ") + "]")
            $0.value("table", keyValues.table)
            $0.value("interval", DurationParser.format(keyValues.interval))
            $0.raw("notifications", "\(keyValues.notifications)")
        }
    }

}
