import FerryCore
import FerryPostgres

/// The SQL of one pipeline's apply path, generated once per schema version.
struct MirrorStatements: Sendable {
    let createStaging: String
    let upsert: String
    /// A plain insert of every staged row: the fast path while every key is new (an initial load). Any key already
    /// in the mirror, or twice in the batch, fails it with a unique violation and the batch takes `upsert`.
    let insertAll: String
    let companionInsert: String?
    /// The companion rows of a batch `insertAll` inserted: every key is new, so no DISTINCT and no conflict check.
    let companionInsertAll: String?
    let stagingAsJSON: String

    init(layout: MirrorLayout) {
        let staging = layout.stagingTable
        createStaging =
            "CREATE TEMP TABLE IF NOT EXISTS \(staging) (" + layout.stagingColumns.map { "\($0) text" }.joined(separator: ", ")
            + ") ON COMMIT DELETE ROWS"

        let names = layout.columns.map(layout.quoted)
        let keyCasts = layout.keyIndexes.map { layout.cast($0) }
        let selectList = layout.columns.indices.map { "\(layout.cast($0)) AS \(names[$0])" }.joined(separator: ", ")
        let assignments = names.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let mirrorValues = names.map { "m.\($0)" }.joined(separator: ", ")
        let incomingValues = names.map { "EXCLUDED.\($0)" }.joined(separator: ", ")
        // Newest per key within the batch; then only a newer version that changes something is written.
        // Counted in the server: one row back (rows written, rows inserted) instead of one per written row.
        upsert = """
            WITH written AS (
            INSERT INTO \(layout.mirrorTable) AS m (\(names.joined(separator: ", ")), ferry_seq)
            SELECT DISTINCT ON (\(keyCasts.joined(separator: ", "))) \(selectList), s::int8
            FROM \(staging)
            ORDER BY \(keyCasts.joined(separator: ", ")), s::int8 DESC
            ON CONFLICT (\(layout.keyList)) DO UPDATE SET \(assignments), ferry_seq = EXCLUDED.ferry_seq, updated_at = now(), deleted_at = NULL
            WHERE m.ferry_seq < EXCLUDED.ferry_seq
              AND (m.deleted_at IS NOT NULL OR (\(mirrorValues)) IS DISTINCT FROM (\(incomingValues)))
            RETURNING (m.xmax = 0) AS inserted
            )
            SELECT count(*)::int8, count(*) FILTER (WHERE inserted)::int8 FROM written
            """
        insertAll = """
            INSERT INTO \(layout.mirrorTable) (\(names.joined(separator: ", ")), ferry_seq)
            SELECT \(selectList), s::int8 FROM \(staging)
            """
        // Every staged key now has a mirror row (the upsert inserts new keys whatever their version). The upsert
        // counts the rows it inserted (`xmax = 0`); when none was, every key already had its
        // companion row and this statement is skipped (updates are most of a live stream).
        if let companion = layout.companionTable {
            companionInsert = """
                INSERT INTO \(companion) (\(layout.keyList))
                SELECT DISTINCT \(keyCasts.joined(separator: ", ")) FROM \(staging)
                ON CONFLICT (\(layout.keyList)) DO NOTHING
                """
            companionInsertAll = "INSERT INTO \(companion) (\(layout.keyList)) SELECT \(keyCasts.joined(separator: ", ")) FROM \(staging)"
        } else {
            companionInsert = nil
            companionInsertAll = nil
        }

        let pairs = layout.columns.indices.map { "\(SQLIdentifier.literal(layout.columns[$0].source)), c\($0)" }.joined(separator: ", ")
        stagingAsJSON = "SELECT jsonb_build_object(\(pairs))::text, s FROM \(staging)"
    }
}
