package import FerryCore
package import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// A PostgreSQL table, view or query as a sync source.
///
/// Reads select every column `::text` (so values arrive exactly as PostgreSQL prints them, full precision) and
/// page with keyset conditions on `(watermark, key)`; for large tables an index on those columns keeps every
/// page an index range scan.
package struct PostgresTableSource: TableSource {
    package enum Relation: Sendable {
        /// `name` or `schema.name`.
        case table(String)
        case query(String)
    }

    let session: PostgresSession
    let relation: Relation
    let keyColumns: [String]
    let watermarkColumn: String
    let excludedColumns: Set<String>
    let logger: Logger
    private let cachedLayout = LayoutCache()
    /// Whether the relation's rows carry `xmin` (nil until ``changeMark()`` asks).
    private let rowVersions = RowVersionsCache()

    final class RowVersionsCache: Sendable {
        let value = Mutex<Bool?>(nil)
    }

    /// The layout of the last `describe()`; reads use it so they cost no catalog query. `describe()` refreshes it.
    final class LayoutCache: Sendable {
        let value = Mutex<Layout?>(nil)
    }

    package init(
        endpoint: PostgresEndpoint,
        configurationKey: String,
        relation: Relation,
        key: [String],
        watermark: String,
        excluding excluded: [String] = [],
        logger: Logger
    ) {
        self.session = PostgresSession(endpoint: endpoint, key: configurationKey, logger: logger)
        self.relation = relation
        self.keyColumns = key
        self.watermarkColumn = watermark
        self.excludedColumns = Set(excluded.map { $0.lowercased() })
        self.logger = logger
    }

    /// What the relation is called in messages.
    var displayName: String {
        switch relation {
        case .table(let name): name
        case .query: "the pipeline's query"
        }
    }

    /// The relation under the alias `ferry_src`. Conditions and ORDER BY name `ferry_src."col"`: an unqualified
    /// name would mean the `col::text` output column, and sorting by text would skip the (watermark, key) index.
    var fromClause: String {
        switch relation {
        case .table(let name): Self.quoteQualified(name) + " AS ferry_src"
        case .query(let sql): "(\(sql)) AS ferry_src"
        }
    }

    /// `ferry_src."name"`.
    static func column(_ name: String) -> String { "ferry_src." + SQLIdentifier.quote(name) }

    package static func quoteQualified(_ name: String) -> String {
        name.split(separator: ".", omittingEmptySubsequences: false).map { SQLIdentifier.quote(String($0)) }.joined(separator: ".")
    }

    // MARK: Schema

    package func describe() async throws -> SourceSchema {
        let schema = try await session.withConnection { connection in try await currentSchema(connection) }
        if case .table(let name) = relation, schema.columns.isEmpty {
            throw FerryError(
                .invalidInput,
                "source table \"\(name)\" does not exist on \(session.endpoint.address)/\(session.endpoint.database) (or has no columns visible to \"\(session.endpoint.user)\")",
                fix: "check the pipeline's source.table (schema.name) and the user's privileges"
            )
        }
        cachedLayout.value.withLock { $0 = nil }
        let layout = try layout(for: schema)
        cachedLayout.value.withLock { $0 = layout }
        return schema
    }

    /// The relation's columns now, without the excluded ones (a query's through a temporary view, inside the
    /// caller's transaction when there is one).
    private func currentSchema(_ connection: PostgresSessionConnection) async throws -> SourceSchema {
        let all: [SourceColumn]
        switch relation {
        case .table(let name):
            all = try await Self.columns(of: Self.quoteQualified(name), connection: connection, logger: logger)
        case .query(let sql):
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE TEMP VIEW ferry_describe AS \(sql)"), logger: logger)
            all = try await Self.columns(of: "ferry_describe", connection: connection, logger: logger)
            try await connection.query("DROP VIEW ferry_describe", logger: logger)
        }
        return SourceSchema(columns: all.filter { !excludedColumns.contains($0.name.lowercased()) })
    }

    /// How rows of `schema` are read: its columns in order, and the key and watermark among them.
    func layout(for schema: SourceSchema) throws -> Layout {
        if let cached = cachedLayout.value.withLock({ $0 }), cached.schema == schema { return cached }
        let positions = try schema.positions(key: keyColumns, watermark: watermarkColumn, in: displayName)
        return Layout(
            schema: schema,
            select: schema.columns.map { "\(Self.column($0.name))::text" }.joined(separator: ", "),
            watermark: schema.columns[positions.watermark],
            keys: positions.key.map { schema.columns[$0] }
        )
    }

    static func columns(of relation: String, connection: PostgresSessionConnection, logger: Logger) async throws -> [SourceColumn] {
        let rows = try await connection.query(
            """
            SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass(\(relation)) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            logger: logger
        )
        var columns: [SourceColumn] = []
        for try await (name, type) in rows.decode((String, String).self) { columns.append(SourceColumn(name: name, type: type)) }
        return columns
    }

    // MARK: Reading

    /// The resolved names and types of the columns this source reads, cached per call site by callers.
    struct Layout {
        let schema: SourceSchema
        let select: String
        let watermark: SourceColumn
        let keys: [SourceColumn]

        var orderBy: String { ([watermark] + keys).map { column($0.name) }.joined(separator: ", ") }
        var keyOrder: String { keys.map { column($0.name) }.joined(separator: ", ") }
        var positionTuple: String { "(" + ([watermark] + keys).map { column($0.name) }.joined(separator: ", ") + ")" }
        var keyTuple: String { "(" + keys.map { column($0.name) }.joined(separator: ", ") + ")" }
    }

    func layout() async throws -> Layout {
        if let layout = cachedLayout.value.withLock({ $0 }) { return layout }
        _ = try await describe()
        return cachedLayout.value.withLock { $0! }
    }

    /// Appends `($n::type, …)` placeholders for `values` to the query and binds them.
    static func tuple(_ values: [String], types: [String], binds: inout PostgresBindings) -> String {
        var parts: [String] = []
        for (value, type) in zip(values, types) {
            binds.append(value)
            parts.append("$\(binds.count)::\(type)")
        }
        return "(" + parts.joined(separator: ", ") + ")"
    }

    /// Where the relation's rows carry `xmin`, each row also brings the read's snapshot's oldest running transaction
    /// (one more column, stripped here): a mark no later than the read's snapshot.
    @discardableResult
    package func readChanges(after position: SourcePosition?, limit: Int, schema: SourceSchema, into rows: inout CopyTextRows) async throws
        -> String?
    {
        let layout = try layout(for: schema)
        let withMark = rowVersions.value.withLock { $0 } == true
        var binds = PostgresBindings()
        var sql = "SELECT \(layout.select)\(withMark ? ", pg_snapshot_xmin(pg_current_snapshot())::text" : "") FROM \(fromClause)"
        sql += " WHERE \(Self.column(layout.watermark.name)) IS NOT NULL"
        if let position, let watermark = position.watermark {
            let types = ([layout.watermark] + layout.keys).map(\.type)
            sql += " AND \(layout.positionTuple) > " + Self.tuple([watermark] + position.key, types: types, binds: &binds)
        }
        binds.append(limit)
        sql += " ORDER BY \(layout.orderBy) LIMIT $\(binds.count)"
        return try await run(sql, binds, into: &rows, trailingMark: withMark, verifying: schema)
    }

    package func readWindow(
        from lowerBound: String, below upperBound: String?, through: SourcePosition, after: SourcePosition?, changedSince mark: String?,
        tailReads: [TailRead], limit: Int, schema: SourceSchema, into rows: inout CopyTextRows
    ) async throws {
        let layout = try layout(for: schema)
        guard let upper = through.watermark else { return }
        let types = ([layout.watermark] + layout.keys).map(\.type)
        var binds = PostgresBindings()
        binds.append(lowerBound)
        var sql = "SELECT \(layout.select) FROM \(fromClause) WHERE \(Self.column(layout.watermark.name)) >= $1::\(layout.watermark.type)"
        if let upperBound {
            binds.append(upperBound)
            sql += " AND \(Self.column(layout.watermark.name)) < $\(binds.count)::\(layout.watermark.type)"
        }
        sql += " AND \(layout.positionTuple) <= " + Self.tuple([upper] + through.key, types: types, binds: &binds)
        if let after, let watermark = after.watermark {
            sql += " AND \(layout.positionTuple) > " + Self.tuple([watermark] + after.key, types: types, binds: &binds)
        }
        if let mark, let oldest = Int64(mark) {
            // Only row versions written by a transaction no older than the oldest one running at the mark (or by one
            // of its subtransactions, whose ids are larger): every other version committed before the mark, so the
            // re-read that took it, or a poll after it, saw it. "No older" is PostgreSQL's own modulo-2^32 order of
            // transaction ids, which `age` follows (live versions are less than 2^31 transactions old; a frozen
            // version is infinitely old). The mark's age is computed once (a subquery); comparing ages costs half
            // the scan that converting every `xmin` to a number did.
            binds.append(String(oldest % 4_294_967_296))
            let markAge = "(SELECT age($\(binds.count)::text::xid))"
            let distance = "(\(markAge)::int8 - age(ferry_src.xmin))"
            sql += " AND age(ferry_src.xmin) <= \(markAge)"
            // Leave out versions a tail read saw (``TailRead``): written by a transaction that ended before the mark
            // of the first tail read after it, and ordered after where that read began. The first such read is the
            // first whose mark exceeds the version's transaction (`width_bucket` over the ascending marks, as
            // distances from `oldest`); only the watermark is compared (a version on the read's own watermark is
            // kept), as the watermark type's array so that picking an element is cheap. The array is converted in a
            // subquery, which runs once: a cast from text is not constant-folded (it depends on settings), so in the
            // condition itself it would run for every row.
            var marks: [Int64] = []
            var watermarks: [String] = []
            for read in tailReads {
                guard let value = Int64(read.mark), let watermark = read.position.watermark, value - oldest > (marks.last ?? 0) else { continue }
                marks.append(value - oldest)
                watermarks.append(watermark)
            }
            if !marks.isEmpty {
                binds.append(marks)
                let bucket = "width_bucket(\(distance), $\(binds.count)::int8[])"
                binds.append(marks.count)
                let count = binds.count
                binds.append(watermarks)
                sql +=
                    " AND (\(bucket) >= $\(count)::int OR \(Self.column(layout.watermark.name)) <= (SELECT $\(binds.count)::text[]::\(layout.watermark.type)[])[\(bucket) + 1])"
            }
        }
        binds.append(limit)
        sql += " ORDER BY \(layout.orderBy) LIMIT $\(binds.count)"
        try await run(sql, binds, into: &rows, verifying: schema)
    }

    /// The oldest transaction still running (`pg_snapshot_xmin`), for a plain, partitioned or materialized table on
    /// PostgreSQL 13 or later, whose row versions carry the transaction that wrote them (`xmin`).
    package func changeMark() async throws -> String? {
        guard case .table(let name) = relation, rowVersions.value.withLock({ $0 }) != false else { return nil }
        return try await session.withConnection { connection -> String? in
            if rowVersions.value.withLock({ $0 }) == nil {
                let kind = try await connection.query(
                    """
                    SELECT current_setting('server_version_num')::int >= 130000
                      AND coalesce((SELECT relkind IN ('r', 'p', 'm') FROM pg_class WHERE oid = to_regclass(\(Self.quoteQualified(name)))), false)
                    """, logger: logger)
                var versioned = false
                for try await value in kind.decode(Bool.self) { versioned = value }
                rowVersions.value.withLock { $0 = versioned }
                guard versioned else { return nil }
            }
            let rows = try await connection.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", logger: logger)
            for try await mark in rows.decode(String.self) { return mark }
            return nil
        }
    }

    package func watermarks(_ watermark: String, minus amounts: [Duration]) async throws -> [String]? {
        let layout = try await layout()
        let type = layout.watermark.type.lowercased()
        guard type.hasPrefix("timestamp") || type == "date" || type.hasPrefix("time") else { return nil }
        var binds = PostgresBindings()
        binds.append(watermark)
        binds.append(amounts.map { Double(Int64($0.seconds * 1_000_000)) })
        return try await session.withConnection { connection in
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT ($1::\(layout.watermark.type) - make_interval(secs => amount / 1000000))::\(layout.watermark.type)::text
                        FROM unnest($2::float8[]) WITH ORDINALITY AS amounts(amount, n) ORDER BY n
                        """,
                    binds: binds),
                logger: logger)
            var values: [String] = []
            for try await value in rows.decode(String.self) { values.append(value) }
            return values.count == amounts.count ? values : nil
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
        let layout = try layout(for: schema)
        var binds = PostgresBindings()
        var conditions: [String] = []
        if nullWatermarksOnly { conditions.append("\(Self.column(layout.watermark.name)) IS NULL") }
        if let afterKey {
            conditions.append("\(layout.keyTuple) > " + Self.tuple(afterKey, types: layout.keys.map(\.type), binds: &binds))
        }
        var sql = "SELECT \(layout.select) FROM \(fromClause)"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        binds.append(limit)
        sql += " ORDER BY \(layout.keyOrder) LIMIT $\(binds.count)"
        try await run(sql, binds, into: &rows, verifying: schema)
    }

    package func countNullWatermarks() async throws -> Int {
        let layout = try await layout()
        return try await scalarInt("SELECT count(*) FROM \(fromClause) WHERE \(Self.column(layout.watermark.name)) IS NULL")
    }

    package func estimatedRowCount() async throws -> Int? {
        guard case .table(let name) = relation else { return nil }
        let estimate = try await session.withConnection { connection in
            let rows = try await connection.query(
                "SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass(\(Self.quoteQualified(name)))", logger: logger)
            for try await value in rows.decode(Int64.self) { return value }
            return -1
        }
        if estimate >= 0 { return Int(estimate) }
        return try await scalarInt("SELECT count(*) FROM \(fromClause)")
    }

    // MARK: Reconciliation

    package func keyBoundaries(parts: Int, in range: KeyRange) async throws -> [[String]] {
        let layout = try await layout()
        let keys = layout.keys.map { SQLIdentifier.quote($0.name) + "::text" }.joined(separator: ", ")
        let inner = layout.keys.map { Self.column($0.name) + " AS " + SQLIdentifier.quote($0.name) }.joined(separator: ", ")
        var binds = PostgresBindings()
        let condition = Self.rangeCondition(range, layout: layout, binds: &binds)
        // In the keys' own order (ferry_rn), never the text output's: "10" < "9" made ranges overlap.
        let sql = """
            SELECT \(keys) FROM (
              SELECT \(inner), row_number() OVER (ORDER BY \(layout.keyOrder)) AS ferry_rn, count(*) OVER () AS ferry_total
              FROM \(fromClause) WHERE \(condition)) AS numbered
            WHERE ferry_rn % greatest(ferry_total / \(max(parts, 1)), 1) = 0 AND ferry_rn < ferry_total ORDER BY ferry_rn
            """
        var collected = CopyTextRows()
        try await run(sql, binds, into: &collected)
        return (0..<collected.rowCount).map { collected.fields(ofRow: $0).map { $0 ?? "" } }
    }

    package func rowHashes(in range: KeyRange, mirrorTypes: [String?]) async throws -> [(key: [String], hash: Int64)] {
        let layout = try await layout()
        var binds = PostgresBindings()
        let keys = layout.keys.map { "\(Self.column($0.name))::text" }.joined(separator: ", ")
        let sql =
            "SELECT \(keys), (\(Self.rowHash(layout.schema, mirrorTypes: mirrorTypes)))::text FROM \(fromClause) WHERE \(Self.rangeCondition(range, layout: layout, binds: &binds)) ORDER BY \(layout.keyOrder)"
        var collected = CopyTextRows()
        try await run(sql, binds, into: &collected)
        return (0..<collected.rowCount).map { index in
            let fields = collected.fields(ofRow: index)
            return (fields.dropLast().map { $0 ?? "" }, Int64(fields.last.flatMap { $0 } ?? "0") ?? 0)
        }
    }

    package func digest(of range: KeyRange, mirrorTypes: [String?]) async throws -> RangeDigest {
        let layout = try await layout()
        var binds = PostgresBindings()
        let whereClause = Self.rangeCondition(range, layout: layout, binds: &binds)
        let sql =
            "SELECT count(*), coalesce(bit_xor(\(Self.rowHash(layout.schema, mirrorTypes: mirrorTypes))), 0) FROM \(fromClause) WHERE \(whereClause)"
        return try await session.withConnection { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await (count, hash) in rows.decode((Int64, Int64).self) { return RangeDigest(count: Int(count), hash: hash) }
            return RangeDigest(count: 0, hash: 0)
        }
    }

    package func readRange(_ range: KeyRange, schema: SourceSchema, into rows: inout CopyTextRows) async throws {
        let layout = try layout(for: schema)
        var binds = PostgresBindings()
        let sql =
            "SELECT \(layout.select) FROM \(fromClause) WHERE \(Self.rangeCondition(range, layout: layout, binds: &binds)) ORDER BY \(layout.keyOrder)"
        try await run(sql, binds, into: &rows, verifying: schema)
    }

    package func readKeys(_ keys: [[String]], schema: SourceSchema, into rows: inout CopyTextRows) async throws {
        guard !keys.isEmpty else { return }
        let layout = try layout(for: schema)
        var binds = PostgresBindings()
        var arrays: [String] = []
        for (index, column) in layout.keys.enumerated() {
            binds.append(keys.map { index < $0.count ? $0[index] : "" })
            arrays.append("$\(binds.count)::text[]::\(column.type)[]")
        }
        let sql =
            "SELECT \(layout.select) FROM \(fromClause) WHERE \(layout.keyTuple) IN (SELECT * FROM unnest(\(arrays.joined(separator: ", ")))) ORDER BY \(layout.keyOrder)"
        try await run(sql, binds, into: &rows, verifying: schema)
    }

    /// The hash both sides of a reconciliation compute per row: values as text (after conversion to the mirror's
    /// type), NULL as a separate marker, joined with a unit separator, through `hashtextextended`.
    package static func rowHash(_ schema: SourceSchema, mirrorTypes: [String?]) -> String {
        let parts = schema.columns.enumerated().map { index, column -> String in
            let quoted = Self.column(column.name)
            let value = (index < mirrorTypes.count ? mirrorTypes[index] : nil).map { "\(quoted)::\($0)::text" } ?? "\(quoted)::text"
            return "coalesce(\(value), E'\\x1e')"
        }
        return "hashtextextended(concat_ws(E'\\x1f', \(parts.joined(separator: ", "))), 0)"
    }

    static func rangeCondition(_ range: KeyRange, layout: Layout, binds: inout PostgresBindings) -> String {
        var conditions = ["true"]
        let types = layout.keys.map(\.type)
        if let after = range.after { conditions.append("\(layout.keyTuple) > " + tuple(after, types: types, binds: &binds)) }
        if let through = range.through { conditions.append("\(layout.keyTuple) <= " + tuple(through, types: types, binds: &binds)) }
        return conditions.joined(separator: " AND ")
    }

    package func close() async {
        await session.close()
    }

    // MARK: Helpers

    /// Runs `sql` and appends its rows; with `trailingMark`, the last column of each row is not a row field: returns it
    /// (from the first row).
    ///
    /// `verifying` a schema, the read and a look at the relation's columns share a transaction: the read's lock on
    /// the relation (held to the end) keeps out any `ALTER TABLE` from the moment it began, so the columns seen
    /// after it are those the rows were read with. When they are not `schema`'s, nothing is returned and
    /// ``SourceSchemaChanged`` thrown; so too when the read failed because a column it names is gone or changed.
    @discardableResult
    private func run(
        _ sql: String, _ binds: PostgresBindings, into rows: inout CopyTextRows, trailingMark: Bool = false, verifying schema: SourceSchema? = nil
    ) async throws -> String? {
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        let start = rows.rowCount
        do {
            let collector = RowCollector()
            swap(&collector.rows, &rows)
            defer { swap(&collector.rows, &rows) }
            guard let schema else {
                try await session.withConnection { connection in try await collect(query, trailingMark: trailingMark, into: collector, connection) }
                return collector.mark
            }
            do {
                let current = try await session.withTransaction { connection in
                    try await collect(query, trailingMark: trailingMark, into: collector, connection)
                    return try await currentSchema(connection)
                }
                guard current == schema else { throw SourceSchemaChanged(current: current) }
            } catch let error where PostgresDiagnosis.sqlState(of: error)?.hasPrefix("42") == true {
                // An undefined column or operator: the relation changed under the cached column list.
                let current = try await session.withConnection { connection in try await currentSchema(connection) }
                if current != schema { throw SourceSchemaChanged(current: current) }
                throw error
            }
            return collector.mark
        } catch let changed as SourceSchemaChanged {
            rows = rows.rowCount > start ? rows.rows(0..<start) : rows
            throw changed
        } catch let error as FerryError {
            throw error
        } catch {
            throw describe(error)
        }
    }

    private func collect(_ query: PostgresQuery, trailingMark: Bool, into collector: RowCollector, _ connection: PostgresSessionConnection)
        async throws
    {
        try await connection.forEachRow(query, logger: logger) { row in
            collector.rows.beginRow()
            if trailingMark {
                let fields = row.count - 1
                var index = 0
                for cell in row {
                    if index < fields {
                        collector.rows.appendField(cell.bytes)
                    } else if collector.mark == nil, let bytes = cell.bytes {
                        collector.mark = String(buffer: bytes)
                    }
                    index += 1
                }
            } else {
                for cell in row { collector.rows.appendField(cell.bytes) }
            }
            collector.rows.endRow()
        }
    }

    private func scalarInt(_ sql: String) async throws -> Int {
        do {
            return try await session.withConnection { connection in
                let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
                for try await value in rows.decode(Int64.self) { return Int(value) }
                return 0
            }
        } catch let error as FerryError {
            throw error
        } catch {
            throw describe(error)
        }
    }

    /// Names the source in the error; SQL errors keep PostgreSQL's message.
    private func describe(_ error: any Error) -> FerryError {
        var diagnosed = PostgresDiagnosis.diagnose(error, endpoint: session.endpoint, key: session.key)
        if diagnosed.code == .server || diagnosed.code == .permission {
            diagnosed.message = "reading \(displayName): " + diagnosed.message
        }
        return diagnosed
    }
}

/// The rows of one query as they arrive: written only by the row callbacks, which the connection's event loop
/// runs one after another, and read after the query's future completed.
private final class RowCollector: @unchecked Sendable {
    var rows = CopyTextRows(capacity: 0)
    var mark: String?
}
