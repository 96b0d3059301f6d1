package import FerryCore
package import FerryPostgres
package import Foundation
package import Logging
import PostgresNIO

/// A job as the API shows it: what was asked, by whom, how far it got, and how it ended.
package struct JobRecord: Sendable, Equatable {
    package enum Kind: String, Sendable, CaseIterable {
        case extract, sync, reconcile, backup, restore
    }

    package enum State: String, Sendable, CaseIterable {
        case queued, running, succeeded, failed, cancelled

        package var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
    }

    package var id: UUID
    package var kind: Kind
    /// The pipeline, or the extraction's country and destination.
    package var target: String
    package var state: State
    package var requestedBy: String
    package var createdAt: Date
    package var startedAt: Date?
    package var finishedAt: Date?
    package var rows: Int64 = 0
    package var bytes: Int64 = 0
    package var phase: String = "queued"
    /// JSON object text.
    package var result: String?
    package var error: FerryError?

    package init(id: UUID, kind: Kind, target: String, state: State, requestedBy: String, createdAt: Date) {
        self.id = id
        self.kind = kind
        self.target = target
        self.state = state
        self.requestedBy = requestedBy
        self.createdAt = createdAt
    }

    package static func == (lhs: JobRecord, rhs: JobRecord) -> Bool {
        lhs.id == rhs.id && lhs.state == rhs.state && lhs.rows == rhs.rows && lhs.bytes == rhs.bytes && lhs.phase == rhs.phase
            && lhs.result == rhs.result && lhs.error?.message == rhs.error?.message
    }
}

/// Jobs kept in PostgreSQL (`ferry_api.jobs`), so they outlive the process: a job that was queued or running when the
/// process died is marked failed with that reason when the next one starts (``recoverInterrupted()``). One `ferry run`
/// serves the API of a database: a second one starting on it would take the first one's running jobs for interrupted. Idempotency
/// keys are unique per user; a request's SHA-256 tells a retry of it from another request under the same key.
package struct JobStore: Sendable {
    package let session: PostgresSession
    package let logger: Logger
    static let table = "\"ferry_api\".\"jobs\""

    package init(session: PostgresSession, logger: Logger) {
        self.session = session
        self.logger = logger
    }

    /// Creates the schema and table when missing.
    package func prepare() async throws {
        // In a transaction holding an advisory lock: two processes (or tests) creating the schema at once would
        // otherwise collide in PostgreSQL's catalog.
        try await session.withTransaction { connection in
            for statement in [
                "SELECT pg_advisory_xact_lock(hashtext('ferry_api schema'))",
                "CREATE SCHEMA IF NOT EXISTS \"ferry_api\"",
                """
                CREATE TABLE IF NOT EXISTS \(Self.table) (
                  id uuid PRIMARY KEY, kind text NOT NULL, target text NOT NULL, state text NOT NULL, requested_by text NOT NULL,
                  request_sha256 text NOT NULL, idempotency_key text, created_at timestamptz NOT NULL DEFAULT now(),
                  started_at timestamptz, finished_at timestamptz, rows bigint NOT NULL DEFAULT 0, bytes bigint NOT NULL DEFAULT 0,
                  phase text NOT NULL DEFAULT 'queued', result jsonb, error jsonb)
                """,
                """
                CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON \(Self.table) (requested_by, idempotency_key)
                  WHERE idempotency_key IS NOT NULL
                """,
                "CREATE INDEX IF NOT EXISTS jobs_created ON \(Self.table) (created_at DESC, id DESC)",
            ] {
                _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
            }
        }
    }

    /// Marks the jobs a previous process left queued or running as failed, saying so; returns how many.
    @discardableResult
    package func recoverInterrupted() async throws -> Int {
        try await session.withConnection { connection in
            let rows = try await connection.query(
                """
                UPDATE \(unescaped: Self.table) SET state = 'failed', finished_at = now(), phase = 'interrupted',
                  error = jsonb_build_object('error', 'interrupted', 'message', 'ferry run stopped while this job was ' || state,
                    'fix', 'start the job again; what it wrote is whole (files are published whole, batches apply in transactions)')
                WHERE state IN ('queued', 'running') RETURNING id
                """, logger: logger
            ).collect()
            return rows.count
        }
    }

    /// What an Idempotency-Key already names for `user`: the job, and whether it was started by the same request.
    package func job(idempotencyKey key: String, user: String) async throws -> (JobRecord, sameRequest: String)? {
        let found: (UUID, String)? = try await session.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT id, request_sha256 FROM \(unescaped: Self.table)
                WHERE requested_by = \(user) AND idempotency_key = \(key) AND created_at > now() - interval '24 hours'
                """, logger: logger)
            for try await (id, digest) in rows.decode((UUID, String).self) { return (id, digest) }
            return nil
        }
        guard let (id, digest) = found, let record = try await job(id) else { return nil }
        return (record, digest)
    }

    /// Inserts a new job as queued. A concurrent insert under the same Idempotency-Key loses: nil, and the caller
    /// looks the key up again.
    package func insert(_ job: JobRecord, requestSHA256: String, idempotencyKey: String?) async throws -> Bool {
        try await session.withConnection { connection in
            if let key = idempotencyKey {
                // A key is kept for 24 hours; after that it may name a new job.
                _ = try await connection.query(
                    """
                    UPDATE \(unescaped: Self.table) SET idempotency_key = NULL
                    WHERE requested_by = \(job.requestedBy) AND idempotency_key = \(key) AND created_at <= now() - interval '24 hours'
                    """, logger: logger
                ).collect()
            }
            let rows = try await connection.query(
                """
                INSERT INTO \(unescaped: Self.table) (id, kind, target, state, requested_by, request_sha256, idempotency_key, created_at)
                VALUES (\(job.id), \(job.kind.rawValue), \(job.target), \(job.state.rawValue), \(job.requestedBy), \(requestSHA256), \(idempotencyKey), \(job.createdAt))
                ON CONFLICT DO NOTHING RETURNING id
                """, logger: logger
            ).collect()
            return !rows.isEmpty
        }
    }

    /// Writes a job's state, progress and outcome.
    package func update(_ job: JobRecord) async throws {
        let error = job.error.map(Self.errorJSON)
        try await session.withConnection { connection in
            _ = try await connection.query(
                """
                UPDATE \(unescaped: Self.table) SET state = \(job.state.rawValue), started_at = \(job.startedAt), finished_at = \(job.finishedAt),
                  rows = \(job.rows), bytes = \(job.bytes), phase = \(job.phase), result = \(job.result)::jsonb, error = \(error)::jsonb
                WHERE id = \(job.id)
                """, logger: logger
            ).collect()
        }
    }

    /// Writes a running job's progress only: a job whose state changed meanwhile (marked failed by a recovery) keeps it.
    package func updateProgress(_ job: JobRecord) async throws {
        try await session.withConnection { connection in
            _ = try await connection.query(
                """
                UPDATE \(unescaped: Self.table) SET rows = \(job.rows), bytes = \(job.bytes), phase = \(job.phase)
                WHERE id = \(job.id) AND state = 'running'
                """, logger: logger
            ).collect()
        }
    }

    package func job(_ id: UUID) async throws -> JobRecord? {
        try await session.withConnection { connection in
            let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM \(unescaped: Self.table) WHERE id = \(id)", logger: logger)
            for try await row in rows { return try Self.record(row) }
            return nil
        }
    }

    /// Newest first, at most `limit`, optionally only one user's, one state or one kind, and created before `before`.
    package func list(
        user: String?, state: JobRecord.State?, kind: JobRecord.Kind?, before: UUID?, limit: Int
    ) async throws -> [JobRecord] {
        try await session.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT \(unescaped: Self.columns) FROM \(unescaped: Self.table)
                WHERE (\(user)::text IS NULL OR requested_by = \(user)) AND (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue))
                  AND (\(kind?.rawValue)::text IS NULL OR kind = \(kind?.rawValue))
                  AND (\(before)::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM \(unescaped: Self.table) WHERE id = \(before)))
                ORDER BY created_at DESC, id DESC LIMIT \(max(1, min(limit, 1000)))
                """, logger: logger)
            var records: [JobRecord] = []
            for try await row in rows { records.append(try Self.record(row)) }
            return records
        }
    }

    static let columns =
        "id, kind, target, state, requested_by, created_at, started_at, finished_at, rows, bytes, phase, result::text, error->>'error', error->>'message', error->>'fix'"

    static func record(_ row: PostgresRow) throws -> JobRecord {
        let (id, kind, target, state, user, created, started, finished, rows, bytes, phase, result, code, message, fix) = try row.decode(
            (UUID, String, String, String, String, Date, Date?, Date?, Int64, Int64, String, String?, String?, String?, String?).self)
        var record = JobRecord(
            id: id, kind: JobRecord.Kind(rawValue: kind) ?? .extract, target: target, state: JobRecord.State(rawValue: state) ?? .failed,
            requestedBy: user, createdAt: created)
        record.startedAt = started
        record.finishedAt = finished
        record.rows = rows
        record.bytes = bytes
        record.phase = phase
        record.result = result
        if let message {
            record.error = FerryError(FerryError.Code(name: code ?? "") ?? .server, message, fix: fix)
        }
        return record
    }

    static func errorJSON(_ error: FerryError) -> String {
        var text = "{\"error\":\(JSONText.string(error.code.description)),\"message\":\(JSONText.string(error.message))"
        if let fix = error.fix { text += ",\"fix\":\(JSONText.string(fix))" }
        return text + "}"
    }
}
