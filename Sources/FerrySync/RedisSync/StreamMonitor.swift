import CoreMetrics
package import FerryCore
package import FerryRedis
import Foundation
package import Logging
import Synchronization

/// Per-stream figures for `ferry redis monitor` and `/metrics`: length, first and last id, and per group its
/// consumers, pending entries, lag and idle consumers, with warnings.
package struct StreamReport: Sendable {
    package struct Group: Sendable {
        package var name: String
        package var consumers: Int
        package var pending: Int
        /// Entries not yet delivered to the group (Redis 7; nil when Redis cannot tell).
        package var lag: Int?
        /// Consumers holding pending entries that have not been active for longer than the idle threshold.
        package var idleConsumers: [String]
    }

    package var database: Int
    package var stream: String
    package var length: Int
    package var firstID: String?
    package var lastID: String?
    package var groups: [Group]
    package var warnings: [String]
}

/// Collects ``StreamReport``s; remembers the previous pending counts to warn when they keep growing.
package final class StreamMonitor: Sendable {
    let redis: RedisClient
    let databases: [Int]
    let patterns: [GlobPattern]
    let keys: [(database: Int, stream: String)]
    let idleThreshold: Duration
    private let previous = Mutex<[String: Int]>([:])
    private let warnedOverLimit = Atomic(false)

    package init(redis: RedisClient, configuration: FerryConfiguration, idleThreshold: Duration = .seconds(60)) {
        self.redis = redis
        let sync = configuration.redisSync ?? RedisSyncConfiguration()
        databases = sync.databases
        patterns = sync.streams.patterns.map(GlobPattern.init)
        let defaultDatabase = configuration.redis?.db ?? 0
        keys = sync.streams.keys.map { RedisSyncService.splitDatabase($0, default: defaultDatabase) }.map { (database: $0.0, stream: $0.1) }
        self.idleThreshold = idleThreshold
    }

    /// Every configured stream and every stream matching the patterns, in database order.
    package func collect() async throws -> [StreamReport] {
        var found: [Int: Set<String>] = [:]
        for key in keys { found[key.database, default: []].insert(key.stream) }
        for database in databases {
            for pattern in patterns {
                // Names PostgreSQL cannot store are left out (the sync records them in the dead letters).
                for try await name in redis.scan(database: database, match: pattern.redisMatch, count: 1000, type: .stream) {
                    guard let key = name.text, !key.hasPrefix("ferry:"), pattern.matches(key) else { continue }
                    found[database, default: []].insert(key)
                }
            }
        }
        var reports: [StreamReport] = []
        for database in found.keys.sorted() {
            for stream in found[database]!.sorted() {
                if let report = try await report(stream, database: database) { reports.append(report) }
            }
        }
        return reports
    }

    private func report(_ stream: String, database: Int) async throws -> StreamReport? {
        try await redis.withConnection(database: database) { connection in
            let info: RedisStreamInfo
            do {
                info = try await connection.send(XINFOSTREAM(stream))
            } catch let error as RedisError where error.prefix == "ERR" {
                return nil  // gone since the scan
            }
            var groups: [StreamReport.Group] = []
            var warnings: [String] = []
            for group in try await connection.send(XINFOGROUPS(stream)) {
                let consumers = try await connection.send(XINFOCONSUMERS(stream, group: group.name))
                let idle = consumers.filter { $0.pending > 0 && ($0.inactive ?? $0.idle) > idleThreshold }.map(\.name)
                groups.append(
                    StreamReport.Group(name: group.name, consumers: group.consumers, pending: group.pending, lag: group.lag, idleConsumers: idle))
                let key = "\(database)\u{0}\(stream)\u{0}\(group.name)"
                let before = previous.withLock { previous -> Int? in
                    defer { previous[key] = group.pending }
                    return previous[key]
                }
                if let before, group.pending > before {
                    warnings.append("group \(group.name): pending entries grew from \(before) to \(group.pending)")
                }
                if !idle.isEmpty {
                    warnings.append(
                        "group \(group.name): \(idle.count) consumer(s) idle over \(DurationParser.format(idleThreshold)) with pending entries (\(idle.prefix(3).joined(separator: ", ")))"
                    )
                }
                if let lag = group.lag, lag > 10_000 {
                    warnings.append("group \(group.name): \(lag) entries not yet delivered")
                }
            }
            return StreamReport(
                database: database, stream: stream, length: info.length, firstID: info.firstEntry?.id, lastID: info.lastEntry?.id, groups: groups,
                warnings: warnings)
        }
    }

    /// Publishes the reports as gauges (`ferry_redis_stream_length`, `…_pending`, `…_lag`, `…_idle_consumers`): the
    /// first `limit` streams (in database and name order) one series each, the others summed per database and group
    /// into `stream="_other"` (with a warning the first time). Names are printed escaped.
    package func record(_ reports: [StreamReport], limit: Int, logger: Logger) {
        let own = reports.prefix(limit)
        let rest = reports.dropFirst(limit)
        for report in own {
            let base = [("redis_db", "\(report.database)"), ("stream", PrintableText.escaped(report.stream))]
            Gauge(label: "ferry_redis_stream_length", dimensions: base).record(report.length)
            for group in report.groups {
                let dimensions = base + [("group", PrintableText.escaped(group.name))]
                Gauge(label: "ferry_redis_stream_pending", dimensions: dimensions).record(group.pending)
                Gauge(label: "ferry_redis_stream_lag", dimensions: dimensions).record(group.lag ?? 0)
                Gauge(label: "ferry_redis_stream_idle_consumers", dimensions: dimensions).record(group.idleConsumers.count)
            }
        }
        guard !rest.isEmpty else { return }
        if warnedOverLimit.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            logger.warning(
                "more streams than redis_sync.streams.metrics_stream_limit: the others are summed as stream=\"_other\" on /metrics",
                metadata: ["ferry.streams": "\(reports.count)", "ferry.limit": "\(limit)"])
        }
        var lengths: [Int: Int] = [:]
        var groups: [String: (database: Int, group: String, pending: Int, lag: Int, idle: Int)] = [:]
        for report in rest {
            lengths[report.database, default: 0] += report.length
            for group in report.groups {
                let key = "\(report.database)\u{0}\(group.name)"
                var sum = groups[key] ?? (report.database, group.name, 0, 0, 0)
                sum.pending += group.pending
                sum.lag += group.lag ?? 0
                sum.idle += group.idleConsumers.count
                groups[key] = sum
            }
        }
        for (database, length) in lengths {
            Gauge(label: "ferry_redis_stream_length", dimensions: [("redis_db", "\(database)"), ("stream", "_other")]).record(length)
        }
        for sum in groups.values {
            let dimensions = [("redis_db", "\(sum.database)"), ("stream", "_other"), ("group", PrintableText.escaped(sum.group))]
            Gauge(label: "ferry_redis_stream_pending", dimensions: dimensions).record(sum.pending)
            Gauge(label: "ferry_redis_stream_lag", dimensions: dimensions).record(sum.lag)
            Gauge(label: "ferry_redis_stream_idle_consumers", dimensions: dimensions).record(sum.idle)
        }
    }
}
