import FerryCore
import FerryPostgres

/// The SQL of one pipeline's apply path, generated once per schema version.
///
/// A batch's rows are bound as one `text[]` per field and read with `unnest` (``MirrorLayout/stagedRows(firstParameter:)``):
/// no staging table to fill, empty and vacuum, and no COPY round trip before the statement.
struct MirrorStatements: Sendable {
    /// The whole apply of a batch in one statement: the guarded upsert, companion rows for the keys it inserted and
    /// the applied position (``ControlTables/appliedCTE``). The companion's foreign key is checked at the end of the
    /// statement, when the mirror rows exist. Run on its own it is its own transaction: one round trip and one
    /// commit. Binds: those of ``ControlTables/appliedCTE``, then the batch's arrays. Returns one row: (rows
    /// written, rows inserted).
    let upsert: String
    /// A plain insert of every row, with the applied position: the fast path while every key is new (an initial
    /// load). Any key already in the mirror, or twice in the batch, fails it with a unique violation and the batch
    /// takes `upsert`. Binds: as `upsert`.
    let insertAll: String
    /// The companion rows of a batch `insertAll` inserted: every key is new, so no DISTINCT and no conflict check.
    /// Binds: the key fields' arrays.
    let companionInsertAll: String?
    /// Each row as (jsonb text keyed by source column, sequence), for the dead letters. Binds: five of the caller's,
    /// then the batch's arrays.
    let stagedAsJSON: String

    /// Parameters before the batch's arrays: those of ``ControlTables/appliedCTE``.
    static let firstArrayParameter = 6

    init(layout: MirrorLayout, control: ControlTables) {
        let staged = layout.stagedRows(firstParameter: Self.firstArrayParameter)
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
            WITH recorded AS (\(control.appliedCTE)),
            written AS (
            INSERT INTO \(layout.mirrorTable) AS m (\(names.joined(separator: ", ")), ferry_seq)
            SELECT DISTINCT ON (\(keyCasts.joined(separator: ", "))) \(selectList), s::int8
            FROM \(staged)
            ORDER BY \(keyCasts.joined(separator: ", ")), s::int8 DESC
            ON CONFLICT (\(layout.keyList)) DO UPDATE SET \(assignments), ferry_seq = EXCLUDED.ferry_seq, updated_at = now(), deleted_at = NULL
            WHERE m.ferry_seq < EXCLUDED.ferry_seq
              AND (m.deleted_at IS NOT NULL OR (\(mirrorValues)) IS DISTINCT FROM (\(incomingValues)))
            RETURNING \(layout.keyColumns.map { "m." + layout.quoted($0) }.joined(separator: ", ")), (m.xmax = 0) AS inserted
            )\(companionPart)
            SELECT count(*)::int8, count(*) FILTER (WHERE inserted)::int8 FROM written
            """
        insertAll = """
            WITH recorded AS (\(control.appliedCTE))
            INSERT INTO \(layout.mirrorTable) (\(names.joined(separator: ", ")), ferry_seq)
            SELECT \(selectList), s::int8 FROM \(staged)
            """
        companionInsertAll = layout.companionTable.map {
            "INSERT INTO \($0) (\(layout.keyList)) SELECT \(keyCasts.joined(separator: ", ")) FROM \(layout.stagedKeys(firstParameter: 1))"
        }

        let pairs = layout.columns.indices.map { "\(SQLIdentifier.literal(layout.columns[$0].source)), c\($0)" }.joined(separator: ", ")
        stagedAsJSON = "SELECT jsonb_build_object(\(pairs))::text, s FROM \(staged)"
    }
}
