import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Applies rows to the mirror in one PostgreSQL transaction: COPY into a session staging table, one guarded
/// upsert (newest version per key; only newer versions that change something are written), companion rows for
/// new keys, and the applied position in this applier's row of the control table `ferry_applied`.
///
/// The session runs with `ferry.sync = on` (the mirror's triggers let the sync's own writes through), so a
/// transaction does not set it. The staging table is a temporary table created once per connection and emptied by
/// the statement that records the applied position: with `ON COMMIT DELETE ROWS`, every commit truncated its file,
/// which on a busy disk waited for the filesystem's journal about as long as the WAL flush itself.
struct BatchApplier {
    let context: PipelineContext
    let session: PostgresSession
    /// This applier's row in `ferry_applied` (`consumer-0`, `reconcile`): appliers that run at the same time each
    /// have their own, so none waits for another's commit.
    let slot: String
    private let staging = StagingTables()
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
        let entry = (layout, MirrorStatements(layout: layout, control: context.control))
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
        let entry = (layout, MirrorStatements(layout: layout, control: context.control))
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

    /// Applies `rows`; returns whether every row was a new key.
    ///
    /// Usually two round trips: a COPY into the staging table (a temporary table: nothing is written to the WAL and
    /// its commit does not wait for a flush), then ``MirrorStatements/upsert``, which is its own transaction. A
    /// batch whose statement failed leaves its rows staged; the next apply on that connection empties the table
    /// first. With `tryPlainInsert`, everything runs in one transaction with a savepoint (see below).
    @discardableResult
    func apply(
        _ rows: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, maxSeq: Int64, position: SourcePosition?, tryPlainInsert: Bool
    ) async throws -> Bool {
        let record = context.control.binds(maxSeq, Int64(rows.rowCount), ControlTables.json(position), slot, context.pipeline.name)
        let allNew: Bool
        if tryPlainInsert {
            allNew = try await applyTryingPlainInsert(rows, layout: layout, statements: statements, record: record)
        } else {
            allNew = try await session.withConnection { connection in
                try await prepareStaging(layout, statements: statements, connection, inTransaction: false)
                staging.filling(layout.stagingTable)
                try await connection.copyFrom(table: layout.stagingTable, columns: layout.stagingColumns, logger: logger) { writer in
                    try await writer.write(rows.buffer)
                }
                let allNew = try await upsert(rows, statements: statements, record: record, connection)
                staging.emptied(layout.stagingTable)
                return allNew
            }
        }
        try await vacuumStagingIfDue(layout.stagingTable, emptied: rows.rowCount)
        return allNew
    }

    /// While every key is new (an initial load), a plain insert does the upsert's work without the speculative
    /// insertion and the sort, and the companion rows of the new keys are inserted plainly too (without the
    /// foreign-key check where allowed). It is tried only after a batch that inserted every row, so at most one
    /// attempt fails (rolled back to its savepoint) when updates begin; that batch then takes the upsert in the same
    /// transaction.
    private func applyTryingPlainInsert(_ rows: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, record: PostgresBindings)
        async throws -> Bool
    {
        let skipCheck = skipCompanionCheck ?? false
        var created: Int?
        let allNew = try await session.withTransaction { connection -> Bool in
            if try await prepareStaging(layout, statements: statements, connection, inTransaction: true) { created = connection.connection.id }
            try await connection.copyFrom(table: layout.stagingTable, columns: layout.stagingColumns, logger: logger) { writer in
                try await writer.write(rows.buffer)
            }
            try await connection.query("SAVEPOINT ferry_insert_all", logger: logger)
            do {
                try await connection.query(PostgresQuery(unsafeSQL: statements.insertAll), logger: logger)
                if let companion = statements.companionInsertAll {
                    if skipCheck { try await connection.query("SET LOCAL session_replication_role = replica", logger: logger) }
                    try await connection.query(PostgresQuery(unsafeSQL: companion), logger: logger)
                    if skipCheck { try await connection.query("SET LOCAL session_replication_role = origin", logger: logger) }
                }
                try await connection.query("RELEASE SAVEPOINT ferry_insert_all", logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: statements.recordApplied, binds: record), logger: logger)
                return true
            } catch  where PostgresDiagnosis.sqlState(of: error) == "23505" {
                try await connection.query("ROLLBACK TO SAVEPOINT ferry_insert_all", logger: logger)
            }
            return try await upsert(rows, statements: statements, record: record, connection)
        }
        // Created in a transaction that committed: the table stays for the connection's life. The transaction
        // emptied it.
        if let created { staging.created(layout.stagingTable, on: created) }
        staging.emptied(layout.stagingTable)
        return allNew
    }

    /// Runs ``MirrorStatements/upsert`` on the staged rows; returns whether every row was a new key (the next batch
    /// is probably an initial load's too).
    private func upsert(_ rows: CopyTextRows, statements: MirrorStatements, record: PostgresBindings, _ connection: PostgresSessionConnection)
        async throws -> Bool
    {
        let counts = try await connection.query(PostgresQuery(unsafeSQL: statements.upsert, binds: record), logger: logger)
        var written = 0
        var inserted = 0
        for try await (rowsWritten, rowsInserted) in counts.decode((Int64, Int64).self) {
            written = Int(rowsWritten)
            inserted = Int(rowsInserted)
        }
        return inserted == rows.rowCount && written == rows.rowCount
    }

    /// Makes sure the connection has the staging table, empty. Returns whether it was created (in a transaction,
    /// it exists for good only once that commits).
    @discardableResult
    private func prepareStaging(_ layout: MirrorLayout, statements: MirrorStatements, _ connection: PostgresSessionConnection, inTransaction: Bool)
        async throws -> Bool
    {
        let id = connection.connection.id
        switch staging.state(of: layout.stagingTable, on: id) {
        case .ready:
            return false
        case .filled:
            // A batch whose statement failed left its rows.
            try await connection.query(PostgresQuery(unsafeSQL: statements.emptyStaging), logger: logger)
            if !inTransaction { staging.emptied(layout.stagingTable) }
            return false
        case .missing:
            try await connection.query(PostgresQuery(unsafeSQL: statements.createStaging), logger: logger)
            if !inTransaction { staging.created(layout.stagingTable, on: id) }
            return true
        }
    }

    /// Deleted staging rows leave dead versions that only VACUUM makes room for; without it the table would grow
    /// with every batch. `TRUNCATE false` keeps its pages for the next batches. The batch is applied by now: a
    /// VACUUM that fails (the connection was replaced meanwhile, and its table with it) is only logged.
    private func vacuumStagingIfDue(_ table: String, emptied rows: Int) async throws {
        guard staging.countEmptied(rows) else { return }
        do {
            try await session.withConnection { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "VACUUM (TRUNCATE false) \(table)"), logger: logger)
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.debug("could not vacuum the staging table", metadata: ["ferry.table": "\(table)", "ferry.error": "\(error)"])
        }
    }

    /// Records one row that cannot be applied, with PostgreSQL's reason, in the dead-letter table (in the same
    /// shape as the source columns) and stream.
    func deadLetter(
        _ row: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, reason: String, sqlState: String?, streamID: String?,
        deliveries: Int?
    ) async throws {
        // Once per row version: a row dead-lettered again (redelivered after a crash) is not recorded twice.
        var created: Int?
        let recorded = try await session.withTransaction { connection -> Bool in
            if try await prepareStaging(layout, statements: statements, connection, inTransaction: true) { created = connection.connection.id }
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
            try await connection.query(PostgresQuery(unsafeSQL: statements.emptyStaging), logger: logger)
            return inserted
        }
        if let created { staging.created(layout.stagingTable, on: created) }
        staging.emptied(layout.stagingTable)
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

/// Which staging tables exist on the session's current connection, which may hold rows a failed statement left,
/// and how many rows were emptied from them since the last VACUUM.
private final class StagingTables: Sendable {
    enum State { case missing, ready, filled }

    /// Emptied rows after which the staging table is vacuumed.
    static let vacuumEvery = 20_000

    private let state = Mutex((connection: -1, tables: Set<String>(), filled: Set<String>(), emptiedRows: 0))

    func state(of table: String, on connection: Int) -> State {
        state.withLock { state in
            guard state.connection == connection, state.tables.contains(table) else { return .missing }
            return state.filled.contains(table) ? .filled : .ready
        }
    }

    func created(_ table: String, on connection: Int) {
        state.withLock { state in
            if state.connection != connection { state = (connection, [], [], 0) }
            state.tables.insert(table)
        }
    }

    /// Rows are about to be staged outside a transaction: until ``emptied(_:)``, the table may hold them.
    func filling(_ table: String) { _ = state.withLock { $0.filled.insert(table) } }

    func emptied(_ table: String) { _ = state.withLock { $0.filled.remove(table) } }

    /// Counts `rows` emptied; true when a VACUUM is due (the count starts again).
    func countEmptied(_ rows: Int) -> Bool {
        state.withLock { state in
            state.emptiedRows += rows
            guard state.emptiedRows >= Self.vacuumEvery else { return false }
            state.emptiedRows = 0
            return true
        }
    }
}
