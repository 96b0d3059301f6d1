import FerryCore
import FerryPostgres
import Foundation
import Logging
import PostgresNIO

/// The sync's own state in the target database: `ferry_pipelines` (one row per pipeline: the producer's position,
/// sequence and counters, last error), `ferry_applied` (one row per pipeline and consumer slot: what it applied)
/// `ferry_dead_letters` (rows that could not be applied, with the reason) and `ferry_pipeline_events` (what was done
/// to a pipeline's queue other than applying it: entries read again after a schema change, entries an operator
/// skipped, resets) and `ferry_backfills` (one row per pipeline: the last backfill of columns added at the
/// source, and how far it got).
///
/// The producer's position is also kept here so that a Redis that lost its data can be recovered from. Each
/// consumer records what it applied in its own row, in the transaction that applies it: with one shared row, every
/// consumer's transaction held that row's lock until its commit was flushed, so the consumers (and the producer)
/// committed one after another instead of sharing a WAL flush.
struct ControlTables: Sendable {
    let schema: String
    let pipeline: String

    var pipelines: String { SQLIdentifier.qualified(schema, "ferry_pipelines") }
    var applied: String { SQLIdentifier.qualified(schema, "ferry_applied") }
    var deadLetters: String { SQLIdentifier.qualified(schema, "ferry_dead_letters") }
    var events: String { SQLIdentifier.qualified(schema, "ferry_pipeline_events") }
    var backfills: String { SQLIdentifier.qualified(schema, "ferry_backfills") }

    func ensure(_ connection: PostgresSessionConnection, logger: Logger) async throws {
        try await MirrorDDL.run("CREATE SCHEMA IF NOT EXISTS \(SQLIdentifier.quote(schema))", connection, logger, what: "create schema \(schema)")
        try await MirrorDDL.run(
            """
            CREATE TABLE IF NOT EXISTS \(pipelines) (
              pipeline text PRIMARY KEY,
              source_schema jsonb,
              produced_position jsonb,
              produced_seq bigint NOT NULL DEFAULT 0,
              produced_rows bigint NOT NULL DEFAULT 0,
              produced_at timestamptz,
              null_position jsonb,
              applied_position jsonb,
              applied_seq bigint NOT NULL DEFAULT 0,
              applied_rows bigint NOT NULL DEFAULT 0,
              applied_at timestamptz,
              applied_rate double precision NOT NULL DEFAULT 0,
              initial_load_done boolean NOT NULL DEFAULT false,
              last_error text,
              last_error_at timestamptz,
              updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            connection, logger, what: "create the control table ferry_pipelines")
        try await MirrorDDL.run(
            """
            CREATE TABLE IF NOT EXISTS \(applied) (
              pipeline text NOT NULL,
              slot text NOT NULL,
              applied_position jsonb,
              applied_seq bigint NOT NULL DEFAULT 0,
              applied_rows bigint NOT NULL DEFAULT 0,
              applied_at timestamptz,
              applied_rate double precision NOT NULL DEFAULT 0,
              PRIMARY KEY (pipeline, slot)
            )
            """,
            connection, logger, what: "create the control table ferry_applied")
        try await MirrorDDL.run(
            """
            CREATE TABLE IF NOT EXISTS \(events) (
              id bigserial PRIMARY KEY,
              pipeline text NOT NULL,
              event text NOT NULL,
              entries text[] NOT NULL DEFAULT '{}',
              rows bigint NOT NULL DEFAULT 0,
              detail text,
              created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            connection, logger, what: "create the control table ferry_pipeline_events")
        try await MirrorDDL.run(
            """
            CREATE TABLE IF NOT EXISTS \(backfills) (
              pipeline text PRIMARY KEY,
              id bigint NOT NULL,
              columns text[] NOT NULL,
              after_key jsonb,
              rows bigint NOT NULL DEFAULT 0,
              total bigint,
              last_seq bigint NOT NULL DEFAULT 0,
              started_at timestamptz NOT NULL DEFAULT now(),
              finished_at timestamptz
            )
            """,
            connection, logger, what: "create the control table ferry_backfills")
        for statement in Self.deadLetterStatements(deadLetters) {
            try await MirrorDDL.run(statement, connection, logger, what: "create the control table ferry_dead_letters")
        }
        try await connection.query(
            PostgresQuery(unsafeSQL: "INSERT INTO \(pipelines) (pipeline) VALUES ($1) ON CONFLICT DO NOTHING", binds: binds(pipeline)), logger: logger
        )
    }

    /// Records something done to the pipeline's queue besides applying it (`event`: `read_again`, `skipped`…).
    func recordEvent(_ event: String, entries: [String], rows: Int, detail: String, session: PostgresSession, logger: Logger) async throws {
        try await session.withConnection { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: "INSERT INTO \(events) (pipeline, event, entries, rows, detail) VALUES ($1, $2, $3, $4, $5)",
                    binds: binds(pipeline, event, entries, Int64(rows), detail)),
                logger: logger)
        }
    }

    /// A backfill: source columns added to a mirror that already had rows, filled by reading the whole source again
    /// by key, in pages queued between the live polls (see ``Producer``).
    struct Backfill: Sendable, Equatable {
        /// Identifies this backfill (the producer's sequence number when it began); Redis's checkpoint names it.
        var id: Int64
        var columns: [String]
        /// The last key queued.
        var after: [String]?
        var rows: Int64 = 0
        /// The source's estimated row count when it began.
        var total: Int64?
        /// The sequence number of the last row queued.
        var lastSeq: Int64 = 0
        var startedAt: Date?
        var finishedAt: Date?
    }

    /// The pipeline's last backfill, if any (`nil` too when `ferry_backfills` does not exist yet: status only reads).
    func loadBackfill(_ connection: PostgresSessionConnection, logger: Logger) async throws -> Backfill? {
        for try await exists in try await connection.query("SELECT to_regclass(\(backfills)) IS NOT NULL", logger: logger).decode(Bool.self)
        where !exists {
            return nil
        }
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL:
                    "SELECT id, columns, after_key::text, rows, total, last_seq, started_at, finished_at FROM \(backfills) WHERE pipeline = $1",
                binds: binds(pipeline)),
            logger: logger)
        for try await row in rows.decode((Int64, [String], String?, Int64, Int64?, Int64, Date, Date?).self) {
            let after = row.2.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
            return Backfill(
                id: row.0, columns: row.1, after: after, rows: row.3, total: row.4, lastSeq: row.5, startedAt: row.6, finishedAt: row.7)
        }
        return nil
    }

    /// Records a backfill's start (replacing the previous one), progress or end.
    func saveBackfill(_ backfill: Backfill, connection: PostgresSessionConnection, logger: Logger) async throws {
        try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO \(backfills) AS b (pipeline, id, columns, after_key, rows, total, last_seq, started_at, finished_at)
                    VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, coalesce($8, now()), CASE WHEN $9 THEN now() END)
                    ON CONFLICT (pipeline) DO UPDATE SET id = excluded.id, columns = excluded.columns, after_key = excluded.after_key,
                      rows = excluded.rows, total = excluded.total, last_seq = excluded.last_seq,
                      started_at = CASE WHEN b.id = excluded.id THEN b.started_at ELSE excluded.started_at END,
                      finished_at = CASE WHEN $9 THEN coalesce(b.finished_at, now()) END
                    """,
                binds: binds(
                    pipeline, backfill.id, backfill.columns, Self.json(backfill.after), backfill.rows, backfill.total, backfill.lastSeq,
                    backfill.startedAt, backfill.finishedAt != nil)),
            logger: logger)
    }

    /// What `last_error` starts with when the pipeline itself stopped on the error (not a retried one).
    static let stoppedPrefix = "pipeline stopped: "

    /// Sets `last_error` (best effort: the error being recorded may be PostgreSQL's own).
    func recordError(_ message: String, session: PostgresSession, logger: Logger) async {
        _ = try? await session.withConnection { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(pipelines) (pipeline, last_error, last_error_at) VALUES ($2, $1, now())
                        ON CONFLICT (pipeline) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at
                        """, binds: binds(message, pipeline)),
                logger: logger)
        }
    }

    /// Clears a stop recorded by an earlier run (the pipeline runs again); retried errors stay until progress.
    func clearStop(session: PostgresSession, logger: Logger) async {
        _ = try? await session.withConnection { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: "UPDATE \(pipelines) SET last_error = NULL WHERE pipeline = $1 AND starts_with(last_error, $2)",
                    binds: binds(pipeline, Self.stoppedPrefix)),
                logger: logger)
        }
    }

    /// Clears an error recorded while retrying (a stop is cleared only by a new run, ``clearStop(session:logger:)``).
    func clearRetriedError(session: PostgresSession, logger: Logger) async {
        _ = try? await session.withConnection { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "UPDATE \(pipelines) SET last_error = NULL, last_error_at = NULL WHERE pipeline = $1 AND NOT starts_with(last_error, $2)",
                    binds: binds(pipeline, Self.stoppedPrefix)),
                logger: logger)
        }
    }

    /// The statements that create `ferry_dead_letters` (shared by the table sync and the Redis sync).
    static func deadLetterStatements(_ table: String) -> [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS \(table) (
              id bigserial PRIMARY KEY,
              pipeline text NOT NULL,
              stream_id text,
              seq bigint,
              row_data jsonb,
              reason text NOT NULL,
              sqlstate text,
              deliveries integer,
              created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE UNIQUE INDEX IF NOT EXISTS ferry_dead_letters_row ON \(table) (pipeline, seq)",
        ]
    }

    /// The stored state, for start-up and status.
    struct State: Sendable {
        var sourceSchema: SourceSchema?
        var producedPosition: SourcePosition?
        var producedSeq: Int64 = 0
        var producedRows: Int64 = 0
        var nullPosition: [String]?
        var appliedPosition: SourcePosition?
        var appliedSeq: Int64 = 0
        var appliedRows: Int64 = 0
        var appliedAt: Date?
        var appliedRate: Double = 0
        var initialLoadDone = false
        var lastError: String?
        var lastErrorAt: Date?
    }

    /// The pipeline's state; what was applied is summed over the consumer slots (and the pipeline row's own
    /// columns, where versions before `ferry_applied` recorded it): the position is the one applied with the
    /// highest sequence number, the rate counts slots that applied in the last minute. `ferry status` may read a
    /// schema that an older version set up, before any consumer created `ferry_applied`: then only the pipeline row
    /// counts (status only reads).
    func load(_ connection: PostgresSessionConnection, logger: Logger) async throws -> State? {
        var hasApplied = false
        for try await exists in try await connection.query("SELECT to_regclass(\(applied)) IS NOT NULL", logger: logger).decode(Bool.self) {
            hasApplied = exists
        }
        let perSlot =
            hasApplied
            ? """
            SELECT max(applied_seq) AS seq, sum(applied_rows)::int8 AS rows, max(applied_at) AS at,
                   sum(applied_rate) FILTER (WHERE applied_at > now() - interval '1 minute') AS rate,
                   (array_agg(applied_position ORDER BY applied_seq DESC))[1] AS position
            FROM \(applied) WHERE pipeline = p.pipeline
            """
            : "SELECT NULL::int8 AS seq, NULL::int8 AS rows, NULL::timestamptz AS at, NULL::float8 AS rate, NULL::jsonb AS position"
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT p.source_schema::text, p.produced_position::text, p.produced_seq, p.produced_rows, p.null_position::text,
                           (CASE WHEN coalesce(a.seq, 0) > p.applied_seq THEN a.position ELSE p.applied_position END)::text,
                           greatest(p.applied_seq, coalesce(a.seq, 0)), p.applied_rows + coalesce(a.rows, 0),
                           CASE WHEN a.at IS NULL OR p.applied_at > a.at THEN p.applied_at ELSE a.at END,
                           coalesce(a.rate, 0) + CASE WHEN p.applied_at > now() - interval '1 minute' THEN p.applied_rate ELSE 0 END,
                           p.initial_load_done, p.last_error, p.last_error_at
                    FROM \(pipelines) p LEFT JOIN LATERAL (\(perSlot)) a ON true
                    WHERE p.pipeline = $1
                    """,
                binds: binds(pipeline)),
            logger: logger
        )
        for try await row in rows {
            let columns = try row.decode((String?, String?, Int64, Int64, String?, String?, Int64, Int64, Date?, Double, Bool, String?, Date?).self)
            let decoder = JSONDecoder()
            func decode<T: Decodable>(_ text: String?, as type: T.Type) -> T? { text.flatMap { try? decoder.decode(T.self, from: Data($0.utf8)) } }
            return State(
                sourceSchema: decode(columns.0, as: SourceSchema.self),
                producedPosition: decode(columns.1, as: SourcePosition.self),
                producedSeq: columns.2,
                producedRows: columns.3,
                nullPosition: decode(columns.4, as: [String].self),
                appliedPosition: decode(columns.5, as: SourcePosition.self),
                appliedSeq: columns.6,
                appliedRows: columns.7,
                appliedAt: columns.8,
                appliedRate: columns.9,
                initialLoadDone: columns.10,
                lastError: columns.11,
                lastErrorAt: columns.12
            )
        }
        return nil
    }

    /// Records `rows` rows up to sequence `seq` (and `position`, the end of a source page) applied by consumer `slot`,
    /// as part of the statement that applies them. Binds: seq, rows, position (jsonb text or NULL), slot, pipeline.
    var appliedCTE: String {
        """
        INSERT INTO \(applied) AS a (pipeline, slot, applied_seq, applied_rows, applied_position, applied_at)
        VALUES ($5, $4, $1, $2, $3::jsonb, now())
        ON CONFLICT (pipeline, slot) DO UPDATE SET applied_seq = greatest(a.applied_seq, $1), applied_rows = a.applied_rows + $2,
          applied_position = coalesce($3::jsonb, a.applied_position), applied_at = now(),
          applied_rate = CASE WHEN a.applied_at IS NULL OR now() - a.applied_at > interval '1 minute' THEN 0
            ELSE 0.8 * a.applied_rate + 0.2 * ($2 / greatest(extract(epoch FROM now() - a.applied_at), 0.001)) END
        """
    }

    func binds(_ values: (any PostgresDynamicTypeEncodable)?...) -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values {
            if let value { bindings.append(value) } else { bindings.appendNull() }
        }
        return bindings
    }

    static func json<T: Encodable>(_ value: T?) -> String? {
        guard let value, let data = try? JSONEncoder().encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
