import ArgumentParser
import FerryCore
import FerryDaemon
import FerryRedis
import FerrySync
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `ferry redis …`: the Redis → PostgreSQL sync and its monitor.
struct RedisCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "Sync Redis streams and keys into PostgreSQL (redis_sync:), and watch the streams.",
        subcommands: [RedisSyncCommand.self, RedisMonitorCommand.self]
    )
}

/// `ferry redis sync [--once]`.
struct RedisSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Run the Redis sync: stream entries into redis_streams (or mapped tables), keys into redis_key_values.",
        discussion:
            "With --once: discover streams, apply every entry there is now, scan the keys once, print what was done and exit. Without it the sync runs until SIGTERM/SIGINT (as part of `ferry run` does too); SIGHUP reloads patterns, the database range and the rate limit from the configuration."
    )

    @OptionGroup var options: GlobalOptions

    @Flag(help: "One pass, then exit.")
    var once = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let loaded = try options.load()
        let logger = Logger(label: "ferry.redis_sync")
        guard loaded.configuration.redisSync != nil else {
            throw FerryError(
                .configuration, "redis_sync: missing — nothing to sync",
                fix: "add a `redis_sync:` section (see examples/redis-sync.yaml) or set REDIS_STREAMS / STREAM_AUTO_DISCOVERY")
        }
        let redis = try PipelineLookup.redisClient(loaded.configuration, logger: logger)
        let service = try RedisSyncService(configuration: loaded.configuration, redis: redis, logger: logger)
        do {
            if once {
                let clock = ContinuousClock()
                let start = clock.now
                let (entries, keys) = try await service.runOnce()
                let elapsed = (clock.now - start).seconds
                let snapshot = service.status.snapshot
                if json {
                    let streams = snapshot.streams.map(JSONText.string).joined(separator: ",")
                    Terminal.print(
                        "{\"entries\":\(entries),\"keys_written\":\(keys),\"keys_deleted\":\(snapshot.keysDeleted),\"streams\":[\(streams)],\"seconds\":\(elapsed)}"
                    )
                } else {
                    Terminal.print(
                        "redis sync: \(entries) stream entries from \(snapshot.streams.count) streams, \(keys) keys written, \(snapshot.keysDeleted) marked deleted in \(String(format: "%.1f", elapsed))s"
                    )
                }
            } else {
                let reloader = ConfigurationReloader(loader: options.loader, logger: logger) { service.reload($0) }
                let group = ServiceGroup(
                    configuration: .init(services: [redis, service, reloader], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            }
        } catch {
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
    }
}

/// `ferry redis monitor [--json] [--interval 2s]`.
struct RedisMonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Show every synced stream: length, first and last id, groups, consumers, pending entries, lag and idle consumers.",
        discussion:
            "Streams are the configured ones (redis_sync.streams.keys) and those the discovery patterns match across redis_sync.databases. On a terminal the table refreshes until Ctrl-C, with warnings when pending entries keep growing or a consumer holding entries has gone idle; --json prints one snapshot and exits."
    )

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print one snapshot as JSON and exit.")
    var json = false

    @Option(help: "Refresh interval of the live table, e.g. 2s.")
    var interval: String = "2s"

    @Option(name: .customLong("idle"), help: "A consumer with pending entries inactive this long is reported idle.")
    var idle: String = "60s"

    func run() async throws {
        let loaded = try options.load()
        let logger = Logger(label: "ferry.redis_monitor")
        guard let refresh = DurationParser.parse(interval), refresh >= .milliseconds(100) else {
            throw FerryError(.configuration, "--interval \(interval) is not a duration of at least 100ms", fix: "write e.g. `--interval 2s`")
        }
        guard let idleThreshold = DurationParser.parse(idle) else {
            throw FerryError(.configuration, "--idle \(idle) is not a duration", fix: "write e.g. `--idle 60s`")
        }
        let redis = try PipelineLookup.redisClient(loaded.configuration, logger: logger)
        let monitor = StreamMonitor(redis: redis, configuration: loaded.configuration, idleThreshold: idleThreshold)
        do {
            if json || !Terminal.stdoutIsTTY {
                let reports = try await monitor.collect()
                Terminal.print(json ? Self.json(reports) : Self.table(reports))
            } else {
                while !Task.isCancelled {
                    let reports = try await monitor.collect()
                    Terminal.print("\u{1B}[2J\u{1B}[H" + Self.table(reports) + "\n\nrefreshing every \(interval) — Ctrl-C to stop")
                    try await Task.sleep(for: refresh)
                }
            }
        } catch {
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
    }

    static func table(_ reports: [StreamReport]) -> String {
        guard !reports.isEmpty else { return "no streams found (check redis_sync.streams.patterns and redis_sync.databases)" }
        var table = TextTable(["DB", "STREAM", "LENGTH", "FIRST", "LAST", "GROUP", "CONSUMERS", "PENDING", "LAG", "IDLE"])
        var warnings: [String] = []
        for report in reports {
            let groups = report.groups.isEmpty ? [nil] : report.groups.map(Optional.some)
            for group in groups {
                table.add([
                    "\(report.database)", PrintableText.escaped(report.stream), "\(report.length)", report.firstID ?? "-", report.lastID ?? "-",
                    group.map { PrintableText.escaped($0.name) } ?? "-",
                    group.map { "\($0.consumers)" } ?? "-", group.map { "\($0.pending)" } ?? "-", group?.lag.map { "\($0)" } ?? "-",
                    group.map { $0.idleConsumers.isEmpty ? "0" : Terminal.paint("\($0.idleConsumers.count)", .yellow) } ?? "-",
                ])
            }
            warnings += report.warnings.map { "db\(report.database):\(PrintableText.escaped(report.stream)): \(PrintableText.escaped($0))" }
        }
        return table.render() + (warnings.isEmpty ? "" : "\n\n" + warnings.map { Terminal.paint("warning: ", .yellow) + $0 }.joined(separator: "\n"))
    }

    static func json(_ reports: [StreamReport]) -> String {
        let items = reports.map { report -> String in
            let groups = report.groups.map { group in
                "{\"name\":\(JSONText.string(group.name)),\"consumers\":\(group.consumers),\"pending\":\(group.pending),\"lag\":\(group.lag.map { "\($0)" } ?? "null"),\"idle_consumers\":[\(group.idleConsumers.map(JSONText.string).joined(separator: ","))]}"
            }
            return
                "{\"redis_db\":\(report.database),\"stream\":\(JSONText.string(report.stream)),\"length\":\(report.length),\"first_id\":\(report.firstID.map(JSONText.string) ?? "null"),\"last_id\":\(report.lastID.map(JSONText.string) ?? "null"),\"groups\":[\(groups.joined(separator: ","))],\"warnings\":[\(report.warnings.map(JSONText.string).joined(separator: ","))]}"
        }
        return "{\"streams\":[\(items.joined(separator: ","))]}"
    }
}
