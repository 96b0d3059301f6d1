import FerryBackup
import FerryCore
import FerryPostgres
import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Takes `backup:`'s scheduled backups inside `ferry run`: a full backup when the last one is `full_every` old, an
/// incremental when the last backup is `incremental_every` old (the first run, with none yet, takes a full one at
/// once), retention after each. It also watches the server's WAL archiver.
///
/// A failed backup is tried again after a minute (or the schedule's interval, when shorter). A failed backup, a
/// backup overdue (older than twice the shortest interval) or an archiver that keeps failing shows as a stall of the
/// `backup` job: `/health/ready` answers 503 naming it, and `ferry_job_stalled{job="backup"}` is 1. Metrics:
/// `ferry_backup_last_success_timestamp_seconds{kind}`, `ferry_backup_last_duration_seconds{kind}`,
/// `ferry_backup_last_size_bytes{kind}`, `ferry_backup_last_stored_bytes{kind}`, `ferry_backup_age_seconds`,
/// `ferry_backup_failures_total`, `ferry_wal_archive_age_seconds`, `ferry_wal_archive_failing`.
struct BackupSchedule: Service {
    let settings: BackupConfiguration
    let endpoint: PostgresEndpoint
    let reportStall: @Sendable (String?) -> Void
    let logger: Logger

    private var shortest: Duration? { [settings.fullEvery, settings.incrementalEvery].compactMap { $0 }.min() }

    func run() async throws {
        let repository = try BackupRepositories.open(settings.repository)
        let catalog = try Self.catalog(settings, repository: repository)
        let existing = try await BaseBackup.blocking { () throws(FerryError) in try BackupStore(repository: repository).manifests() }
        let state = ScheduleState((existing.last { $0.kind == .full }?.stopped, existing.last?.stopped, nil))
        let session = PostgresSession(endpoint: endpoint, key: "backup.postgres", logger: logger)
        defer { Task { await session.close() } }
        let tick = min(.seconds(5), (shortest ?? .seconds(20)) / 4)
        // Two loops: backups, and a watch that reports their state and the archiver's every tick. Apart, because a
        // backup waits for its WAL to be archived: while an archiver that fails holds a backup, the watch still says so.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await backups(repository: repository, catalog: catalog, state: state, tick: tick) }
            group.addTask { await watch(session: session, state: state, tick: tick) }
            await group.next()
            group.cancelAll()
        }
    }

    private func backups(
        repository: any BackupRepository, catalog: RedisBackupCatalog?,
        state: ScheduleState, tick: Duration
    ) async {
        var retryAt: Date?
        let failures = Counter(label: "ferry_backup_failures_total")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = Date()
            let (lastFull, lastAny, _) = state.value.withLock { $0 }
            if let kind = due(now: now, lastFull: lastFull, lastAny: lastAny), retryAt.map({ now >= $0 }) ?? true {
                do {
                    let manifest = try await take(kind, repository: repository, catalog: catalog)
                    state.value.withLock { current in
                        current.lastAny = manifest.stopped
                        if manifest.kind == .full { current.lastFull = manifest.stopped }
                        current.failure = nil
                    }
                    retryAt = nil
                } catch {
                    failures.increment()
                    state.value.withLock { $0.failure = "the last \(kind == .full ? "full" : "incremental") backup failed: \(error.message)" }
                    let retry = min(60, Double((shortest ?? .seconds(60)).components.seconds))
                    retryAt = Date().addingTimeInterval(max(1, retry))
                    logger.error("scheduled backup failed", metadata: ["ferry.kind": "\(kind.rawValue)", "ferry.error": "\(error)"])
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
            } catch {
                return
            }
        }
    }

    private func watch(session: PostgresSession, state: ScheduleState, tick: Duration) async {
        let age = Gauge(label: "ferry_backup_age_seconds")
        let archiveAge = Gauge(label: "ferry_wal_archive_age_seconds")
        let archiveFailing = Gauge(label: "ferry_wal_archive_failing")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let (_, lastAny, failure) = state.value.withLock { $0 }
            var problems: [String] = failure.map { [$0] } ?? []
            if let lastAny {
                let seconds = Date().timeIntervalSince(lastAny)
                age.record(seconds)
                if let shortest, seconds > 2 * Double(shortest.components.seconds) {
                    problems.append("the last backup is \(Int(seconds)) s old, more than twice the schedule's \(DurationParser.format(shortest))")
                }
            }
            if let archiver = await archiverProblem(session, archiveAge: archiveAge, archiveFailing: archiveFailing) { problems.append(archiver) }
            reportStall(problems.isEmpty ? nil : problems.joined(separator: "; "))
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
            } catch {
                return
            }
        }
    }

    /// What the schedule asks for now: a full backup when there is none or the last is `full_every` old, else an
    /// incremental when the last backup is `incremental_every` old.
    func due(now: Date, lastFull: Date?, lastAny: Date?) -> BackupManifest.Kind? {
        guard settings.fullEvery != nil || settings.incrementalEvery != nil else { return nil }
        guard let lastFull else { return .full }
        if let every = settings.fullEvery, now.timeIntervalSince(lastFull) >= Double(every.components.seconds) { return .full }
        if let every = settings.incrementalEvery, now.timeIntervalSince(lastAny ?? lastFull) >= Double(every.components.seconds) {
            return .incremental
        }
        return nil
    }

    /// The Redis catalogue `backup.catalog` names, if any.
    static func catalog(_ settings: BackupConfiguration, repository: any BackupRepository) throws(FerryError) -> RedisBackupCatalog? {
        try settings.catalog.map { url throws(FerryError) in
            RedisBackupCatalog(
                endpoint: try RedisBackupCatalog.endpoint(from: url, environment: ProcessInfo.processInfo.environment),
                repository: repository.location)
        }
    }

    /// Takes one backup (and applies retention), recording its metrics and the catalogue.
    func take(_ kind: BackupManifest.Kind, repository: any BackupRepository, catalog: RedisBackupCatalog?) async throws(FerryError)
        -> BackupManifest
    {
        let server = PostgresBackupServer(endpoint: endpoint, logger: logger)
        var backup = BaseBackup(repository: repository, dataDirectory: settings.dataDirectory, server: server)
        backup.compression = BackupCompression(rawValue: settings.compression) ?? .zstd
        backup.workers = settings.workers
        backup.archiveTimeout = settings.archiveTimeout
        backup.retention = BackupRetention(keepFull: settings.keepFull, keepDays: settings.keepDays)
        let report: BaseBackup.Report
        do {
            report = try await backup.run(kind: kind)
        } catch {
            await server.close()
            throw error
        }
        await server.close()
        let manifest = report.manifest
        let dimensions = [("kind", manifest.kind.rawValue)]
        Gauge(label: "ferry_backup_last_success_timestamp_seconds", dimensions: dimensions).record(manifest.stopped.timeIntervalSince1970)
        Gauge(label: "ferry_backup_last_duration_seconds", dimensions: dimensions).record(manifest.stopped.timeIntervalSince(manifest.started))
        Gauge(label: "ferry_backup_last_size_bytes", dimensions: dimensions).record(Double(manifest.bytes))
        Gauge(label: "ferry_backup_last_stored_bytes", dimensions: dimensions).record(Double(manifest.storedBytes))
        logger.notice(
            "scheduled backup taken",
            metadata: [
                "ferry.backup": "\(manifest.id)", "ferry.kind": "\(manifest.kind.rawValue)", "ferry.stored_bytes": "\(manifest.storedBytes)",
                "ferry.expired": "\(report.retention?.expired ?? [])",
            ])
        if let catalog {
            do {
                try await catalog.record(BackupCatalogEntry(manifest))
                try await catalog.forget(report.retention?.expired ?? [])
            } catch {
                logger.warning("the backup catalogue was not updated; the next list rebuilds it", metadata: ["ferry.error": "\(error)"])
            }
        }
        return manifest
    }

    /// The server's archiver, from `pg_stat_archiver`: a failure newer than the last success is a problem.
    private func archiverProblem(_ session: PostgresSession, archiveAge: Gauge, archiveFailing: Gauge) async -> String? {
        do {
            return try await session.withConnection { connection -> String? in
                let rows = try await connection.query(
                    """
                    SELECT extract(epoch FROM now() - last_archived_time)::float8, coalesce(last_failed_wal, ''),
                           coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false), failed_count
                    FROM pg_stat_archiver
                    """, logger: logger)
                for try await (archivedAgo, failedWAL, failing, failedCount) in rows.decode((Double?, String, Bool, Int64).self) {
                    if let archivedAgo { archiveAge.record(archivedAgo) }
                    archiveFailing.record(failing ? 1 : 0)
                    if failing {
                        return
                            "the server's archive_command is failing (\(failedCount) failures; last on \(failedWAL)): check it against \(settings.repository)"
                    }
                }
                return nil
            }
        } catch {
            return "cannot read the archiver's state on \(endpoint.host):\(endpoint.port): \(PostgresDiagnosis.reason(error))"
        }
    }
}

/// What the backup loop knows, shared with the watch loop.
final class ScheduleState: Sendable {
    let value: Mutex<(lastFull: Date?, lastAny: Date?, failure: String?)>

    init(_ initial: (lastFull: Date?, lastAny: Date?, failure: String?)) { value = Mutex(initial) }
}
