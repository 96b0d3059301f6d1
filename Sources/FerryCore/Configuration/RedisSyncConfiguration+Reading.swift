extension RedisSyncConfiguration {
    static func read(_ reader: ConfigReader, sync: SyncSettings) -> RedisSyncConfiguration {
        var config = RedisSyncConfiguration()
        config.keyValues.interval = sync.interval
        if let text = reader.string("databases") {
            if let databases = parseDatabaseRange(text) {
                config.databases = databases
            } else {
                reader.issues.add(
                    reader.keyPath("databases"), "\"\(text)\" is not a database range",
                    fix: "write indexes and ranges such as `0-15` or `0,2,3-5` (Redis has databases 0-15 by default)",
                    origin: reader.origin("databases"))
            }
        }
        if let rate = reader.string("rate_limit") {
            if let value = Double(rate.trimmingSpaces()), value >= 0, value.isFinite {
                config.rateLimit = value == 0 ? nil : value
            } else {
                reader.issues.add(
                    reader.keyPath("rate_limit"), "\"\(rate)\" is not a rate",
                    fix: "write Redis operations per second, e.g. `rate_limit: 5000` (0 for no limit)", origin: reader.origin("rate_limit"))
            }
        }
        config.redisRetry = readRetry(reader.section("redis_retry"), default: config.redisRetry)
        config.postgresRetry = readRetry(reader.section("postgres_retry"), default: config.postgresRetry)
        if let stall = reader.duration("stall_after", minimum: .seconds(1)) { config.stallAfter = stall }

        let streams = reader.section("streams")
        if let enabled = streams.bool("enabled") { config.streams.enabled = enabled }
        if let keys = streams.strings("keys") { config.streams.keys = keys }
        if let group = streams.string("group") { config.streams.group = group }
        config.streams.consumer = streams.string("consumer")
        if let size = streams.int("batch_size", range: 1...100_000) { config.streams.batchSize = size }
        if let poll = streams.duration("poll_interval", minimum: .milliseconds(1)) { config.streams.pollInterval = poll }
        if let discovery = streams.bool("discovery") { config.streams.discovery = discovery }
        if let patterns = streams.strings("patterns") { config.streams.patterns = patterns }
        if let interval = streams.duration("discovery_interval", minimum: .milliseconds(100)) { config.streams.discoveryInterval = interval }
        if let create = streams.bool("create_groups") { config.streams.createGroups = create }
        if let conflict = streams.choice("conflict", as: ConflictPolicy.self) { config.streams.conflict = conflict }
        // The original service's switch, kept for its users: STREAM_CONFLICT_OVERWRITE=true.
        if let overwrite = streams.bool("conflict_overwrite") { config.streams.conflict = overwrite ? .overwrite : .skip }
        if let table = streams.string("table") { config.streams.table = table }
        if let consumers = streams.int("consumers", range: 1...64) { config.streams.consumers = consumers }
        if let idle = streams.duration("claim_idle", minimum: .milliseconds(100)) { config.streams.claimIdle = idle }
        if let timeout = streams.duration("apply_timeout", minimum: .seconds(1)) { config.streams.applyTimeout = timeout }
        if let max = streams.int("max_deliveries", range: 1...1000) { config.streams.maxDeliveries = max }
        if let limit = streams.int("metrics_stream_limit", range: 0...10_000) { config.streams.metricsStreamLimit = limit }
        config.streams.mappings = streams.sections("mappings").compactMap(StreamMapping.read)
        streams.finish()

        let keyValues = reader.section("key_values")
        if let enabled = keyValues.bool("enabled") { config.keyValues.enabled = enabled }
        if let patterns = keyValues.strings("patterns") { config.keyValues.patterns = patterns }
        if let table = keyValues.string("table") { config.keyValues.table = table }
        if let interval = keyValues.duration("interval", minimum: .milliseconds(10)) { config.keyValues.interval = interval }
        if let notifications = keyValues.bool("notifications") { config.keyValues.notifications = notifications }
        keyValues.finish()
        reader.finish()
        return config
    }

    private static func readRetry(_ reader: ConfigReader, default value: Backoff) -> Backoff {
        var backoff = value
        if let retries = reader.int("max_retries", range: 0...1_000_000) { backoff.maxRetries = retries }
        if let base = reader.duration("backoff_base", minimum: .milliseconds(1)) { backoff.base = base }
        if let maximum = reader.duration("backoff_max", minimum: .milliseconds(1)) { backoff.maximum = maximum }
        if backoff.maximum < backoff.base {
            reader.issues.add(
                reader.keyPath("backoff_max"), "is shorter than backoff_base", fix: "make backoff_max at least backoff_base",
                origin: reader.origin("backoff_max"))
        }
        reader.finish()
        return backoff
    }

    /// `[0, 1, 2, 5]` → `0-2,5`.
    package static func formatDatabases(_ values: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        while index < values.count {
            var end = index
            while end + 1 < values.count, values[end + 1] == values[end] + 1 { end += 1 }
            parts.append(end > index ? "\(values[index])-\(values[end])" : "\(values[index])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    /// `0-15`, `0,2,3-5`, `3`: sorted database indexes without repeats; nil when malformed.
    package static func parseDatabaseRange(_ text: String) -> [Int]? {
        var result = Set<Int>()
        for part in text.split(separator: ",") {
            let piece = String(part).trimmingSpaces()
            if piece.isEmpty { continue }
            let bounds = piece.split(separator: "-", omittingEmptySubsequences: false).map { Int(String($0).trimmingSpaces()) }
            switch bounds.count {
            case 1:
                guard let value = bounds[0], value >= 0 else { return nil }
                result.insert(value)
            case 2:
                guard let low = bounds[0], let high = bounds[1], low >= 0, low <= high, high - low < 10_000 else { return nil }
                result.formUnion(low...high)
            default:
                return nil
            }
        }
        return result.isEmpty ? nil : result.sorted()
    }
}

extension StreamMapping {
    static func read(_ reader: ConfigReader) -> StreamMapping? {
        let stream = reader.string("stream", required: "name the stream or a pattern, e.g. `stream: \"orders:*\"`")
        let table = reader.string("table", required: "name the table, e.g. `table: orders`")
        var columns: [Column] = []
        for (field, node) in reader.entries("columns") {
            switch node {
            case .scalar(let type, _) where !type.isEmpty:
                columns.append(Column(field: field, type: type))
            case .scalar, .null:
                columns.append(Column(field: field))
            default:
                let column = ConfigReader(node: node, path: "\(reader.keyPath("columns")).\(field)", issues: reader.issues)
                columns.append(Column(field: field, column: column.string("column"), type: column.typeName("type") ?? "text"))
                column.finish()
            }
        }
        if columns.isEmpty {
            reader.issues.add(
                reader.keyPath("columns"), "missing", fix: "map entry fields to column types, e.g. `columns: {order_id: bigint, amount: numeric}`")
        }
        reader.finish()
        guard let stream, let table, !columns.isEmpty else { return nil }
        return StreamMapping(stream: stream, table: table, columns: columns)
    }
}
