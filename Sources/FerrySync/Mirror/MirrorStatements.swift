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
        let companionPart = Self.companionPart(layout)
        if layout.pipeline.source.changeTracking {
            let (upsert, insertAll) = Self.withDeletes(layout: layout, control: control, staged: staged)
            self.upsert = upsert
            self.insertAll = insertAll
        } else {
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
        }
        companionInsertAll = layout.companionTable.map {
            "INSERT INTO \($0) (\(layout.keyList)) SELECT \(keyCasts.joined(separator: ", ")) FROM \(layout.stagedKeys(firstParameter: 1))"
        }

        let pairs = layout.columns.indices.map { "\(SQLIdentifier.literal(layout.columns[$0].source)), c\($0)" }.joined(separator: ", ")
        stagedAsJSON = "SELECT jsonb_build_object(\(pairs))::text, s FROM \(staged)"
    }

    /// The part of ``upsert`` that inserts the companion rows of the keys it inserted (none without a companion).
    private static func companionPart(_ layout: MirrorLayout) -> String {
        guard let companion = layout.companionTable else { return "" }
        return """
            ,
            companion AS (
            INSERT INTO \(companion) (\(layout.keyList)) SELECT \(layout.keyList) FROM written WHERE inserted
            ON CONFLICT (\(layout.keyList)) DO NOTHING
            )
            """
    }

    /// ``upsert`` and ``insertAll`` for a source that sees deletes (Change Tracking): a row whose sequence number is
    /// negative is a deleted source row (key and version, other fields NULL). Applied, it soft-deletes the mirror row
    /// (`deleted_at`, the other columns keep their last values) and takes its version, so an older version applied
    /// later cannot bring the row back; a key the mirror does not have yet gets a deleted row holding only the key
    /// (and its companion row), for the same reason.
    private static func withDeletes(layout: MirrorLayout, control: ControlTables, staged: String) -> (upsert: String, insertAll: String) {
        let names = layout.columns.map(layout.quoted)
        let keyCasts = layout.keyIndexes.map { layout.cast($0) }
        let selectList = layout.columns.indices.map { "\(layout.cast($0)) AS \(names[$0])" }.joined(separator: ", ")
        let keyNames = Set(layout.keyIndexes.map { names[$0] })
        let assignments = names.filter { !keyNames.contains($0) }.map {
            "\($0) = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.\($0) ELSE m.\($0) END"
        }
        let mirrorValues = names.map { "m.\($0)" }.joined(separator: ", ")
        let incomingValues = names.map { "EXCLUDED.\($0)" }.joined(separator: ", ")
        let companionPart = Self.companionPart(layout)
        let upsert = """
            WITH recorded AS (\(control.appliedCTE)),
            incoming AS (
            SELECT DISTINCT ON (\(keyCasts.joined(separator: ", "))) \(selectList), abs(s::int8) AS ferry_seq,
              CASE WHEN s::int8 < 0 THEN now() END AS deleted_at
            FROM \(staged)
            ORDER BY \(keyCasts.joined(separator: ", ")), abs(s::int8) DESC
            ),
            written AS (
            INSERT INTO \(layout.mirrorTable) AS m (\(names.joined(separator: ", ")), ferry_seq, deleted_at)
            SELECT \(names.joined(separator: ", ")), ferry_seq, deleted_at FROM incoming
            ON CONFLICT (\(layout.keyList)) DO UPDATE SET \((assignments + ["ferry_seq = EXCLUDED.ferry_seq", "updated_at = now()"]).joined(separator: ", ")),
              deleted_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL ELSE coalesce(m.deleted_at, EXCLUDED.deleted_at) END
            WHERE m.ferry_seq < EXCLUDED.ferry_seq
              AND (EXCLUDED.deleted_at IS NOT NULL OR m.deleted_at IS NOT NULL OR (\(mirrorValues)) IS DISTINCT FROM (\(incomingValues)))
            RETURNING \(layout.keyColumns.map { "m." + layout.quoted($0) }.joined(separator: ", ")), (m.xmax = 0) AS inserted
            )\(companionPart)
            SELECT count(*)::int8, count(*) FILTER (WHERE inserted)::int8 FROM written
            """
        let insertAll = """
            WITH recorded AS (\(control.appliedCTE))
            INSERT INTO \(layout.mirrorTable) (\(names.joined(separator: ", ")), ferry_seq, deleted_at)
            SELECT \(selectList), abs(s::int8), CASE WHEN s::int8 < 0 THEN now() END FROM \(staged)
            """
        return (upsert, insertAll)
    }
}
