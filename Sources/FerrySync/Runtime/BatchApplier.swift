import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Applies rows to the mirror in one PostgreSQL statement: one guarded upsert (newest version per key; only newer
/// versions that change something are written) of the rows bound as arrays, companion rows for new keys, and the
/// applied position in this applier's row of the control table `ferry_applied`.
///
/// The session runs with `ferry.sync = on` (the mirror's triggers let the sync's own writes through), so a
/// transaction does not set it.
struct BatchApplier {
    let context: PipelineContext
    let session: PostgresSession
    /// This applier's row in `ferry_applied` (`consumer-0`, `reconcile`): appliers that run at the same time each
    /// have their own, so none waits for another's commit.
    let slot: String
    private var prepared: [String: (layout: MirrorLayout, statements: MirrorStatements)] = [:]
    /// Whether this user may skip the companion's foreign-key check for the rows Ferry itself inserts (their
    /// mirror rows exist by construction): superusers, or `GRANT SET ON PARAMETER session_replication_role`.
    private var skipCompanionCheck: Bool?
    /// Whether the last batch only inserted new keys, so the next one tries a plain insert first (see `apply`).
    private var onlyNewKeys = false

    init(context: PipelineContext, slot: String) {
        self.context = context
        self.session = PostgresSession(endpoint: context.targetEndpoint, key: "postgres", settings: ["SET ferry.sync = on"], logger: context.logger)
        self.slot = slot
    }

    var logger: Logger { context.logger }

    /// The layout for entries of schema `fingerprint`, creating or migrating the mirror the first time; throws
    /// ``IncompatibleMirror`` when the mirror cannot take rows of that schema.
    mutating func layout(for fingerprint: String) async throws -> (layout: MirrorLayout, statements: MirrorStatements) {
        if let known = prepared[fingerprint] { return known }
        return try await layout(for: try await registeredSchema(fingerprint))
    }

    /// The schema the producer registered under `fingerprint`.
    func registeredSchema(_ fingerprint: String) async throws -> SourceSchema {
        guard let json = try await context.redis.send(HGET(context.keys.schemas, fingerprint)),
            let schema = try? JSONDecoder().decode(SourceSchema.self, from: Data(buffer: json))
        else {
            throw FerryError(
                .invalidInput,
                "pipelines \(context.pipeline.name): queue entries use schema \(fingerprint), which is not registered in \(context.keys.schemas)",
                fix: "restart the producer so it registers its schema; entries stay queued meanwhile"
            )
        }
        return schema
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

    /// The layout for rows of `schema`, creating or migrating the mirror the first time.
    mutating func layout(for schema: SourceSchema) async throws -> (layout: MirrorLayout, statements: MirrorStatements) {
        if let known = prepared[schema.fingerprint] { return known }
        let layout = try MirrorLayout(pipeline: context.pipeline, schema: schema)
        try await session.withTransaction { connection in
            // Consumers (and other jobs) may start together; one of them migrates at a time.
            try await MirrorDDL.lock(connection, logger)
            try await context.control.ensure(connection, logger: logger)
            try await MirrorDDL.ensure(layout, connection: connection, logger: logger)
        }
        let entry = (layout, MirrorStatements(layout: layout, control: context.control))
        prepared[schema.fingerprint] = entry
        if skipCompanionCheck == nil { skipCompanionCheck = try await mayUseReplicaRole() }
        return entry
    }

    /// Reads the rows with `keys` from the source now, under `schema`, and applies them as new versions, numbered by
    /// the wall clock as a reconcile's repairs are (the producer numbers what it reads later above the wall clock too);
    /// returns how many the source still had. Throws ``IncompatibleMirror`` when the mirror cannot take `schema`, ``SourceSchemaChanged`` when
    /// the source changed again.
    mutating func readAgain(keys: [[String]], schema: SourceSchema) async throws -> Int {
        let (layout, statements) = try await layout(for: schema)
        var rows = CopyTextRows()
        try await context.source.readKeys(keys, schema: schema, into: &rows)
        guard !rows.isEmpty else { return 0 }
        var sequence = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var fresh = CopyTextRows(capacity: rows.byteCount + rows.rowCount * 20)
        for index in 0..<rows.rowCount {
            fresh.appendRow(sequence: sequence, line: rows.row(index))
            sequence += 1
        }
        try await apply(fresh, layout: layout, statements: statements, maxSeq: sequence - 1, position: nil, tryPlainInsert: false)
        return fresh.rowCount
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

    /// Applies `rows`; returns whether every row was a new key.
    ///
    /// Usually one round trip: ``MirrorStatements/upsert``, its own transaction, with the rows bound as one `text[]`
    /// per field. With `tryPlainInsert`, a transaction tries ``MirrorStatements/insertAll`` first (see below).
    @discardableResult
    func apply(
        _ rows: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, maxSeq: Int64, position: SourcePosition?, tryPlainInsert: Bool
    ) async throws -> Bool {
        let arrays = try rows.textArrays(columns: layout.stagedFieldCount)
        var binds = context.control.binds(maxSeq, Int64(rows.rowCount), ControlTables.json(position), slot, context.pipeline.name)
        for array in arrays { binds.append(array) }
        if tryPlainInsert {
            var keys = PostgresBindings()
            for index in layout.keyIndexes { keys.append(arrays[index + 1]) }
            do {
                return try await insertAll(binds: binds, keys: keys, statements: statements)
            } catch  where PostgresDiagnosis.sqlState(of: error) == "23505" {
                // Updates began (or a key came twice): the transaction rolled back; the batch takes the upsert.
            }
        }
        return try await session.withConnection { connection in
            try await upsert(rows, statements: statements, binds: binds, connection)
        }
    }

    /// While every key is new (an initial load), a plain insert does the upsert's work without the speculative
    /// insertion and the sort, and the companion rows of the new keys are inserted plainly too (without the
    /// foreign-key check where allowed). It is tried only after a batch that inserted every row, so at most one
    /// attempt fails (a unique violation, and the transaction rolls back) when updates begin.
    private func insertAll(binds: PostgresBindings, keys: PostgresBindings, statements: MirrorStatements) async throws -> Bool {
        let skipCheck = skipCompanionCheck ?? false
        return try await session.withTransaction { connection -> Bool in
            try await connection.query(PostgresQuery(unsafeSQL: statements.insertAll, binds: binds), logger: logger)
            if let companion = statements.companionInsertAll {
                // Only for the rest of this transaction: the mirror's own triggers have run.
                if skipCheck { try await connection.query("SET LOCAL session_replication_role = replica", logger: logger) }
                try await connection.query(PostgresQuery(unsafeSQL: companion, binds: keys), logger: logger)
            }
            return true
        }
    }

    /// Runs ``MirrorStatements/upsert``; returns whether every row was a new key (the next batch is probably an
    /// initial load's too).
    private func upsert(_ rows: CopyTextRows, statements: MirrorStatements, binds: PostgresBindings, _ connection: PostgresSessionConnection)
        async throws -> Bool
    {
        let counts = try await connection.query(PostgresQuery(unsafeSQL: statements.upsert, binds: binds), logger: logger)
        var written = 0
        var inserted = 0
        for try await (rowsWritten, rowsInserted) in counts.decode((Int64, Int64).self) {
            written = Int(rowsWritten)
            inserted = Int(rowsInserted)
        }
        return inserted == rows.rowCount && written == rows.rowCount
    }

    /// Records one row that cannot be applied, with PostgreSQL's reason, in the dead-letter table (in the same
    /// shape as the source columns) and stream.
    func deadLetter(
        _ row: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, reason: String, sqlState: String?, streamID: String?,
        deliveries: Int?
    ) async throws {
        // Once per row version: a row dead-lettered again (redelivered after a crash) is not recorded twice. A row
        // with the wrong number of fields is recorded cut or padded, with the reason saying so.
        // PostgreSQL's text cannot hold a NUL character (SQL Server's can): in the table the row shows it as `\u0000`;
        // the Redis dead-letter stream keeps the row exactly as it was read.
        let (storable, hadNul) = Self.replacingNul(row)
        let reason =
            hadNul
            ? reason + " (NUL characters are written \\u0000 in row_data; the Redis stream \(context.keys.deadLetters) has the row as read)" : reason
        var binds = context.control.binds(context.pipeline.name, streamID, reason, sqlState, deliveries.map(Int32.init))
        for array in try storable.textArrays(columns: layout.stagedFieldCount, lenient: true) { binds.append(array) }
        let deadLetters = context.control.deadLetters
        let recorded = try await session.withConnection { connection -> Bool in
            let result = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(deadLetters) (pipeline, stream_id, seq, row_data, reason, sqlstate, deliveries)
                        SELECT $1, $2, s::int8, data::jsonb, $3, $4, $5 FROM (\(statements.stagedAsJSON)) AS staged(data, s)
                        ON CONFLICT (pipeline, seq) DO NOTHING RETURNING id
                        """,
                    binds: binds),
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

    /// `rows` with every NUL byte written as the text `\u0000` (an escaped backslash in COPY text), and whether there
    /// was one.
    static func replacingNul(_ rows: CopyTextRows) -> (CopyTextRows, Bool) {
        guard rows.buffer.readableBytesView.contains(0) else { return (rows, false) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(rows.byteCount + 16)
        for byte in rows.buffer.readableBytesView {
            if byte == 0 { bytes += Array(#"\\u0000"#.utf8) } else { bytes.append(byte) }
        }
        return (CopyTextRows(buffer: ByteBuffer(bytes: bytes)), true)
    }

    func recordError(_ message: String) async {
        context.errorToClear.set()
        await context.control.recordError(message, session: session, logger: logger)
    }
}
