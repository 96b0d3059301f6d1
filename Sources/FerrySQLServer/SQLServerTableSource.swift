package import FerryCore
package import Logging
import Synchronization

/// A SQL Server table, view or query as a table sync source (the original design's `VW_VENTAS_SYNC`).
///
/// Reads name every column (`[quoted]`) and page with keyset conditions on (watermark, key) written out as T-SQL has
/// no row-value comparison: `w > @w OR (w = @w AND k > @k)`, led by `w >= @w` so the server can seek an index on
/// (watermark, key). Values are bound (`sp_executesql`), each declared as its column's own type so the column's
/// index is used and the comparison is exact. Rows arrive as PostgreSQL text (``SQLServerText``).
///
/// Time types with a 7th fractional digit (`datetime2(7)`, SQL Server's default) are printed to the microsecond, as
/// the mirror stores them. A position must name the exact value, though, or the row it names would compare greater
/// than itself and be read again for ever: reads on such a watermark also fetch it at full precision, and the source
/// remembers it for the position of each page's last row. A position it does not know (after a restart) re-reads
/// the rows of its microsecond, which the mirror takes as the versions they are.
///
/// A `rowversion` watermark is better than a time: the tail is read below `MIN_ACTIVE_ROWVERSION()` only, so no row
/// version can commit behind a position, and the lookback window is not needed (nor read).
///
/// With Change Tracking (`change_tracking: true`, a table only) no watermark column is needed: each row carries the
/// version of its last change as one more column, `ferry_change_version` (from `CHANGETABLE(VERSION …)`; NULL for a row
/// not changed since tracking began), which is the watermark. The tail is `CHANGETABLE(CHANGES t, v)` joined to the
/// table, paged on (version, key); a key whose row is gone is a delete, marked as such for the producer. Rows with a
/// NULL version (never changed, or their tracking cleaned up) are the "NULL watermark" rows, loaded by key. A position
/// older than `CHANGE_TRACKING_MIN_VALID_VERSION` is an error: the changes in between were cleaned up.
///
/// Reconciliation hashes rows in the target's PostgreSQL (``RowTextHashing``): SQL Server cannot compute the mirror
/// side's `hashtextextended`, and its own text forms of values differ from PostgreSQL's.
package struct SQLServerTableSource: TableSource {
    package enum Relation: Sendable {
        /// `view`, `schema.view` or `[schema].[view]`.
        case table(String)
        case query(String)
    }

    let session: SQLServerSession
    let relation: Relation
    let keyColumns: [String]
    let watermarkColumn: String
    /// Whether changes come from Change Tracking (see above).
    let changeTracking: Bool
    let excludedColumns: Set<String>
    let hasher: any RowTextHashing
    let logger: Logger
    private let state = State()
    /// Rows per round trip.
    static let batchRows = 2_000
    /// At most this many parameters per statement (SQL Server takes 2,100).
    static let parameterLimit = 2_000

    final class State: Sendable {
        /// The SQL Server type of each column seen by the last `describe()`, by lower-cased name.
        let types = Mutex<[String: SQLServerColumnType]>([:])
        let layout = Mutex<Layout?>(nil)
        /// The full-precision watermark of the last row of recent reads, by that row's position as printed.
        let exact = Mutex<[SourcePosition: String]>([:])
        /// Change Tracking: the rows a tail read brought beyond the page asked for (see ``readTrackedChanges``).
        let trackedAhead = Mutex<TrackedAhead?>(nil)
    }

    /// Rows of the Change Tracking tail read ahead, to be handed out from `after` (the position of the last row handed
    /// out), for `schema`; `complete`: the read reached the end of the changes.
    struct TrackedAhead: Sendable {
        var after: SourcePosition
        var schema: SourceSchema
        var rows: CopyTextRows
        var complete: Bool
    }

    /// How many pages a Change Tracking tail read brings at once (at most ``trackedAheadRows`` rows).
    static let trackedAheadPages = 8
    static let trackedAheadRows = 100_000

    package init(
        endpoint: SQLServerEndpoint, configurationKey: String, options: SQLServerOptions? = nil, relation: Relation, key: [String],
        watermark: String, changeTracking: Bool = false, excluding excluded: [String] = [], hasher: any RowTextHashing, logger: Logger
    ) {
        self.session = SQLServerSession(endpoint: endpoint, key: configurationKey, options: options ?? SQLServerOptions(endpoint))
        self.relation = relation
        self.keyColumns = key
        self.watermarkColumn = changeTracking ? PipelineConfiguration.Source.changeVersionColumn : watermark
        self.changeTracking = changeTracking
        self.excludedColumns = Set(excluded.map { $0.lowercased() })
        self.hasher = hasher
        self.logger = logger
    }

    var endpoint: SQLServerEndpoint { session.endpoint }

    /// What the relation is called in messages.
    var displayName: String {
        switch relation {
        case .table(let name): "\(name) on \(endpoint.host):\(endpoint.port)/\(endpoint.database)"
        case .query: "the pipeline's query on \(endpoint.host):\(endpoint.port)/\(endpoint.database)"
        }
    }

    /// The relation under the alias `ferry_src`; with Change Tracking, the table with each row's change version.
    var fromClause: String {
        switch relation {
        case .table(let name) where changeTracking:
            let table = SQLServerIdentifier.qualified(name)
            let keys = keyColumns.map(SQLServerIdentifier.quote)
            return """
                (SELECT [ferry_t].*, [ferry_ct].[SYS_CHANGE_VERSION] AS \(SQLServerIdentifier.quote(watermarkColumn)) FROM \(table) AS [ferry_t] \
                CROSS APPLY CHANGETABLE(VERSION \(table), (\(keys.joined(separator: ", "))), (\(keys.map { "[ferry_t]." + $0 }.joined(separator: ", ")))) \
                AS [ferry_ct]) AS ferry_src
                """
        case .table(let name): return SQLServerIdentifier.qualified(name) + " AS ferry_src"
        case .query(let sql): return "(\(sql)) AS ferry_src"
        }
    }

    static func column(_ name: String) -> String { "ferry_src." + SQLServerIdentifier.quote(name) }

    // MARK: Schema

    package func describe() async throws -> SourceSchema {
        let statement: String
        switch relation {
        case .table(let name): statement = "SELECT * FROM \(SQLServerIdentifier.qualified(name))"
        case .query(let sql): statement = sql
        }
        let rows = try await guarded {
            try await session.withConnection { connection in
                try await connection.rows(
                    """
                    SELECT [name], [system_type_name], [error_number], [error_message]
                    FROM sys.dm_exec_describe_first_result_set(@p1, NULL, 0) ORDER BY [column_ordinal]
                    """, parameters: [SQLServerParameter(statement, as: "nvarchar(max)")])
            }
        }
        if let failed = rows.first(where: { $0.count > 3 && $0[2] != nil }) {
            let number = Int(failed[2] ?? "") ?? 0
            let message = failed[3] ?? ""
            switch (relation, number) {
            case (.table(let name), 208):
                throw FerryError(
                    .invalidInput,
                    "source view \(name) does not exist on \(endpoint.host):\(endpoint.port)/\(endpoint.database), or user `\(endpoint.user)` cannot see it (Msg 208)",
                    fix: "check the pipeline's source.table (MSSQL_VIEW), written schema.view, and GRANT SELECT ON it TO \(endpoint.user)")
            case (_, 229), (_, 230):
                throw FerryError(
                    .permission, "reading \(displayName): \(message) (Msg \(number))",
                    fix: "GRANT SELECT ON the source TO \(endpoint.user)")
            default:
                throw FerryError(
                    .invalidInput, "SQL Server cannot describe \(displayName): \(message) (Msg \(number))",
                    fix: "run the statement in SQL Server Management Studio to see the problem; fix the pipeline's source")
            }
        }
        var types: [String: SQLServerColumnType] = [:]
        var columns: [SourceColumn] = []
        for row in rows {
            guard row.count >= 2, let name = row[0], let typeName = row[1] else { continue }
            guard !excludedColumns.contains(name.lowercased()) else { continue }
            let type = SQLServerColumnType(typeName)
            guard let postgres = type.postgresType else {
                throw FerryError(
                    .unsupported, "column \(name) of \(displayName) is of type \(typeName), which Ferry does not read",
                    fix: "exclude it (columns: {\(name): exclude}), or read the source through a `query` that converts it (CAST(… AS nvarchar(max)))")
            }
            if changeTracking, name.lowercased() == watermarkColumn {
                throw FerryError(
                    .unsupported, "\(displayName) has a column \(name), the name Ferry gives each row's Change Tracking version",
                    fix: "exclude it (columns: {\(name): exclude}), or rename it at the source")
            }
            types[name.lowercased()] = type
            columns.append(SourceColumn(name: name, type: postgres))
        }
        if changeTracking {
            types[watermarkColumn] = SQLServerColumnType("bigint")
            columns.append(SourceColumn(name: watermarkColumn, type: "bigint"))
        }
        let schema = SourceSchema(columns: columns)
        state.types.withLock { known in known.merge(types) { _, new in new } }
        let layout = try layout(for: schema, cached: false)
        state.layout.withLock { $0 = layout }
        return schema
    }

    /// How rows of `schema` are read.
    struct Layout: Sendable {
        let schema: SourceSchema
        let types: [SQLServerColumnType]
        let watermark: Int
        let keys: [Int]
        let select: String

        var watermarkType: SQLServerColumnType { types[watermark] }
        /// Whether reads also fetch the watermark at full precision, as one more column.
        var exactWatermark: Bool { watermarkType.hasSubMicroseconds }
        var watermarkName: String { schema.columns[watermark].name }
        var orderBy: String { ([watermark] + keys).map { SQLServerTableSource.column(schema.columns[$0].name) }.joined(separator: ", ") }
        var keyOrder: String { keys.map { SQLServerTableSource.column(schema.columns[$0].name) }.joined(separator: ", ") }
        var selectWithExact: String { exactWatermark ? select + ", " + SQLServerTableSource.column(watermarkName) : select }
    }

    func layout(for schema: SourceSchema, cached: Bool = true) throws -> Layout {
        if cached, let layout = state.layout.withLock({ $0 }), layout.schema == schema { return layout }
        let positions = try schema.positions(key: keyColumns, watermark: watermarkColumn, in: displayName)
        let known = state.types.withLock { $0 }
        var types: [SQLServerColumnType] = []
        for column in schema.columns {
            // A column no longer at the source: the caller's schema is older than the source's.
            guard let type = known[column.name.lowercased()] else { throw SourceSchemaChanged(current: schema) }
            types.append(type)
        }
        return Layout(
            schema: schema, types: types, watermark: positions.watermark, keys: positions.key,
            select: schema.columns.map { Self.column($0.name) }.joined(separator: ", "))
    }

    /// The layout for `schema`, describing the source again when a column's SQL Server type is not known.
    func layoutRefreshing(_ schema: SourceSchema) async throws -> Layout {
        do {
            return try layout(for: schema)
        } catch is SourceSchemaChanged {
            let current = try await describe()
            if current != schema { throw SourceSchemaChanged(current: current) }
            return try layout(for: schema)
        }
    }

    func layout() async throws -> Layout {
        if let layout = state.layout.withLock({ $0 }) { return layout }
        _ = try await describe()
        return state.layout.withLock { $0! }
    }

    // MARK: Reading

    @discardableResult
    package func readChanges(after position: SourcePosition?, limit: Int, schema: SourceSchema, into rows: inout CopyTextRows) async throws
        -> String?
    {
        let layout = try await layoutRefreshing(schema)
        if changeTracking { return try await readTrackedChanges(after: position, limit: limit, layout: layout, into: &rows) }
        var statement = Statement()
        let top = statement.bind(limit)
        var conditions = ["\(Self.column(layout.watermarkName)) IS NOT NULL"]
        if layout.watermarkType.isRowVersion {
            // Row versions at or above the oldest one a still-open transaction holds may yet commit: read below it
            // only, and no row can later appear behind the position (no lookback window is needed).
            conditions.append("\(Self.column(layout.watermarkName)) < MIN_ACTIVE_ROWVERSION()")
        }
        if let position, position.watermark != nil {
            conditions.append(after(position, layout: layout, statement: &statement))
        }
        let sql =
            "SELECT TOP (\(top)) \(layout.selectWithExact) FROM \(fromClause) WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(layout.orderBy)"
        try await run(sql, statement, layout: layout, exact: layout.exactWatermark, into: &rows)
        return nil
    }

    /// The tail with Change Tracking: `CHANGETABLE(CHANGES …)` after the position's version (all tracked changes from
    /// the start), joined to the table by key, in (version, key) order. A key whose row is gone is a deleted row: its
    /// key and version, other fields NULL, marked in ``CopyTextRows/deletedRows``.
    ///
    /// `CHANGETABLE(CHANGES t, v)` returns every change after `v` and has no seek by key, so each page costs all the
    /// changes from its version on — a page of a version with many rows (one transaction updating 100,000) costs them
    /// all again. A read therefore brings ``trackedAheadPages`` pages at once and hands out the pages after the first
    /// from memory while the caller continues from where the previous one ended; any other position reads again.
    private func readTrackedChanges(after position: SourcePosition?, limit: Int, layout: Layout, into rows: inout CopyTextRows) async throws
        -> String?
    {
        guard case .table(let name) = relation else { return nil }
        if let position, let page = takeTrackedAhead(after: position, schema: layout.schema, limit: limit, layout: layout) {
            rows.append(page)
            return nil
        }
        let table = SQLServerIdentifier.qualified(name)
        var statement = Statement()
        let readLimit = max(limit, min(limit * Self.trackedAheadPages, Self.trackedAheadRows))
        let top = statement.bind(readLimit)
        // CHANGES returns the keys changed after a version; a position at version v still needs the rest of v's keys.
        var since: Int64?
        if let position, let text = position.watermark {
            guard let version = Int64(text), version > Int64.min else {
                throw FerryError(
                    .invalidInput, "the checkpoint of \(displayName) holds \"\(PrintableText.escaped(text))\", not a Change Tracking version",
                    fix: "start the pipeline over: ferry pipeline reset PIPELINE")
            }
            since = version - 1
        }
        try await checkRetention(table: table, since: since)
        statement.parameters.append(SQLServerParameter(since.map { String($0) }, as: "bigint"))
        let sinceParameter = "@p\(statement.parameters.count)"
        let keys = Set(layout.keys)
        let inner = layout.schema.columns.enumerated().map { index, column -> String in
            let name = SQLServerIdentifier.quote(column.name)
            if index == layout.watermark { return "[ferry_ct].[SYS_CHANGE_VERSION] AS \(name)" }
            return (keys.contains(index) ? "[ferry_ct]." : "[ferry_t].") + name + " AS " + name
        }
        let join = layout.keys.map {
            "[ferry_t].\(SQLServerIdentifier.quote(layout.schema.columns[$0].name)) = [ferry_ct].\(SQLServerIdentifier.quote(layout.schema.columns[$0].name))"
        }
        let firstKey = SQLServerIdentifier.quote(layout.schema.columns[layout.keys[0]].name)
        var sql = """
            SELECT TOP (\(top)) \(layout.select), ferry_src.[ferry_deleted] FROM (SELECT \(inner.joined(separator: ", ")), \
            CASE WHEN [ferry_t].\(firstKey) IS NULL THEN 1 ELSE 0 END AS [ferry_deleted] \
            FROM CHANGETABLE(CHANGES \(table), \(sinceParameter)) AS [ferry_ct] LEFT JOIN \(table) AS [ferry_t] ON \(join.joined(separator: " AND "))) AS ferry_src
            """
        if let position, position.watermark != nil { sql += " WHERE " + after(position, layout: layout, statement: &statement) }
        sql += " ORDER BY \(layout.orderBy)"
        var collected = CopyTextRows()
        do {
            try await stream(sql, statement, layout: layout, deletionFlag: true) { batch in collected.append(batch) }
        } catch var error as FerryError where (error.underlying as? SQLServerError)?.number == 207 {
            // CHANGETABLE's rows carry the primary key only.
            error.fix = "with change_tracking, source.key must be the primary key of \(table) (\(keyColumns.joined(separator: ", ")) is not)"
            throw error
        }
        // Again after the read: a cleanup that ran while it did would have taken changes from under it unseen. The
        // cleanup only moves the minimum up, so a minimum still at or below `since` now means none was missed.
        try await checkRetention(table: table, since: since)
        let read = collected.droppingDeletionFlag()
        let page = min(limit, read.rowCount)
        rows.append(read.rows(0..<page))
        if read.rowCount > page {
            let ahead = TrackedAhead(
                after: Self.position(of: read, row: page - 1, layout: layout), schema: layout.schema,
                rows: read.rows(page..<read.rowCount), complete: read.rowCount < readLimit)
            state.trackedAhead.withLock { $0 = ahead }
        } else {
            state.trackedAhead.withLock { $0 = nil }
        }
        return nil
    }

    /// The next page of the rows read ahead, when `position` is where the last page handed out ended; nil (and the
    /// rows dropped) otherwise, or when fewer than a page are left of a read that did not reach the end.
    private func takeTrackedAhead(after position: SourcePosition, schema: SourceSchema, limit: Int, layout: Layout) -> CopyTextRows? {
        state.trackedAhead.withLock { slot in
            guard let ahead = slot, ahead.after == position, ahead.schema == schema,
                ahead.rows.rowCount >= limit || ahead.complete
            else {
                slot = nil
                return nil
            }
            let count = min(limit, ahead.rows.rowCount)
            let page = ahead.rows.rows(0..<count)
            if count < ahead.rows.rowCount {
                slot = TrackedAhead(
                    after: Self.position(of: page, row: count - 1, layout: layout), schema: schema,
                    rows: ahead.rows.rows(count..<ahead.rows.rowCount), complete: ahead.complete)
            } else {
                slot = nil
            }
            return page
        }
    }

    /// The position of row `index` of `rows` (columns in `layout.schema`'s order), as the producer takes it.
    static func position(of rows: CopyTextRows, row index: Int, layout: Layout) -> SourcePosition {
        let fields = rows.fields(ofRow: index)
        return SourcePosition(watermark: fields[layout.watermark], key: layout.keys.map { fields[$0] ?? "" })
    }

    /// Throws when Change Tracking is off for the table (or hidden from this login), or has cleaned up changes after
    /// `since` (the last version read whole; nil: from the start, which needs tracking on only).
    private func checkRetention(table: String, since: Int64?) async throws {
        var statement = Statement()
        let object = statement.bindText(table)
        let minimum = try await scalar("SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(\(object)))", statement)
        guard let minimum else {
            throw FerryError(
                .invalidInput, "Change Tracking is not enabled on \(displayName), or user `\(endpoint.user)` may not see it",
                fix: Self.enableChangeTracking(table: table, database: endpoint.database, user: endpoint.user))
        }
        if let since, since < Int64(minimum) {
            throw FerryError(
                .invalidInput,
                "\(displayName): Change Tracking has cleaned up changes this pipeline has not read (it read up to version \(since); the oldest kept is \(minimum)), deletes among them",
                fix: """
                    read the table again: `ferry pipeline reset PIPELINE`, then `ferry reconcile PIPELINE --repair` to mark deleted the rows \
                    gone meanwhile; keep Ferry's pauses shorter than the database's CHANGE_RETENTION
                    """)
        }
    }

    /// The statements that turn Change Tracking on for `table` (already quoted) and let `user` read it.
    package static func enableChangeTracking(table: String, database: String, user: String) -> String {
        """
        ALTER DATABASE \(SQLServerIdentifier.quote(database)) SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 7 DAYS, AUTO_CLEANUP = ON); \
        ALTER TABLE \(table) ENABLE CHANGE_TRACKING; GRANT VIEW CHANGE TRACKING ON \(table) TO \(SQLServerIdentifier.quote(user))
        """
    }

    package func readWindow(
        from lowerBound: String, below upperBound: String?, through: SourcePosition, after start: SourcePosition?, changedSince mark: String?,
        tailReads: [TailRead], limit: Int, schema: SourceSchema, into rows: inout CopyTextRows
    ) async throws {
        let layout = try await layoutRefreshing(schema)
        guard through.watermark != nil else { return }
        var statement = Statement()
        let top = statement.bind(limit)
        let watermark = Self.column(layout.watermarkName)
        var conditions = ["\(watermark) >= \(statement.bind(lowerBound, as: layout.watermarkType))"]
        if let upperBound { conditions.append("\(watermark) < \(statement.bind(upperBound, as: layout.watermarkType))") }
        conditions.append(atOrBefore(through, layout: layout, statement: &statement))
        if let start, start.watermark != nil { conditions.append(after(start, layout: layout, statement: &statement)) }
        let sql =
            "SELECT TOP (\(top)) \(layout.selectWithExact) FROM \(fromClause) WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(layout.orderBy)"
        try await run(sql, statement, layout: layout, exact: layout.exactWatermark, into: &rows)
    }

    /// SQL Server's row versions (`rowversion`) are not transaction ids a later read could compare: every window
    /// re-read reads the whole window.
    package func changeMark() async throws -> String? { nil }

    package func watermarks(_ watermark: String, minus amounts: [Duration]) async throws -> [String]? {
        let layout = try await layout()
        let type = layout.watermarkType.base
        guard ["datetime", "datetime2", "smalldatetime", "date", "datetimeoffset"].contains(type), let value = SQLServerTimeText(watermark) else {
            return nil
        }
        return amounts.map { amount in
            let (seconds, attoseconds) = amount.components
            let units = seconds * 10_000_000 + attoseconds / 100_000_000_000
            let moved = value.adding(units: -Int(units))
            // A date less a part of a day is the day before (as PostgreSQL's date - interval, cast back to date).
            return moved.text(digits: layout.exactWatermark ? 7 : 6)
        }
    }

    package func readNullWatermarks(afterKey: [String]?, limit: Int, schema: SourceSchema, into rows: inout CopyTextRows) async throws {
        try await readKeyOrdered(afterKey: afterKey, limit: limit, nullWatermarksOnly: true, schema: schema, into: &rows)
    }

    package func readByKey(afterKey: [String]?, limit: Int, schema: SourceSchema, into rows: inout CopyTextRows) async throws {
        try await readKeyOrdered(afterKey: afterKey, limit: limit, nullWatermarksOnly: false, schema: schema, into: &rows)
    }

    private func readKeyOrdered(afterKey: [String]?, limit: Int, nullWatermarksOnly: Bool, schema: SourceSchema, into rows: inout CopyTextRows)
        async throws
    {
        let layout = try await layoutRefreshing(schema)
        var statement = Statement()
        let top = statement.bind(limit)
        var conditions: [String] = []
        if nullWatermarksOnly { conditions.append("\(Self.column(layout.watermarkName)) IS NULL") }
        if let afterKey { conditions.append(keysAfter(afterKey, layout: layout, statement: &statement)) }
        var sql = "SELECT TOP (\(top)) \(layout.select) FROM \(fromClause)"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY \(layout.keyOrder)"
        try await run(sql, statement, layout: layout, into: &rows)
    }

    package func countNullWatermarks() async throws -> Int {
        let layout = try await layout()
        return try await scalar("SELECT COUNT_BIG(*) FROM \(fromClause) WHERE \(Self.column(layout.watermarkName)) IS NULL", Statement()) ?? 0
    }

    /// The rows the catalog counts for a table or indexed view (`sys.partitions`), else a count.
    package func estimatedRowCount() async throws -> Int? {
        if case .table(let name) = relation {
            var statement = Statement()
            let object = statement.bindText(SQLServerIdentifier.qualified(name))
            let sql = "SELECT SUM([p].[rows]) FROM sys.partitions AS [p] WHERE [p].[object_id] = OBJECT_ID(\(object)) AND [p].[index_id] IN (0, 1)"
            if let rows = try await scalar(sql, statement) { return rows }
        }
        return try await scalar("SELECT COUNT_BIG(*) FROM \(fromClause)", Statement())
    }

    // MARK: Reconciliation

    package func keyBoundaries(parts: Int, in range: KeyRange) async throws -> [[String]] {
        let layout = try await layout()
        var statement = Statement()
        let names = layout.keys.map { SQLServerIdentifier.quote(layout.schema.columns[$0].name) }
        let inner = layout.keys.map {
            Self.column(layout.schema.columns[$0].name) + " AS " + SQLServerIdentifier.quote(layout.schema.columns[$0].name)
        }
        let condition = rangeCondition(range, layout: layout, statement: &statement)
        let count = statement.bind(max(parts, 1))
        let sql = """
            SELECT \(names.joined(separator: ", ")) FROM (
              SELECT \(inner.joined(separator: ", ")), ROW_NUMBER() OVER (ORDER BY \(layout.keyOrder)) AS ferry_rn, COUNT_BIG(*) OVER () AS ferry_total
              FROM \(fromClause) WHERE \(condition)) AS numbered
            WHERE ferry_rn % (CASE WHEN ferry_total / \(count) > 1 THEN ferry_total / \(count) ELSE 1 END) = 0 AND ferry_rn < ferry_total
            ORDER BY ferry_rn
            """
        var collected = CopyTextRows()
        try await run(sql, statement, layout: nil, into: &collected)
        return (0..<collected.rowCount).map { collected.fields(ofRow: $0).map { $0 ?? "" } }
    }

    package func digest(of range: KeyRange, mirrorTypes: [String?]) async throws -> RangeDigest {
        var digest = RangeDigest(count: 0, hash: 0)
        try await hashRange(range, mirrorTypes: mirrorTypes) { _, hashes in
            digest.count += hashes.count
            for hash in hashes { digest.hash ^= hash }
        }
        return digest
    }

    package func rowHashes(in range: KeyRange, mirrorTypes: [String?]) async throws -> [(key: [String], hash: Int64)] {
        let layout = try await layout()
        var result: [(key: [String], hash: Int64)] = []
        try await hashRange(range, mirrorTypes: mirrorTypes) { rows, hashes in
            for (index, hash) in hashes.enumerated() {
                let fields = rows.fields(ofRow: index)
                result.append((layout.keys.map { fields[$0] ?? "" }, hash))
            }
        }
        return result
    }

    /// Reads `range` batch by batch and hashes each batch in the target's PostgreSQL.
    private func hashRange(_ range: KeyRange, mirrorTypes: [String?], _ body: (CopyTextRows, [Int64]) -> Void) async throws {
        let layout = try await layout()
        let types = layout.schema.columns.enumerated().map { index, column in (index < mirrorTypes.count ? mirrorTypes[index] : nil) ?? column.type }
        var statement = Statement()
        let sql =
            "SELECT \(layout.select) FROM \(fromClause) WHERE \(rangeCondition(range, layout: layout, statement: &statement)) ORDER BY \(layout.keyOrder)"
        try await stream(sql, statement, layout: layout) { batch in
            let hashes = try await hasher.hashes(of: batch, types: types)
            body(batch, hashes)
        }
    }

    package func readRange(_ range: KeyRange, schema: SourceSchema, into rows: inout CopyTextRows) async throws {
        let layout = try await layoutRefreshing(schema)
        var statement = Statement()
        let sql =
            "SELECT \(layout.select) FROM \(fromClause) WHERE \(rangeCondition(range, layout: layout, statement: &statement)) ORDER BY \(layout.keyOrder)"
        try await run(sql, statement, layout: layout, into: &rows)
    }

    package func readKeys(_ keys: [[String]], schema: SourceSchema, into rows: inout CopyTextRows) async throws {
        guard !keys.isEmpty else { return }
        let layout = try await layoutRefreshing(schema)
        // In chunks of at most `parameterLimit` values, each chunk ordered by key.
        let perChunk = max(1, Self.parameterLimit / max(layout.keys.count, 1))
        var start = 0
        while start < keys.count {
            let chunk = keys[start..<min(keys.count, start + perChunk)]
            start += perChunk
            var statement = Statement()
            let matches = chunk.map { key -> String in
                let parts = layout.keys.enumerated().map { position, index -> String in
                    let value = position < key.count ? key[position] : ""
                    return "\(Self.column(layout.schema.columns[index].name)) = \(statement.bind(value, as: layout.types[index]))"
                }
                return "(" + parts.joined(separator: " AND ") + ")"
            }
            let sql = "SELECT \(layout.select) FROM \(fromClause) WHERE \(matches.joined(separator: " OR ")) ORDER BY \(layout.keyOrder)"
            try await run(sql, statement, layout: layout, into: &rows)
        }
    }

    package func close() async {
        await session.close()
        await hasher.close()
    }

    // MARK: Conditions

    /// Rows after `position` in (watermark, key) order.
    private func after(_ position: SourcePosition, layout: Layout, statement: inout Statement) -> String {
        let watermark = Self.column(layout.watermarkName)
        var value = position.watermark ?? ""
        if layout.exactWatermark {
            guard let exact = state.exact.withLock({ $0[position] }) else {
                // The exact value is unknown: every row of the position's microsecond is read again.
                return "\(watermark) >= \(statement.bind(value, as: layout.watermarkType))"
            }
            value = exact
        }
        return Self.compare(
            [layout.watermark] + layout.keys, [value] + position.key, layout: layout, strict: ">", last: ">", statement: &statement)
    }

    /// Rows at or before `position` in (watermark, key) order.
    private func atOrBefore(_ position: SourcePosition, layout: Layout, statement: inout Statement) -> String {
        let watermark = Self.column(layout.watermarkName)
        var value = position.watermark ?? ""
        if layout.exactWatermark {
            guard let exact = state.exact.withLock({ $0[position] }) else {
                // Every row of the position's microsecond: a window re-read may read a few rows more, never fewer.
                let next = SQLServerTimeText(value)?.adding(units: 10).text(digits: 7) ?? value
                return "\(watermark) < \(statement.bind(next, as: layout.watermarkType))"
            }
            value = exact
        }
        return Self.compare(
            [layout.watermark] + layout.keys, [value] + position.key, layout: layout, strict: "<", last: "<=", statement: &statement)
    }

    private func keysAfter(_ key: [String], layout: Layout, statement: inout Statement) -> String {
        Self.compare(layout.keys, key, layout: layout, strict: ">", last: ">", statement: &statement)
    }

    private func rangeCondition(_ range: KeyRange, layout: Layout, statement: inout Statement) -> String {
        var conditions = ["1 = 1"]
        if let after = range.after {
            conditions.append(Self.compare(layout.keys, after, layout: layout, strict: ">", last: ">", statement: &statement))
        }
        if let through = range.through {
            conditions.append(Self.compare(layout.keys, through, layout: layout, strict: "<", last: "<=", statement: &statement))
        }
        return conditions.joined(separator: " AND ")
    }

    /// `(c1, c2, …) OP (v1, v2, …)` written out: `c1 >= v1 AND (c1 > v1 OR (c1 = v1 AND (c2 > v2 OR …)))`, the last
    /// column compared with `last`; the leading bound lets the server seek an index on the columns.
    static func compare(
        _ columns: [Int], _ values: [String], layout: Layout, strict: String, last: String, statement: inout Statement
    ) -> String {
        var bound: [String] = []
        for (position, index) in columns.enumerated() {
            let value = position < values.count ? values[position] : ""
            bound.append(statement.bind(value, as: layout.types[index]))
        }
        let names = columns.map { column(layout.schema.columns[$0].name) }
        var expression = "\(names[names.count - 1]) \(last) \(bound[names.count - 1])"
        for position in stride(from: names.count - 2, through: 0, by: -1) {
            expression = "\(names[position]) \(strict) \(bound[position]) OR (\(names[position]) = \(bound[position]) AND (\(expression)))"
        }
        guard names.count > 1 else { return "(\(expression))" }
        return "(\(names[0]) \(strict)= \(bound[0]) AND (\(expression)))"
    }

    // MARK: Running statements

    /// A statement's parameters, named `@p1`, `@p2`, … as they are bound.
    struct Statement {
        var parameters: [SQLServerParameter] = []

        /// A value for a comparison with a column of `type`. An empty string is written as `N''`: DB-Library sends an
        /// empty parameter as NULL, which would compare as unknown.
        mutating func bind(_ value: String, as type: SQLServerColumnType) -> String {
            if value.isEmpty, ["char", "nchar", "varchar", "nvarchar", "text", "ntext", "sysname"].contains(type.base) { return "N''" }
            let name = "@p\(parameters.count + 1)"
            let (declaration, expression) = type.parameter(name)
            parameters.append(SQLServerParameter(type.parameterText(value), as: declaration))
            return expression
        }

        mutating func bind(_ value: Int) -> String {
            parameters.append(SQLServerParameter(String(value), as: "bigint"))
            return "@p\(parameters.count)"
        }

        mutating func bindText(_ value: String) -> String {
            parameters.append(SQLServerParameter(value, as: "nvarchar(4000)"))
            return "@p\(parameters.count)"
        }
    }

    /// Runs `sql` and appends its rows. With `layout`, the result must have its columns (in order, of their kinds):
    /// otherwise the source changed under the cached schema, and ``SourceSchemaChanged`` is thrown with nothing
    /// appended. With `exact`, the last column is the watermark at full precision: stripped, and remembered for the
    /// last row's position.
    private func run(_ sql: String, _ statement: Statement, layout: Layout?, exact: Bool = false, into rows: inout CopyTextRows) async throws {
        var collected = CopyTextRows()
        try await stream(sql, statement, layout: layout, exact: exact) { batch in collected.append(batch) }
        guard exact, let layout else {
            rows.append(collected)
            return
        }
        let (stripped, last) = collected.droppingLastField()
        if let last, stripped.rowCount > 0 {
            let fields = stripped.fields(ofRow: stripped.rowCount - 1)
            let position = SourcePosition(watermark: fields[layout.watermark], key: layout.keys.map { fields[$0] ?? "" })
            state.exact.withLock { remembered in
                if remembered.count >= 1_024 { remembered.removeAll(keepingCapacity: true) }
                remembered[position] = last
            }
        }
        rows.append(stripped)
    }

    /// Streams the rows of `sql` in batches. With `layout`, the result must have its columns (and with `exact`, the
    /// watermark once more; with `deletionFlag`, an int saying whether the row was deleted).
    private func stream(
        _ sql: String, _ statement: Statement, layout: Layout?, exact: Bool = false, deletionFlag: Bool = false,
        _ body: (CopyTextRows) async throws -> Void
    ) async throws {
        let expected = layout.map { layout in
            layout.types.map(\.kind) + (exact ? [layout.watermarkType.kind] : []) + (deletionFlag ? [SQLServerText.Kind.int] : [])
        }
        let fullPrecision: Set<Int> = exact ? [layout?.types.count ?? 0] : []
        do {
            try await guarded {
                try await session.withConnection { connection in
                    try await connection.query(
                        sql, parameters: statement.parameters, batchRows: Self.batchRows, fullPrecision: fullPrecision,
                        columns: { described in
                            if let expected, described.map(\.kind) != expected { throw ColumnsDiffer(described: described) }
                        }, body)
                }
            }
        } catch let differ as ColumnsDiffer {
            let current = try await describe()
            if let layout, current != layout.schema { throw SourceSchemaChanged(current: current) }
            let kinds = differ.described.map { "\($0.name): \($0.kind)" }.joined(separator: ", ")
            throw FerryError(
                .unsupported, "\(displayName) sends its columns as other types than it describes (\(kinds))",
                fix: "use TDS 7.3 or later (7.2 sends date and time types as text)")
        } catch let error as FerryError {
            guard let layout, let number = (error.underlying as? SQLServerError)?.number, [207, 208, 4413].contains(number) else { throw error }
            // A column or the view itself changed under the cached column list.
            let current = try await describe()
            if current != layout.schema { throw SourceSchemaChanged(current: current) }
            throw error
        }
    }

    private func scalar(_ sql: String, _ statement: Statement) async throws -> Int? {
        var value: Int?
        try await stream(sql, statement, layout: nil) { rows in
            if value == nil, rows.rowCount > 0 { value = rows.fields(ofRow: 0).first.flatMap { $0 }.flatMap { Int($0) } }
        }
        return value
    }

    /// Runs `body`, naming the source in a SQL Server error.
    private func guarded<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch var error as FerryError {
            if error.code == .server || error.code == .permission { error.message = "reading \(displayName): " + error.message }
            throw error
        }
    }

    private struct ColumnsDiffer: Error {
        var described: [SQLServerColumn]
    }
}

extension SQLServerColumnType {
    /// How DB-Library reports a column of this type (``SQLServerText/Kind``).
    var kind: SQLServerText.Kind {
        switch base {
        case "bit": .bit
        case "tinyint": .tinyint
        case "smallint": .smallint
        case "int": .int
        case "bigint": .bigint
        case "real": .real
        case "float": timeScaleOrPrecision <= 24 ? .real : .float
        case "money": .money
        case "smallmoney": .smallmoney
        case "decimal", "numeric": .decimal
        case "binary", "varbinary", "image", "timestamp", "rowversion": .binary
        case "uniqueidentifier": .uniqueidentifier
        case "datetime": .datetime
        case "smalldatetime": .smalldatetime
        case "date": .date
        case "time": .time
        case "datetime2": .datetime2
        case "datetimeoffset": .datetimeoffset
        default: .text
        }
    }

    private var timeScaleOrPrecision: Int { arguments.first.flatMap { Int($0) } ?? 53 }
}
