import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Applies rows to the mirror in one PostgreSQL transaction: COPY into a session staging table, one guarded
/// upsert (newest version per key; only newer versions that change something are written), companion rows for
/// new keys, and the applied position in the control table.
struct BatchApplier {
    let context: PipelineContext
    let session: PostgresSession
    private var prepared: [String: (layout: MirrorLayout, statements: MirrorStatements)] = [:]
    /// Whether this user may skip the companion's foreign-key check for the rows Ferry itself inserts (their
    /// mirror rows exist by construction): superusers, or `GRANT SET ON PARAMETER session_replication_role`.
    private var skipCompanionCheck: Bool?
    /// Whether the last batch only inserted new keys, so the next one tries a plain insert first (see `apply`).
    private var onlyNewKeys = false

    init(context: PipelineContext, session: PostgresSession) {
        self.context = context
        self.session = session
    }

    var logger: Logger { context.logger }

    /// The layout for entries of schema `fingerprint`, creating or migrating the mirror the first time.
    mutating func layout(for fingerprint: String) async throws -> (layout: MirrorLayout, statements: MirrorStatements) {
        if let known = prepared[fingerprint] { return known }
        guard let json = try await context.redis.send(HGET(context.keys.schemas, fingerprint)),
            let schema = try? JSONDecoder().decode(SourceSchema.self, from: Data(buffer: json))
        else {
            throw FerryError(
                .invalidInput,
                "pipelines \(context.pipeline.name): queue entries use schema \(fingerprint), which is not registered in \(context.keys.schemas)",
                fix: "restart the producer so it registers its schema; entries stay queued meanwhile"
            )
        }
        let layout = try MirrorLayout(pipeline: context.pipeline, schema: schema)
        let pipelineName = context.pipeline.name
        try await session.withTransaction { connection in
            // Consumers of one pipeline may start together; one of them migrates at a time.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\("ferry:ddl:" + pipelineName)))", logger: logger)
            try await context.control.ensure(connection, logger: logger)
            try await MirrorDDL.ensure(layout, connection: connection, logger: logger)
        }
        let entry = (layout, MirrorStatements(layout: layout))
        prepared[fingerprint] = entry
        if skipCompanionCheck == nil { skipCompanionCheck = try await mayUseReplicaRole() }
        return entry
    }

    private func mayUseReplicaRole() async throws -> Bool {
        try await session.withConnection { connection in
            let version = try await connection.query(
                "SELECT current_setting('server_version_num')::int, rolsuper FROM pg_roles WHERE rolname = current_user", logger: logger)
            for try await (number, superuser) in version.decode((Int, Bool).self) {
                if superuser { return true }
                guard number >= 150_000 else { return false }
                let granted = try await connection.query("SELECT has_parameter_privilege('session_replication_role', 'SET')", logger: logger)
                for try await value in granted.decode(Bool.self) { return value }
            }
            return false
        }
    }

    /// The layout for `schema` (reconciliation, which reads the source directly).
    mutating func layout(for schema: SourceSchema) async throws -> (layout: MirrorLayout, statements: MirrorStatements) {
        if let known = prepared[schema.fingerprint] { return known }
        let layout = try MirrorLayout(pipeline: context.pipeline, schema: schema)
        let pipelineName = context.pipeline.name
        try await session.withTransaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\("ferry:ddl:" + pipelineName)))", logger: logger)
            try await context.control.ensure(connection, logger: logger)
            try await MirrorDDL.ensure(layout, connection: connection, logger: logger)
        }
        let entry = (layout, MirrorStatements(layout: layout))
        prepared[schema.fingerprint] = entry
        if skipCompanionCheck == nil { skipCompanionCheck = try await mayUseReplicaRole() }
        return entry
    }

    /// Forgets prepared layouts (after the mirror was changed under us).
    mutating func reset() { prepared = [:] }

    /// Applies `rows`, trying the plain insert while the batches before only brought new keys.
    mutating func apply(_ rows: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, maxSeq: Int64, position: SourcePosition?)
        async throws
    {
        onlyNewKeys = try await apply(
            rows, layout: layout, statements: statements, maxSeq: maxSeq, position: position, tryPlainInsert: onlyNewKeys)
    }

    /// Applies `rows` in one transaction; returns whether every row was a new key.
    @discardableResult
    func apply(
        _ rows: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, maxSeq: Int64, position: SourcePosition?, tryPlainInsert: Bool
    ) async throws -> Bool {
        let skipCheck = skipCompanionCheck ?? false
        return try await session.withTransaction { connection -> Bool in
            try await connection.query("SELECT set_config('ferry.sync', 'on', true)", logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: statements.createStaging), logger: logger)
            try await connection.copyFrom(table: layout.stagingTable, columns: layout.stagingColumns, logger: logger) { writer in
                try await writer.write(rows.buffer)
            }
            var plain = false
            var allNew = true
            if tryPlainInsert {
                // While every key is new (an initial load), a plain insert does the upsert's work without the
                // speculative insertion and the sort. It is tried only after a batch that
                // inserted every row, so at most one attempt fails (rolled back to its savepoint) when updates begin.
                // The companion rows of new keys are new too: inserted plainly under the same savepoint.
                try await connection.query("SAVEPOINT ferry_insert_all", logger: logger)
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statements.insertAll), logger: logger)
                    if let companion = statements.companionInsertAll {
                        try await insertCompanion(companion, skipCheck: skipCheck, connection)
                    }
                    try await connection.query("RELEASE SAVEPOINT ferry_insert_all", logger: logger)
                    plain = true
                } catch  where PostgresDiagnosis.sqlState(of: error) == "23505" {
                    try await connection.query("ROLLBACK TO SAVEPOINT ferry_insert_all", logger: logger)
                }
            }
            if !plain {
                let counts = try await connection.query(PostgresQuery(unsafeSQL: statements.upsert), logger: logger)
                var returned = 0
                var inserted = 0
                for try await (written, new) in counts.decode((Int64, Int64).self) {
                    returned = Int(written)
                    inserted = Int(new)
                }
                // Every row of the batch new and distinct: the next batch is probably an initial load's too.
                allNew = inserted == rows.rowCount && returned == rows.rowCount
                if let companion = statements.companionInsert, inserted > 0 {
                    try await insertCompanion(companion, skipCheck: skipCheck, connection)
                }
            }
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE \(context.control.pipelines) SET applied_seq = greatest(applied_seq, $1), applied_rows = applied_rows + $2,
                          applied_position = coalesce($3::jsonb, applied_position), applied_at = now(), updated_at = now(),
                          applied_rate = CASE WHEN applied_at IS NULL OR now() - applied_at > interval '1 minute' THEN 0
                            ELSE 0.8 * applied_rate + 0.2 * ($2 / greatest(extract(epoch FROM now() - applied_at), 0.001)) END
                        WHERE pipeline = $4
                        """,
                    binds: context.control.binds(maxSeq, Int64(rows.rowCount), ControlTables.json(position), context.pipeline.name)),
                logger: logger)
            return allNew
        }
    }

    /// Companion rows for new keys. Replica mode skips the foreign-key trigger (and other triggers) for this one
    /// statement only: Ferry inserted the mirror rows itself in the same transaction.
    private func insertCompanion(_ statement: String, skipCheck: Bool, _ connection: PostgresSessionConnection) async throws {
        if skipCheck { try await connection.query("SET LOCAL session_replication_role = replica", logger: logger) }
        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        if skipCheck { try await connection.query("SET LOCAL session_replication_role = origin", logger: logger) }
    }

    /// Records one row that cannot be applied, with PostgreSQL's reason, in the dead-letter table (in the same
    /// shape as the source columns) and stream.
    func deadLetter(
        _ row: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, reason: String, sqlState: String?, streamID: String?,
        deliveries: Int?
    ) async throws {
        // Once per row version: a row dead-lettered again (redelivered after a crash) is not recorded twice.
        let recorded = try await session.withTransaction { connection -> Bool in
            try await connection.query(PostgresQuery(unsafeSQL: statements.createStaging), logger: logger)
            try await connection.copyFrom(table: layout.stagingTable, columns: layout.stagingColumns, logger: logger) { writer in
                try await writer.write(row.buffer)
            }
            let result = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(context.control.deadLetters) (pipeline, stream_id, seq, row_data, reason, sqlstate, deliveries)
                        SELECT $1, $2, s::int8, data::jsonb, $3, $4, $5 FROM (\(statements.stagingAsJSON)) AS staged(data, s)
                        ON CONFLICT (pipeline, seq) DO NOTHING RETURNING id
                        """,
                    binds: context.control.binds(context.pipeline.name, streamID, reason, sqlState, deliveries.map(Int32.init))),
                logger: logger)
            var inserted = false
            for try await _ in result { inserted = true }
            return inserted
        }
        guard recorded else { return }
        let fields: [(name: String, value: ByteBuffer)] = [
            ("pipeline", ByteBuffer(string: context.pipeline.name)), ("entry", ByteBuffer(string: streamID ?? "")),
            ("reason", ByteBuffer(string: reason)), ("row", row.buffer),
        ]
        _ = try await context.redis.send(XADD(context.keys.deadLetters, fields: fields, trim: .maxLength(100_000)))
    }

    func recordError(_ message: String) async {
        _ = try? await session.withConnection { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: "UPDATE \(context.control.pipelines) SET last_error = $1, last_error_at = now() WHERE pipeline = $2",
                    binds: context.control.binds(message, context.pipeline.name)),
                logger: logger)
        }
    }
}
