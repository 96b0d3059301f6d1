import FerryAPI
import FerryAPIContract
import FerryBackup
import FerryCluster
import FerryCore
import FerryDatabricks
import FerryExtract
import FerryParquet
import FerryPostgres
import FerryRedis
import FerryServer
import FerrySync
import Foundation
import HTTPTypes
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The jobs `ferry run`'s API starts, on the daemon's configuration: extractions from the query library
/// (`api.queries_path`, `api.config_path`) into `api.extract_root` or a Volume, one pass of a pipeline, a reconcile.
/// Every request is checked, permissions included, before a job is queued.
struct DaemonJobPlanner: JobPlanner {
    let configuration: FerryConfiguration
    let settings: APISettings
    let redis: RedisClient?
    let logger: Logger

    /// A problem with what was asked (an unknown country or query, a missing parameter): 422.
    static func unprocessable(_ error: FerryError) -> APIError {
        APIError(.unprocessableContent, error)
    }

    /// `body`, its errors as a 422.
    static func checked<T>(_ body: () throws(FerryError) -> T) throws(APIError) -> T {
        do {
            return try body()
        } catch {
            throw unprocessable(error)
        }
    }

    func extract(_ request: Components.Schemas.ExtractRequest, user: Permissions.User) async throws -> PlannedJob {
        let library = QueryLibrary(queriesPath: settings.queriesPath, configPath: settings.configPath)
        let (names, values) = try Self.checked { () throws(FerryError) -> ([String], [String: String]) in
            var names = request.queries ?? []
            if request.queries == nil { names = try library.queryNames() }
            let values = try library.parameters(country: request.country, overrides: request.params?.additionalProperties ?? [:])
            return (names, values)
        }
        guard !names.isEmpty else {
            throw APIError(.unprocessableContent, .notFound, "the library has no queries", fix: "add <name>.sql files to \(settings.queriesPath)")
        }
        for name in names where !user.mayRun(query: name) {
            throw APIError(
                .forbidden, .permission, "\(user.name) may not run query \(name)",
                fix: "add `- query: \(name)` (or \"*\") with `access: read` to \(user.name)'s permissions")
        }
        let configuration = configuration
        let source = try Self.checked { () throws(FerryError) -> ExtractSource in
            guard let chosen = try ExtractSource.resolve(request.source, in: configuration) else {
                throw FerryError(.configuration, "no source: ferry.yaml has no sqlserver: or postgres: section", fix: "add one")
            }
            return chosen
        }
        let dialect: SQLTemplate.Dialect = if case .sqlserver = source { .sqlserver } else { .postgres }
        let planned = try Self.checked { () throws(FerryError) -> [(name: String, sql: String, bindings: [String], literal: String?)] in
            var planned: [(name: String, sql: String, bindings: [String], literal: String?)] = []
            for name in names {
                let template = try SQLTemplate(try library.sql(name), file: "\(name).sql")
                let rendered = try template.render(values, dialect: dialect, file: "\(name).sql")
                let literal = dialect == .postgres ? try template.render(values, dialect: .postgres, file: "\(name).sql", literals: true) : nil
                planned.append((name, rendered.sql, rendered.bindings, literal?.sql))
            }
            return planned
        }
        let destination = try Self.destination(request.destination, root: settings.extractRoot)
        let overwrite = request.overwrite ?? false
        if case .local(let directory) = destination, !overwrite {
            for query in planned where FileManager.default.fileExists(atPath: directory + "/" + query.name + ".parquet") {
                throw APIError(
                    .conflict, .conflict, "\(request.destination)/\(query.name).parquet exists", fix: "send \"overwrite\": true to replace it")
            }
        }
        let logger = logger
        let queries = planned
        let target = (request.country.map { $0 + " → " } ?? "") + request.destination
        return PlannedJob(target: target) { context in
            var options = ExtractOptions()
            options.parquet.createdBy = "ferry"
            options.overwrite = overwrite
            let volumes: DatabricksFilesClient?
            let sink: any ExtractDestination
            switch destination {
            case .local(let directory):
                volumes = nil
                sink = LocalDirectoryDestination(directory: directory)
            case .volume(let path):
                let client = DatabricksFilesClient(
                    configuration: try DatabricksConfiguration.fromEnvironment(ProcessInfo.processInfo.environment), logger: logger)
                volumes = client
                sink = try DatabricksVolumeDestination(client: client, directory: path)
            }
            defer { if let volumes { Task { await volumes.shutdown() } } }
            try await sink.prepare()
            let runner = source.runner(logger: logger)
            var reports: [ExtractReport] = []
            var doneRows: Int64 = 0
            var doneBytes: Int64 = 0
            do {
                for query in queries {
                    try Task.checkCancellation()
                    context.phase("extracting \(query.name)")
                    let (rowsBefore, bytesBefore) = (doneRows, doneBytes)
                    let report = try await runner.extract(
                        name: query.name, sql: query.sql, bindings: query.bindings, literalSQL: query.literal, to: sink, options: options
                    ) { rows, bytes in
                        context.progress(rows: rowsBefore + rows, bytes: bytesBefore + bytes)
                    }
                    doneRows += report.rows
                    doneBytes += report.bytes
                    reports.append(report)
                }
            } catch {
                await runner.close()
                throw error
            }
            await runner.close()
            context.progress(rows: doneRows, bytes: doneBytes, phase: "done")
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Result: Encodable {
                var destination: String
                var queries: [ExtractReport]
                var rows: Int64
                var bytes: Int64
            }
            let result = Result(destination: sink.location, queries: reports, rows: doneRows, bytes: doneBytes)
            return String(decoding: try encoder.encode(result), as: UTF8.self)
        }
    }

    enum Destination {
        case local(String)
        case volume(String)
    }

    /// A Volume path, or a directory under `root` (relative, no `..`, no hidden names): anything else is a 422.
    static func destination(_ text: String, root: String) throws -> Destination {
        if text.hasPrefix("/Volumes/") { return .volume(text) }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard !text.isEmpty, !text.hasPrefix("/"), text.utf8.count <= 1024,
            parts.allSatisfy({ !$0.isEmpty && !$0.hasPrefix(".") && $0.allSatisfy { $0.isLetter || $0.isNumber || "-_=@+,".contains($0) } })
        else {
            throw APIError(
                .unprocessableContent, .invalidInput,
                "destination \"\(PrintableText.escaped(String(text.prefix(100))))\" is neither a directory under the server's extract root nor a /Volumes/ path",
                fix: "give a relative directory (letters, digits, - _ = @ + , and /), or /Volumes/catalog/schema/volume/…")
        }
        return .local(URL(fileURLWithPath: root).standardizedFileURL.path + "/" + text)
    }

    func pipeline(_ name: String) throws -> PipelineConfiguration {
        guard let pipeline = configuration.pipelines.first(where: { $0.name == name }) else {
            let known = configuration.pipelines.map(\.name).sorted()
            throw APIError(
                .notFound, .notFound, "no pipeline \(name)",
                fix: known.isEmpty ? "this server has no pipelines" : "use one of \(known.joined(separator: ", "))")
        }
        return pipeline
    }

    func redisClient() throws -> RedisClient {
        guard let redis else {
            throw APIError(.serviceUnavailable, .unsupported, "this server has no Redis client for pipelines", fix: "configure redis: and pipelines")
        }
        return redis
    }

    func sync(pipeline name: String, user: Permissions.User) async throws -> PlannedJob {
        let pipeline = try pipeline(name)
        let table = "\(pipeline.target.schema).\(pipeline.target.table)"
        guard user.grant(table: table, .write) != nil else {
            throw APIError(
                .forbidden, .permission, "\(user.name) may not write \(table), pipeline \(name)'s mirror",
                fix: "grant `- table: \(table)` with `access: write` or `read_write`")
        }
        let redis = try redisClient()
        let (configuration, logger) = (configuration, logger)
        return PlannedJob(target: name) { context in
            var options = TableSyncPipeline.Options()
            options.progress = { progress in
                context.progress(rows: Int64(progress.applied), bytes: 0, phase: "\(progress.phase.rawValue): \(progress.produced) queued")
            }
            let runner = try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, options: options, logger: logger)
            let (produced, applied) = try await runner.runOnce()
            context.progress(rows: Int64(applied), bytes: 0, phase: "done")
            return
                "{\"pipeline\":\(JSONText.string(name)),\"queued\":\(produced),\"applied\":\(applied),\"dead_lettered\":\(runner.progress.deadLettered)}"
        }
    }

    func reconcile(pipeline name: String, repair: Bool, user: Permissions.User) async throws -> PlannedJob {
        let pipeline = try pipeline(name)
        let table = "\(pipeline.target.schema).\(pipeline.target.table)"
        guard let grant = user.grant(table: table, repair ? .readWrite : .read) else {
            throw APIError(
                .forbidden, .permission, "\(user.name) may not \(repair ? "repair" : "read") \(table), pipeline \(name)'s mirror",
                fix: "grant `- table: \(table)` with `access: \(repair ? "read_write" : "read")`")
        }
        let redis = try redisClient()
        let (configuration, logger) = (configuration, logger)
        let limit = grant.maxDeleteRows
        return PlannedJob(target: name) { context in
            let reconciler = try Reconciler(pipeline, configuration: configuration, redis: redis, logger: logger)
            context.phase("comparing")
            var report = try await reconciler.run(repair: false)
            if repair, report.differences > 0 {
                // Repair soft-deletes the rows gone from the source: over the user's max_delete_rows, nothing is touched.
                if let limit, report.extra.count > limit {
                    throw FerryError(
                        .permission,
                        "repairing \(name) would soft-delete \(report.extra.count) rows, over \(user.name)'s max_delete_rows of \(limit); nothing was changed",
                        fix: "check why the source lost them; a user with a higher max_delete_rows can repair")
                }
                context.phase("repairing")
                report = try await reconciler.run(repair: true)
            }
            context.progress(rows: Int64(report.sourceRows), bytes: 0, phase: "done")
            return
                "{\"pipeline\":\(JSONText.string(name)),\"differences\":\(report.differences),\"missing\":\(report.missing.count),\"different\":\(report.different.count),\"extra\":\(report.extra.count),\"source_rows\":\(report.sourceRows),\"mirror_rows\":\(report.mirrorRows),\"repaired\":\(report.repaired),\"soft_deleted\":\(report.softDeleted)}"
        }
    }
}

/// What the status page shows, gathered at most every 2 s whoever asks: each pipeline's status (as `ferry status`),
/// the daemon's jobs as readiness sees them, the cluster's nodes.
final class UIStateSource: Sendable {
    let configuration: FerryConfiguration
    let redis: RedisClient?
    let readiness: ReadinessMonitor
    let cluster: DaemonClusterControl?
    let logger: Logger
    private let cached = Mutex<(at: ContinuousClock.Instant, state: UIState)?>(nil)

    init(configuration: FerryConfiguration, redis: RedisClient?, readiness: ReadinessMonitor, cluster: DaemonClusterControl?, logger: Logger) {
        self.configuration = configuration
        self.redis = redis
        self.readiness = readiness
        self.cluster = cluster
        self.logger = logger
    }

    @Sendable func state() async -> UIState {
        if let (at, state) = cached.withLock({ $0 }), ContinuousClock.now - at < .seconds(2) { return state }
        var state = UIState()
        if let redis {
            for pipeline in configuration.pipelines {
                let status = await PipelineStatus.collect(pipeline, configuration: configuration, redis: redis, logger: logger)
                var shown = UIState.Pipeline(name: pipeline.name, state: status.failed ? "failed" : "running")
                shown.watermark = status.sourceWatermark
                shown.queue = status.queueLength
                shown.lag = status.lag
                shown.applied = status.rowsApplied
                shown.rowsPerSecond = status.rowsPerSecond.map { Int($0) }
                shown.deadLetters = status.deadLetters
                shown.lastError = status.lastError
                state.pipelines.append(shown)
            }
        }
        state.services = readiness.snapshot.jobs.map { UIState.Service(name: $0.name, state: $0.state.rawValue, error: $0.error) }
        if let cluster {
            let status = await ClusterInspector.inspect(
                cluster.nodes, etcd: cluster.operations.etcd, scope: cluster.operations.keys.scope, logger: logger)
            state.nodes = status.nodes.map { node in
                UIState.Node(
                    name: node.name, role: node.role,
                    lag: node.lagBytes.map { "\($0) bytes" + (node.lagSeconds.map { String(format: ", %.1f s", $0) } ?? "") })
            }
        }
        cached.withLock { $0 = (.now, state) }
        return state
    }
}

/// The backups for the API: the repository's list, and a backup taken now as a job (as the schedule takes them).
struct DaemonBackupControl: BackupControl {
    let settings: BackupConfiguration
    let endpoint: PostgresEndpoint
    /// The `ferry` the restored server's `restore_command` runs when `backup.ferry_binary` does not say.
    let ferryExecutable: String?
    let logger: Logger

    func restore(_ request: Components.Schemas.RestoreRequest) throws -> PlannedJob {
        guard let root = settings.restoreRoot else {
            throw APIError(
                .notFound, .notFound, "this server does not restore through the API",
                fix: "set backup.restore_root: a directory restores may go under")
        }
        let name = request.target
        guard (1...200).contains(name.utf8.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw APIError(
                .unprocessableContent, .invalidInput, "target \"\(PrintableText.escaped(String(name.prefix(60))))\" is not a plain directory name",
                fix: "give a name of letters, digits, - and _: it is created under backup.restore_root")
        }
        let target = URL(fileURLWithPath: root).standardizedFileURL.path + "/" + name
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: target), !contents.isEmpty {
            throw APIError(.conflict, .conflict, "\(name) exists under backup.restore_root and is not empty", fix: "choose a new target name")
        }
        let point: BackupRestorer.Target
        do {
            point = try BackupRestorer.Target.parse(request.to ?? "latest", what: "to")
            if let backup = request.backup { try BackupStore.checkID(backup) }
        } catch {
            throw APIError(.unprocessableContent, error)
        }
        guard let binary = settings.ferryBinary ?? ferryExecutable else {
            throw APIError(
                .unprocessableContent, .configuration, "no ferry binary for the restored server's restore_command", fix: "set backup.ferry_binary")
        }
        let action = BackupRestorer.TargetAction(rawValue: request.action?.rawValue ?? "promote") ?? .promote
        let (settings, logger) = (settings, logger)
        return PlannedJob(target: name) { context in
            var restore = BackupRestore(repository: try BackupRepositories.open(settings.repository), target: target, ferryBinary: binary)
            restore.recoveryTarget = point
            restore.action = action
            restore.backupID = request.backup
            restore.port = request.port
            restore.archiveMode = request.archiveMode == .preserve ? nil : "off"
            context.phase("restoring")
            let report = try await restore.run { done, total in
                context.progress(rows: 0, bytes: done, phase: total > 0 ? "restoring \(done * 100 / total)%" : "restoring")
            }
            logger.notice("restored through the API", metadata: ["ferry.target": "\(target)", "ferry.backup": "\(report.backup)"])
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(report), as: UTF8.self)
        }
    }

    func list() async throws -> Components.Schemas.BackupList {
        let repository = try BackupRepositories.open(settings.repository)
        let manifests = try await BaseBackup.blocking { () throws(FerryError) in try BackupStore(repository: repository).manifests() }
        return .init(
            repository: repository.location,
            backups: manifests.map { manifest in
                .init(
                    id: manifest.id, kind: manifest.kind == .full ? .full : .incremental, prior: manifest.prior, startedAt: manifest.started,
                    stoppedAt: manifest.stopped, bytes: Int64(manifest.bytes), storedBytes: Int64(manifest.storedBytes), timeline: manifest.timeline,
                    startWal: manifest.startWAL, stopWal: manifest.stopWAL)
            })
    }

    func take(kind: String) -> JobWork {
        let (settings, endpoint, logger) = (settings, endpoint, logger)
        return { context in
            context.phase("taking a \(kind) backup")
            let repository = try BackupRepositories.open(settings.repository)
            let schedule = BackupSchedule(settings: settings, endpoint: endpoint, reportStall: { _ in }, logger: logger)
            let manifest = try await schedule.take(
                kind == "incremental" ? .incremental : .full, repository: repository,
                catalog: try BackupSchedule.catalog(settings, repository: repository))
            context.progress(rows: 0, bytes: Int64(manifest.bytes), phase: "done")
            return
                "{\"id\":\(JSONText.string(manifest.id)),\"kind\":\(JSONText.string(manifest.kind.rawValue)),\"bytes\":\(manifest.bytes),\"stored_bytes\":\(manifest.storedBytes)}"
        }
    }
}

/// The cluster's control for the API: the same operations as `ferry cluster … --json`.
struct DaemonClusterControl: ClusterControl {
    let operations: ClusterOperations
    let nodes: [(name: String, endpoint: PostgresEndpoint)]
    let backups: (repository: String, every: Duration?)?
    let logger: Logger

    static func json(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }

    func status() async throws -> Data {
        try Self.json(await ClusterInspector.inspect(nodes, etcd: operations.etcd, scope: operations.keys.scope, backups: backups, logger: logger))
    }

    func switchover(to: String?, timeout: Int?) async throws -> Data {
        try Self.json(try await operations.switchover(to: to, timeout: .seconds(timeout ?? 30)))
    }

    func failover(to: String, timeout: Int?) async throws -> Data {
        try Self.json(try await operations.failover(to: to, timeout: .seconds(timeout ?? 30)))
    }

    func rejoin(node: String, copy: Bool, timeout: Int?) async throws -> Data {
        try Self.json(try await operations.rejoin(node, copy: copy, timeout: .seconds(timeout ?? 120)))
    }
}

/// The API's life in `ferry run`: creates its tables (trying again while PostgreSQL is not there yet), marks the jobs a
/// previous process left running as failed, reloads the permissions file on SIGHUP (a file with problems keeps the
/// one in force), and at shutdown cancels the running jobs (recorded as cancelled by the shutdown).
struct APILifecycle: Service {
    let store: JobStore
    let audit: AuditLog
    let queue: JobQueue
    let permissions: PermissionsSource
    let session: PostgresSession
    let startup: StartupGate
    let logger: Logger

    func run() async throws {
        // SIGHUP is trapped first: one that arrives while the tables are being prepared reloads the permissions too
        // (left to its default, it would end the process).
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let reloads = Task {
            for await _ in signals.cancelOnGracefulShutdown() {
                do throws(FerryError) {
                    try permissions.reload()
                    logger.notice("API permissions reloaded", metadata: ["ferry.users": "\(permissions.permissions.users.count)"])
                } catch {
                    logger.error("API permissions not reloaded; the ones in force stay", metadata: ["ferry.error": "\(error.message)"])
                }
            }
        }
        let flusher = Task { await audit.runFlusher() }
        defer { flusher.cancel() }
        while !Task.isShuttingDownGracefully {
            do {
                try await store.prepare()
                try await audit.prepare()
                let interrupted = try await store.recoverInterrupted()
                if interrupted > 0 {
                    logger.warning("jobs left running by a previous process were marked failed", metadata: ["ferry.jobs": "\(interrupted)"])
                }
                startup.markOpen()
                break
            } catch {
                logger.warning(
                    "the API's tables are not ready; trying again", metadata: ["ferry.error": "\(PostgresDiagnosis.reason(error))"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
            }
        }
        try? await gracefulShutdown()
        reloads.cancel()
        await queue.shutdown()
        flusher.cancel()
        await flusher.value
        await session.close()
    }
}
