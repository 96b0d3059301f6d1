package import FerryAPIContract
package import FerryCore
package import Foundation
import HTTPTypes
import OpenAPIRuntime
import Synchronization

/// A job a request asked for, checked and ready to run: what it works on, and the work.
package struct PlannedJob: Sendable {
    package var target: String
    package var work: JobWork

    package init(target: String, work: @escaping JobWork) {
        self.target = target
        self.work = work
    }
}

/// What jobs do, provided by the daemon (which knows the pipelines and the query library). Each method checks the
/// request and the user's permissions first, throwing ``APIError`` (403 naming the missing permission, 404 for an
/// unknown pipeline, 422 for a request that cannot run), and only then returns the work.
package protocol JobPlanner: Sendable {
    func extract(_ request: Components.Schemas.ExtractRequest, user: Permissions.User) async throws -> PlannedJob
    func sync(pipeline: String, user: Permissions.User) async throws -> PlannedJob
    func reconcile(pipeline: String, repair: Bool, user: Permissions.User) async throws -> PlannedJob
}

/// The HA cluster's control, provided by the daemon: each returns the JSON object `ferry cluster … --json` prints.
package protocol ClusterControl: Sendable {
    func status() async throws -> Data
    func switchover(to: String?, timeout: Int?) async throws -> Data
    func failover(to: String, timeout: Int?) async throws -> Data
    func rejoin(node: String, copy: Bool, timeout: Int?) async throws -> Data
}

/// The backups' control, provided by the daemon when it has a `backup:` section.
package protocol BackupControl: Sendable {
    func list() async throws -> Components.Schemas.BackupList
    /// The work of taking a `kind` backup ("full" or "incremental").
    func take(kind: String) -> JobWork
    /// A restore, checked (404 without `backup.restore_root`, 422 for a target or point that cannot be, 409 for a
    /// directory that is not empty) before it is queued.
    func restore(_ request: Components.Schemas.RestoreRequest) throws -> PlannedJob
}

/// What the service answers from.
package struct APIEnvironment: Sendable {
    package var version: String
    package var readiness: @Sendable () -> Components.Schemas.Readiness
    package var metrics: @Sendable () -> [UInt8]
    package var cluster: (any ClusterControl)?
    package var jobs: JobQueue?
    package var planner: (any JobPlanner)?
    package var backups: (any BackupControl)?

    package init(
        version: String, readiness: @escaping @Sendable () -> Components.Schemas.Readiness, metrics: @escaping @Sendable () -> [UInt8],
        cluster: (any ClusterControl)? = nil, jobs: JobQueue? = nil, planner: (any JobPlanner)? = nil
    ) {
        self.version = version
        self.readiness = readiness
        self.metrics = metrics
        self.cluster = cluster
        self.jobs = jobs
        self.planner = planner
    }
}

/// Every operation of openapi.yaml. Authentication happened in ``APIGuard`` (the user is ``APIRequestInfo/user``);
/// permissions are checked here, per resource. Errors are thrown as ``APIError`` and answered in the one error shape.
package struct FerryAPIService: APIProtocol {
    package let environment: APIEnvironment
    /// Finished jobs as the API shows them (they never change): decoding a result's JSON on every request cost more
    /// than the rest of the lookup.
    let shown = ShownJobs()

    package init(_ environment: APIEnvironment) { self.environment = environment }

    /// `record` as the API shows it; a finished job's is converted once.
    func schemaOf(_ record: JobRecord) -> Components.Schemas.Job {
        guard record.state.isFinished else { return Self.schema(record) }
        if let cached = shown.jobs.withLock({ $0[record.id] }) { return cached }
        let converted = Self.schema(record)
        shown.jobs.withLock { cache in
            if cache.count >= 10_000 { cache.removeAll(keepingCapacity: true) }
            cache[record.id] = converted
        }
        return converted
    }

    // MARK: Discovery and health

    static let endpoints: [(String, String, String)] = [
        ("GET", "/health/live", "the process is up"), ("GET", "/health/ready", "every configured server answers and every job runs"),
        ("GET", "/metrics", "Prometheus metrics"), ("POST", "/extract", "start an extraction (ferry extract) as a job"),
        ("POST", "/sync/{pipeline}", "start one pass of a pipeline (ferry sync --once) as a job"),
        ("POST", "/reconcile/{pipeline}", "start a reconcile (ferry reconcile) as a job"), ("GET", "/jobs", "jobs, newest first"),
        ("GET", "/jobs/{id}", "one job with its progress, result or error"), ("DELETE", "/jobs/{id}", "cancel a job"),
        ("GET", "/cluster", "the HA cluster's nodes, archiver and backups"), ("POST", "/cluster/switchover", "planned switchover"),
        ("POST", "/cluster/failover", "manual failover"), ("POST", "/cluster/rejoin/{node}", "rewind or copy a node and make it follow"),
        ("GET", "/backups", "the repository's backups"), ("POST", "/backups", "take a base backup now, as a job"),
        ("POST", "/restore", "restore a backup into a new directory, as a job"),
    ]

    /// The methods the API takes at `path` (its templates' `{…}` match one segment); empty when no route matches.
    package static func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        return endpoints.filter { endpoint in
            let template = endpoint.1.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard template.count == segments.count else { return false }
            return zip(template, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.map(\.0) + (path == "/" ? ["GET"] : [])
    }

    package func getIndex(_ input: Operations.GetIndex.Input) async throws -> Operations.GetIndex.Output {
        .ok(
            .init(
                body: .json(
                    .init(
                        service: "ferry", version: environment.version,
                        endpoints: Self.endpoints.map { .init(method: $0.0, path: $0.1, description: $0.2) }))))
    }

    package func getLive(_ input: Operations.GetLive.Input) async throws -> Operations.GetLive.Output {
        .ok(.init(body: .json(.init(status: .live))))
    }

    package func getReady(_ input: Operations.GetReady.Input) async throws -> Operations.GetReady.Output {
        let readiness = environment.readiness()
        return readiness.status == .ready ? .ok(.init(body: .json(readiness))) : .serviceUnavailable(.init(body: .json(readiness)))
    }

    package func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        .ok(.init(body: .plainText(HTTPBody(environment.metrics()))))
    }

    // MARK: Jobs

    func user() throws -> Permissions.User {
        guard let user = APIRequestInfo.user else {
            throw APIError(.unauthorized, .authentication, "missing or unknown bearer token", fix: "send `Authorization: Bearer <token>`")
        }
        return user
    }

    func jobQueue() throws -> JobQueue {
        guard let jobs = environment.jobs else {
            throw APIError(
                .serviceUnavailable, .unsupported, "this server runs no jobs: it has no job store",
                fix: "give ferry run a postgres: section (jobs are kept in PostgreSQL) and an api: section")
        }
        return jobs
    }

    func jobsAndPlanner() throws -> (JobQueue, any JobPlanner) {
        let jobs = try jobQueue()
        guard let planner = environment.planner else {
            throw APIError(.serviceUnavailable, .unsupported, "this server starts no jobs", fix: "run it as ferry run with an api: section")
        }
        return (jobs, planner)
    }

    static func checkKey(_ key: String?) throws -> String? {
        guard let key else { return nil }
        // The spec asks for visible ASCII; the value arrives percent-decoded (OpenAPIRuntime reads headers as URI text), so
        // a `%20` in it is a space here: only control characters and the length are refused.
        guard (1...200).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw APIError(
                .badRequest, .invalidInput, "Idempotency-Key must be 1 to 200 visible ASCII characters", fix: "use a UUID, for example")
        }
        return key
    }

    static func checkPipeline(_ name: String) throws -> String {
        guard (1...63).contains(name.utf8.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw APIError(
                .badRequest, .invalidInput, "\"\(PrintableText.escaped(String(name.prefix(63))))\" is not a pipeline name",
                fix: "use the name in ferry.yaml (letters, digits, - and _)")
        }
        return name
    }

    /// The request in a canonical form (what makes two requests the same, for Idempotency-Key).
    static func canonical(_ parts: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(parts)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// A replay of an Idempotency-Key (200 with its job), or `plan()` submitted as a new job (202).
    func start(
        _ kind: JobRecord.Kind, request: String, key: String?, user: Permissions.User, plan: () async throws -> PlannedJob
    ) async throws -> (Components.Schemas.Job, replayed: Bool) {
        let (jobs, _) = try jobsAndPlanner()
        if let replay = try await jobs.replay(kind: kind, user: user.name, request: request, idempotencyKey: key) {
            return (Self.schema(replay), true)
        }
        let planned = try await plan()
        let (record, replayed) = try await jobs.submit(
            kind: kind, target: planned.target, user: user.name, request: request, idempotencyKey: key, work: planned.work)
        return (Self.schema(record), replayed)
    }

    package func startExtract(_ input: Operations.StartExtract.Input) async throws -> Operations.StartExtract.Output {
        let user = try user()
        let key = try Self.checkKey(input.headers.idempotencyKey)
        let (_, planner) = try jobsAndPlanner()
        guard case .json(let request) = input.body else { throw APIError(.badRequest, .invalidInput, "the body must be JSON") }
        let (job, replayed) = try await start(.extract, request: Self.canonical(request), key: key, user: user) {
            try await planner.extract(request, user: user)
        }
        return replayed ? .ok(.init(body: .json(job))) : .accepted(.init(headers: .init(location: "/jobs/\(job.id)"), body: .json(job)))
    }

    package func startSync(_ input: Operations.StartSync.Input) async throws -> Operations.StartSync.Output {
        let user = try user()
        let key = try Self.checkKey(input.headers.idempotencyKey)
        let pipeline = try Self.checkPipeline(input.path.pipeline)
        let (_, planner) = try jobsAndPlanner()
        let (job, replayed) = try await start(.sync, request: Self.canonical(["pipeline": pipeline]), key: key, user: user) {
            try await planner.sync(pipeline: pipeline, user: user)
        }
        return replayed ? .ok(.init(body: .json(job))) : .accepted(.init(headers: .init(location: "/jobs/\(job.id)"), body: .json(job)))
    }

    package func startReconcile(_ input: Operations.StartReconcile.Input) async throws -> Operations.StartReconcile.Output {
        let user = try user()
        let key = try Self.checkKey(input.headers.idempotencyKey)
        let pipeline = try Self.checkPipeline(input.path.pipeline)
        let (_, planner) = try jobsAndPlanner()
        var repair = false
        if case .json(let request) = input.body { repair = request.repair ?? false }
        let (job, replayed) = try await start(
            .reconcile, request: Self.canonical(["pipeline": pipeline, "repair": "\(repair)"]), key: key, user: user
        ) {
            try await planner.reconcile(pipeline: pipeline, repair: repair, user: user)
        }
        return replayed ? .ok(.init(body: .json(job))) : .accepted(.init(headers: .init(location: "/jobs/\(job.id)"), body: .json(job)))
    }

    package func listJobs(_ input: Operations.ListJobs.Input) async throws -> Operations.ListJobs.Output {
        let user = try user()
        let jobs = try jobQueue()
        let limit = input.query.limit ?? 100
        guard (1...1000).contains(limit) else { throw APIError(.badRequest, .invalidInput, "limit \(limit) is out of range", fix: "give 1 to 1000") }
        let before = try input.query.before.map { try Self.jobID($0) }
        let records = try await jobs.store.list(
            user: user.admin ? nil : user.name, state: input.query.state.flatMap { JobRecord.State(rawValue: $0.rawValue) },
            kind: input.query.kind.flatMap { JobRecord.Kind(rawValue: $0.rawValue) }, before: before, limit: limit)
        var shown: [Components.Schemas.Job] = []
        for record in records { shown.append(schemaOf(await jobs.live(record.id) ?? record)) }
        return .ok(.init(body: .json(.init(jobs: shown, next: records.count == limit ? records.last?.id.uuidString.lowercased() : nil))))
    }

    static func jobID(_ text: String) throws -> UUID {
        guard text.utf8.count == 36, let id = UUID(uuidString: text) else {
            throw APIError(
                .badRequest, .invalidInput, "\"\(PrintableText.escaped(String(text.prefix(40))))\" is not a job id", fix: "use the id POST returned")
        }
        return id
    }

    /// The job, when `user` may see it (their own, or any for an admin); otherwise 404, as for a job that does not exist.
    func visibleJob(_ text: String, user: Permissions.User) async throws -> JobRecord {
        let jobs = try jobQueue()
        let id = try Self.jobID(text)
        var found = await jobs.known(id)
        if found == nil, let stored = try await jobs.store.job(id) {
            found = stored
            await jobs.remember(stored)
        }
        guard let record = found, user.admin || record.requestedBy == user.name else {
            throw APIError(.notFound, .notFound, "no job \(id.uuidString.lowercased())", fix: "GET /jobs lists yours")
        }
        return record
    }

    package func getJob(_ input: Operations.GetJob.Input) async throws -> Operations.GetJob.Output {
        let user = try user()
        // A finished job shown before: no hop to the queue, no store.
        if let id = UUID(uuidString: input.path.id), let job = shown.jobs.withLock({ $0[id] }), user.admin || job.requestedBy == user.name {
            return .ok(.init(body: .json(job)))
        }
        return .ok(.init(body: .json(schemaOf(try await visibleJob(input.path.id, user: user)))))
    }

    package func cancelJob(_ input: Operations.CancelJob.Input) async throws -> Operations.CancelJob.Output {
        let user = try user()
        let record = try await visibleJob(input.path.id, user: user)
        let jobs = try jobQueue()
        guard !record.state.isFinished, let cancelling = await jobs.cancel(record.id, by: user.name) else {
            throw APIError(
                .conflict, .conflict, "job \(record.id.uuidString.lowercased()) has already \(record.state.rawValue)",
                fix: "a finished job cannot be cancelled")
        }
        return .accepted(.init(body: .json(Self.schema(cancelling))))
    }

    static func schema(_ record: JobRecord) -> Components.Schemas.Job {
        var result: Components.Schemas.Job.ResultPayload?
        if let text = record.result, let object = try? JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(text.utf8)) {
            result = .init(additionalProperties: object)
        }
        return .init(
            id: record.id.uuidString.lowercased(), kind: Components.Schemas.JobKind(rawValue: record.kind.rawValue) ?? .extract,
            target: record.target, state: Components.Schemas.JobState(rawValue: record.state.rawValue) ?? .failed, createdAt: record.createdAt,
            startedAt: record.startedAt, finishedAt: record.finishedAt, requestedBy: record.requestedBy,
            progress: .init(rows: record.rows, bytes: record.bytes, phase: record.phase), result: result,
            error: record.error.map { .init(error: $0.code.description, message: $0.message, fix: $0.fix) })
    }

    // MARK: Backups

    func backupControl() throws -> any BackupControl {
        let user = try user()
        guard user.admin else {
            throw APIError(
                .forbidden, .permission, "\(user.name) may not use the backups",
                fix: "the backups' endpoints need `- admin: true` among the user's permissions")
        }
        guard let backups = environment.backups else {
            throw APIError(.notFound, .notFound, "this server keeps no backups", fix: "add a backup: section to ferry.yaml (docs/BACKUPS.md)")
        }
        return backups
    }

    package func listBackups(_ input: Operations.ListBackups.Input) async throws -> Operations.ListBackups.Output {
        .ok(.init(body: .json(try await backupControl().list())))
    }

    package func startBackup(_ input: Operations.StartBackup.Input) async throws -> Operations.StartBackup.Output {
        let backups = try backupControl()
        let user = try user()
        let key = try Self.checkKey(input.headers.idempotencyKey)
        var kind = "full"
        if case .json(let request) = input.body, let asked = request.kind { kind = asked.rawValue }
        let (job, replayed) = try await start(.backup, request: Self.canonical(["kind": kind]), key: key, user: user) {
            PlannedJob(target: kind, work: backups.take(kind: kind))
        }
        return replayed ? .ok(.init(body: .json(job))) : .accepted(.init(headers: .init(location: "/jobs/\(job.id)"), body: .json(job)))
    }

    package func startRestore(_ input: Operations.StartRestore.Input) async throws -> Operations.StartRestore.Output {
        let backups = try backupControl()
        let user = try user()
        let key = try Self.checkKey(input.headers.idempotencyKey)
        guard case .json(let request) = input.body else { throw APIError(.badRequest, .invalidInput, "the body must be JSON") }
        let (job, replayed) = try await start(.restore, request: Self.canonical(request), key: key, user: user) {
            try backups.restore(request)
        }
        return replayed ? .ok(.init(body: .json(job))) : .accepted(.init(headers: .init(location: "/jobs/\(job.id)"), body: .json(job)))
    }

    // MARK: Cluster

    func admin() throws -> (any ClusterControl) {
        let user = try user()
        guard user.admin else {
            throw APIError(
                .forbidden, .permission, "\(user.name) may not control the cluster",
                fix: "the cluster's endpoints need `- admin: true` among the user's permissions")
        }
        guard let cluster = environment.cluster else {
            throw APIError(.notFound, .notFound, "this server controls no cluster", fix: "add a cluster: section to ferry.yaml")
        }
        return cluster
    }

    static func document(_ data: Data) throws -> Components.Schemas.ClusterDocument {
        .init(additionalProperties: try JSONDecoder().decode(OpenAPIObjectContainer.self, from: data))
    }

    static func timeout(_ value: Int?) throws -> Int? {
        guard let value else { return nil }
        guard (1...ClusterRequestBody.maximumTimeout).contains(value) else {
            throw APIError(
                .badRequest, .invalidInput, "timeout_seconds \(value) is out of range", fix: "give 1 to \(ClusterRequestBody.maximumTimeout) seconds")
        }
        return value
    }

    static func node(_ name: String?, _ what: String) throws -> String? {
        guard let name else { return nil }
        guard (1...63).contains(name.utf8.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw APIError(
                .badRequest, .invalidInput, "\(what) \"\(PrintableText.escaped(String(name.prefix(63))))\" is not a node name",
                fix: "use a node's name from GET /cluster")
        }
        return name
    }

    package func getCluster(_ input: Operations.GetCluster.Input) async throws -> Operations.GetCluster.Output {
        .ok(.init(body: .json(try Self.document(try await admin().status()))))
    }

    package func switchover(_ input: Operations.Switchover.Input) async throws -> Operations.Switchover.Output {
        let cluster = try admin()
        var to: String?
        var timeout: Int?
        if case .json(let body) = input.body {
            to = try Self.node(body.to, "to")
            timeout = try Self.timeout(body.timeoutSeconds)
        }
        return .ok(.init(body: .json(try Self.document(try await cluster.switchover(to: to, timeout: timeout)))))
    }

    package func failover(_ input: Operations.Failover.Input) async throws -> Operations.Failover.Output {
        let cluster = try admin()
        guard case .json(let body) = input.body, let to = try Self.node(body.to, "to") else {
            throw APIError(.badRequest, .invalidInput, "the body names no standby", fix: "send {\"to\": \"node2\"}")
        }
        return .ok(.init(body: .json(try Self.document(try await cluster.failover(to: to, timeout: try Self.timeout(body.timeoutSeconds))))))
    }

    package func rejoin(_ input: Operations.Rejoin.Input) async throws -> Operations.Rejoin.Output {
        let cluster = try admin()
        let node = try Self.node(input.path.node, "node") ?? ""
        var copy = false
        var timeout: Int?
        if case .json(let body) = input.body {
            copy = body.copy ?? false
            timeout = try Self.timeout(body.timeoutSeconds)
        }
        return .ok(.init(body: .json(try Self.document(try await cluster.rejoin(node: node, copy: copy, timeout: timeout)))))
    }
}

/// Finished jobs as shown, shared by the service's copies.
final class ShownJobs: Sendable {
    let jobs = Mutex<[UUID: Components.Schemas.Job]>([:])
}
