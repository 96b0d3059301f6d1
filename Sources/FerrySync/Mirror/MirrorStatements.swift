import FerryCore
import FerryPostgres

/// The SQL of one pipeline's apply path, generated once per schema version.
struct MirrorStatements: Sendable {
    let createStaging: String
    let emptyStaging: String
    /// The whole apply of a staged batch in one statement: the guarded upsert, companion rows for the keys it
    /// inserted, the applied position (``ControlTables/appliedCTE``) and emptying the staging table. Every part
    /// reads the staging table as it was when the statement began, so emptying it in the same statement is safe;
    /// the companion's foreign key is checked at the end of the statement, when the mirror rows exist. Run on its
    /// own it is its own transaction: one round trip and one commit. Binds: those of ``ControlTables/appliedCTE``.
    /// Returns one row: (rows written, rows inserted).
    let upsert: String
    /// A plain insert of every staged row: the fast path while every key is new (an initial load). Any key already
    /// in the mirror, or twice in the batch, fails it with a unique violation and the batch takes `upsert`.
    let insertAll: String
    /// The companion rows of a batch `insertAll` inserted: every key is new, so no DISTINCT and no conflict check.
    let companionInsertAll: String?
    /// After `insertAll`: the applied position, and emptying the staging table. Binds: as `upsert`.
    let recordApplied: String
    let stagingAsJSON: String

    init(layout: MirrorLayout, control: ControlTables) {
        let staging = layout.stagingTable
        createStaging =
            "CREATE TEMP TABLE IF NOT EXISTS \(staging) (" + layout.stagingColumns.map { "\($0) text" }.joined(separator: ", ") + ")"
        emptyStaging = "DELETE FROM \(staging)"

        let names = layout.columns.map(layout.quoted)
        let keyCasts = layout.keyIndexes.map { layout.cast($0) }
        let selectList = layout.columns.indices.map { "\(layout.cast($0)) AS \(names[$0])" }.joined(separator: ", ")
        let assignments = names.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let mirrorValues = names.map { "m.\($0)" }.joined(separator: ", ")
        let incomingValues = names.map { "EXCLUDED.\($0)" }.joined(separator: ", ")
        // Newest per key within the batch; then only a newer version that changes something is written.
        // Counted in the server: one row back (rows written, rows inserted) instead of one per written row.
        var companionPart = ""
        if let companion = layout.companionTable {
            companionPart = """
                ,
                companion AS (
                INSERT INTO \(companion) (\(layout.keyList)) SELECT \(layout.keyList) FROM written WHERE inserted
                ON CONFLICT (\(layout.keyList)) DO NOTHING
                )
                """
        }
        upsert = """
            WITH emptied AS (DELETE FROM \(staging)),
            recorded AS (\(control.appliedCTE)),
            written AS (
            INSERT INTO \(layout.mirrorTable) AS m (\(names.joined(separator: ", ")), ferry_seq)
            SELECT DISTINCT ON (\(keyCasts.joined(separator: ", "))) \(selectList), s::int8
            FROM \(staging)
            ORDER BY \(keyCasts.joined(separator: ", ")), s::int8 DESC
            ON CONFLICT (\(layout.keyList)) DO UPDATE SET \(assignments), ferry_seq = EXCLUDED.ferry_seq, updated_at = now(), deleted_at = NULL
            WHERE m.ferry_seq < EXCLUDED.ferry_seq
              AND (m.deleted_at IS NOT NULL OR (\(mirrorValues)) IS DISTINCT FROM (\(incomingValues)))
            RETURNING \(layout.keyColumns.map { "m." + layout.quoted($0) }.joined(separator: ", ")), (m.xmax = 0) AS inserted
            )\(companionPart)
            SELECT count(*)::int8, count(*) FILTER (WHERE inserted)::int8 FROM written
            """
        insertAll = """
            INSERT INTO \(layout.mirrorTable) (\(names.joined(separator: ", ")), ferry_seq)
            SELECT \(selectList), s::int8 FROM \(staging)
            """
        companionInsertAll = layout.companionTable.map {
            "INSERT INTO \($0) (\(layout.keyList)) SELECT \(keyCasts.joined(separator: ", ")) FROM \(staging)"
        }
        recordApplied = "WITH emptied AS (DELETE FROM \(staging)) \(control.appliedCTE)"

        let pairs = layout.columns.indices.map { "\(SQLIdentifier.literal(layout.columns[$0].source)), c\($0)" }.joined(separator: ", ")
        stagingAsJSON = "SELECT jsonb_build_object(\(pairs))::text, s FROM \(staging)"
    }
}
