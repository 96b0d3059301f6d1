import Crypto
package import FerryCore
package import Foundation
package import HTTPTypes
package import Logging
import Synchronization

/// An error the API answers with `status` (and `Retry-After` when set), in the one error shape.
package struct APIError: Error, Sendable {
    package var status: HTTPResponse.Status
    package var error: FerryError
    package var retryAfterSeconds: Int?

    package init(_ status: HTTPResponse.Status, _ error: FerryError, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.error = error
        self.retryAfterSeconds = retryAfterSeconds
    }

    package init(_ status: HTTPResponse.Status, _ code: FerryError.Code, _ message: String, fix: String? = nil) {
        self.init(status, FerryError(code, message, fix: fix))
    }
}

/// What a running job is handed: where to report progress, and its id.
package final class JobContext: Sendable {
    package let id: UUID
    private let state: Mutex<(rows: Int64, bytes: Int64, phase: String)>

    package init(id: UUID) {
        self.id = id
        state = Mutex((0, 0, "starting"))
    }

    /// Rows and bytes so far, and what it is doing (`extracting ventas`, `applying`).
    package func progress(rows: Int64, bytes: Int64, phase: String? = nil) {
        state.withLock { current in
            current.rows = max(0, rows)
            current.bytes = max(0, bytes)
            if let phase { current.phase = phase }
        }
    }

    package func phase(_ phase: String) {
        state.withLock { $0.phase = phase }
    }

    var snapshot: (rows: Int64, bytes: Int64, phase: String) { state.withLock { $0 } }
}

/// The work of a job: reports through the context, returns its result as a JSON object's text, throws a
/// ``FerryError`` that says what went wrong (kept as the job's error) or is cancelled.
package typealias JobWork = @Sendable (JobContext) async throws -> String

/// Runs the API's jobs: at most `limits[kind]` of a kind at once (more is a 429 with Retry-After), each in a task of
/// its own, its state and progress written to the ``JobStore`` as it goes (progress at most once a second), and
/// cancelled by `DELETE /jobs/{id}`. Idempotency keys name the job a request started: the same request again returns
/// that job; another request under the same key is a 409.
package actor JobQueue {
    package let store: JobStore
    package let limits: [JobRecord.Kind: Int]
    private let logger: Logger
    private var running: [UUID: (task: Task<Void, Never>, context: JobContext, record: JobRecord)] = [:]
    private var cancelledBy: [UUID: String] = [:]
    /// Finished jobs, which never change again: `GET /jobs/{id}` answers them from here (the newest 10,000).
    private var finished: [UUID: JobRecord] = [:]
    private var finishedOrder: [UUID] = []
    static let finishedKept = 10_000

    package init(store: JobStore, limits: [JobRecord.Kind: Int] = [.extract: 2, .sync: 4, .reconcile: 1, .backup: 1, .restore: 1], logger: Logger) {
        self.store = store
        self.limits = limits
        self.logger = logger
    }

    /// Starts `work` as a job, or returns the job `idempotencyKey` already names for `user` with the same `request`
    /// (`replayed`). `request` is the request in a canonical form (what makes two requests the same).
    package func submit(
        kind: JobRecord.Kind, target: String, user: String, request: String, idempotencyKey: String?, work: @escaping JobWork
    ) async throws -> (record: JobRecord, replayed: Bool) {
        let digest = Self.digest(kind, request)
        if let key = idempotencyKey, let replay = try await replayed(key: key, user: user, digest: digest) { return (replay, true) }
        let busy = running.values.filter { $0.record.kind == kind }.count
        let limit = limits[kind] ?? 1
        guard busy < limit else {
            throw APIError(
                .tooManyRequests,
                FerryError(
                    .conflict,
                    "\(busy) \(kind.rawValue) job\(busy == 1 ? "" : "s") already run\(busy == 1 ? "s" : ""), as many as this server runs at once",
                    fix: "try again when one has finished (GET /jobs?state=running&kind=\(kind.rawValue))"),
                retryAfterSeconds: 5)
        }
        var record = JobRecord(id: UUID(), kind: kind, target: target, state: .queued, requestedBy: user, createdAt: Date())
        guard try await store.insert(record, requestSHA256: digest, idempotencyKey: idempotencyKey) else {
            // Another request under the same key won the insert.
            if let key = idempotencyKey, let replay = try await replayed(key: key, user: user, digest: digest) { return (replay, true) }
            throw APIError(.conflict, .conflict, "the job could not be recorded", fix: "send the request again")
        }
        let context = JobContext(id: record.id)
        record.state = .running
        record.startedAt = Date()
        record.phase = "starting"
        let started = record
        let task = Task { [weak self] in
            guard let self else { return }
            await self.execute(started, context: context, work: work)
        }
        running[record.id] = (task, context, record)
        return (record, false)
    }

    /// The job `idempotencyKey` names for `user`, when `request` is the one that started it (nil: none; another request
    /// under the key: 409). Asked before a request is planned, so a retry gets its job whatever changed since.
    package func replay(kind: JobRecord.Kind, user: String, request: String, idempotencyKey: String?) async throws -> JobRecord? {
        guard let key = idempotencyKey else { return nil }
        return try await replayed(key: key, user: user, digest: Self.digest(kind, request))
    }

    static func digest(_ kind: JobRecord.Kind, _ request: String) -> String {
        SHA256.hash(data: Data((kind.rawValue + "\n" + request).utf8)).map { String(format: "%02x", $0) }.joined()
    }

    private func replayed(key: String, user: String, digest: String) async throws -> JobRecord? {
        guard let (record, sameRequest) = try await store.job(idempotencyKey: key, user: user) else { return nil }
        guard sameRequest == digest else {
            throw APIError(
                .conflict, .conflict,
                "Idempotency-Key \(PrintableText.escaped(String(key.prefix(80)))) was used for another request (job \(record.id))",
                fix: "use a new key for a new request")
        }
        return live(record.id) ?? record
    }

    /// Runs one job to its end, writing its state as it changes and its progress every second.
    private func execute(_ started: JobRecord, context: JobContext, work: @escaping JobWork) async {
        var record = started
        try? await store.update(record)
        let reporter = Task { [store] in
            var last = (rows: Int64(-1), bytes: Int64(-1), phase: "")
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let now = context.snapshot
                guard now.rows != last.rows || now.bytes != last.bytes || now.phase != last.phase else { continue }
                last = now
                var progressed = started
                (progressed.rows, progressed.bytes, progressed.phase) = now
                try? await store.updateProgress(progressed)
            }
        }
        let outcome: Result<String, any Error>
        do {
            outcome = .success(try await work(context))
        } catch {
            outcome = .failure(error)
        }
        reporter.cancel()
        _ = await reporter.value
        (record.rows, record.bytes, record.phase) = context.snapshot
        record.finishedAt = Date()
        switch outcome {
        case .success(let result):
            record.state = .succeeded
            record.phase = "done"
            record.result = result
        case .failure(let error):
            if let by = cancelledBy[record.id] {
                record.state = .cancelled
                record.phase = "cancelled"
                record.error = FerryError(.cancelled, "cancelled by \(by)", fix: "start it again if it is still wanted")
            } else {
                record.state = .failed
                record.phase = "failed"
                record.error =
                    (error as? FerryError)
                    ?? FerryError(.server, "the job failed inside Ferry", fix: "read the log of ferry run (ferry.api) for job \(record.id)")
                if !(error is FerryError) {
                    logger.error("job failed", metadata: ["ferry.job": "\(record.id)", "ferry.error": "\(error)"])
                }
            }
        }
        do {
            try await store.update(record)
        } catch {
            logger.error("cannot record a job's end", metadata: ["ferry.job": "\(record.id)", "ferry.error": "\(error)"])
        }
        running[record.id] = nil
        cancelledBy[record.id] = nil
        remember(record)
    }

    /// Keeps a finished job for lookups.
    package func remember(_ record: JobRecord) {
        guard record.state.isFinished, finished.updateValue(record, forKey: record.id) == nil else { return }
        finishedOrder.append(record.id)
        if finishedOrder.count > Self.finishedKept {
            let old = finishedOrder.prefix(finishedOrder.count - Self.finishedKept)
            for id in old { finished[id] = nil }
            finishedOrder.removeFirst(old.count)
        }
    }

    /// A job as of now: running here (live progress), finished (remembered), or nil (ask the store).
    package func known(_ id: UUID) -> JobRecord? {
        live(id) ?? finished[id]
    }

    /// A running job with its progress as of now (fresher than the store's, written once a second); nil when not
    /// running here.
    package func live(_ id: UUID) -> JobRecord? {
        guard let entry = running[id] else { return nil }
        var record = entry.record
        (record.rows, record.bytes, record.phase) = entry.context.snapshot
        return record
    }

    /// Cancels a running job (its work sees Task cancellation); the record says who cancelled it when it ends.
    /// A job that is not running here (finished, or unknown) is nil.
    package func cancel(_ id: UUID, by user: String) -> JobRecord? {
        guard let entry = running[id] else { return nil }
        cancelledBy[id] = user
        entry.task.cancel()
        var record = entry.record
        (record.rows, record.bytes, _) = entry.context.snapshot
        record.phase = "cancelling"
        return record
    }

    /// Waits for every running job to end (for shutdown and tests).
    package func drain() async {
        for entry in running.values { await entry.task.value }
    }

    /// Cancels every running job and waits for them (shutdown: they are recorded as cancelled by the shutdown).
    package func shutdown() async {
        for (id, entry) in running {
            cancelledBy[id] = "the server's shutdown"
            entry.task.cancel()
        }
        await drain()
    }
}
