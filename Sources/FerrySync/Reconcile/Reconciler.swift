package import FerryCore
import FerryPostgres
package import FerryRedis
import Foundation
package import Logging
import NIOCore
import PostgresNIO

/// Compares a pipeline's source and mirror by key ranges with checksums (the data-diff approach) and, when asked,
/// repairs the mirror: rows missing or different are applied again from the source (with a new version, through
/// the same guarded upsert), rows gone from the source are soft-deleted (their companion rows stay).
package struct Reconciler: Sendable {
    package struct Report: Sendable {
        /// Keys in the source but not (or only soft-deleted) in the mirror.
        package var missing: [[String]] = []
        /// Keys whose values differ.
        package var different: [[String]] = []
        /// Keys in the mirror (not deleted) but not in the source.
        package var extra: [[String]] = []
        package var sourceRows = 0
        package var mirrorRows = 0
        package var rangesCompared = 0
        package var repaired = 0
        package var softDeleted = 0
        /// A backfill of columns added at the source was under way (columns, rows queued, estimated total): rows it
        /// had not reached yet differ in those columns until it does.
        package var backfill: (columns: [String], rows: Int64, total: Int64?)?

        package var differences: Int { missing.count + different.count + extra.count }
    }

    let context: PipelineContext
    /// Ranges with at most this many rows are compared row by row; larger ones are split.
    var leafSize = 2_000

    package init(_ pipeline: PipelineConfiguration, configuration: FerryConfiguration, redis: RedisClient, logger: Logger) throws {
        let runner = try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, logger: logger)
        self.context = runner.context
    }

    package func run(repair: Bool) async throws -> Report {
        let schema = try await context.source.describe()
        var applier = BatchApplier(context: context, slot: "reconcile")
        let (layout, statements): (MirrorLayout, MirrorStatements)
        do {
            (layout, statements) = try await applier.layout(for: schema)
        } catch let incompatible as IncompatibleMirror {
            throw incompatible.error
        }
        let mirror = MirrorSide(layout: layout, session: applier.session, logger: context.logger)
        var report = Report()
        let boundaries = try await context.source.keyBoundaries(parts: 32, in: .all)
        var ranges: [KeyRange] = []
        var lower: [String]?
        for boundary in boundaries {
            ranges.append(KeyRange(after: lower, through: boundary))
            lower = boundary
        }
        ranges.append(KeyRange(after: lower, through: nil))
        while let range = ranges.popLast() {
            let source = try await context.source.digest(of: range, mirrorTypes: layout.mirrorTypes)
            let target = try await mirror.digest(of: range)
            report.rangesCompared += 1
            if source == target {
                report.sourceRows += source.count
                report.mirrorRows += target.count
                continue
            }
            if max(source.count, target.count) > leafSize {
                let inner = try await context.source.keyBoundaries(parts: 8, in: range)
                if inner.count > 1 {
                    var lower = range.after
                    for boundary in inner {
                        ranges.append(KeyRange(after: lower, through: boundary))
                        lower = boundary
                    }
                    ranges.append(KeyRange(after: lower, through: range.through))
                    continue
                }
            }
            report.sourceRows += source.count
            report.mirrorRows += target.count
            let sourceHashes = try await context.source.rowHashes(in: range, mirrorTypes: layout.mirrorTypes)
            let mirrorHashes = try await mirror.rowHashes(in: range)
            var mirrorByKey: [[String]: Int64] = [:]
            for row in mirrorHashes { mirrorByKey[row.key] = row.hash }
            var missing: [[String]: Int64] = [:]
            var different: [[String]] = []
            for row in sourceHashes {
                switch mirrorByKey.removeValue(forKey: row.key) {
                case nil: missing[row.key] = row.hash
                case .some(let hash) where hash != row.hash: different.append(row.key)
                default: break
                }
            }
            var extra = mirrorByKey.keys.sorted { $0.lexicographicallyPrecedes($1) }
            // A key one side's range holds and the other's does not may sit in another range there: the two databases
            // order text keys by their own collations (a case-insensitive SQL Server collation, another locale). Such
            // keys are looked up by key before they count (and before any repair), and a row the source still has is
            // never soft-deleted.
            if !extra.isEmpty {
                var present = CopyTextRows()
                try await context.source.readKeys(extra, schema: schema, into: &present)
                let found = Set(
                    (0..<present.rowCount).map { index in
                        let fields = present.fields(ofRow: index)
                        return layout.keyIndexes.map { fields[$0] ?? "" }
                    })
                extra.removeAll { found.contains($0) }
            }
            var stillMissing: [[String]] = []
            if !missing.isEmpty {
                let inMirror = try await mirror.rowHashes(keys: Array(missing.keys))
                for (key, hash) in missing.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                    switch inMirror[key] {
                    case nil: stillMissing.append(key)
                    case .some(let mirrored) where mirrored != hash: different.append(key)
                    default: break
                    }
                }
            }
            report.missing += stillMissing
            report.different += different
            report.extra += extra
            if repair {
                let wanted = Set(stillMissing + different)
                if !wanted.isEmpty {
                    var rows = CopyTextRows()
                    try await context.source.readRange(range, schema: schema, into: &rows)
                    var fresh = CopyTextRows(capacity: rows.byteCount)
                    var sequence = Int64(Date().timeIntervalSince1970 * 1_000_000)
                    for index in 0..<rows.rowCount {
                        let fields = rows.fields(ofRow: index)
                        guard wanted.contains(layout.keyIndexes.map { fields[$0] ?? "" }) else { continue }
                        fresh.appendRow(sequence: sequence, line: rows.row(index))
                        sequence += 1
                    }
                    if !fresh.isEmpty {
                        try await applier.apply(fresh, layout: layout, statements: statements, maxSeq: sequence, position: nil)
                        report.repaired += fresh.rowCount
                    }
                }
            }
        }
        if repair, !report.extra.isEmpty {
            report.softDeleted = try await mirror.softDelete(report.extra)
        }
        let control = context.control
        let logger = context.logger
        if let backfill = try await applier.session.withConnection({ try await control.loadBackfill($0, logger: logger) }), backfill.finishedAt == nil
        {
            report.backfill = (backfill.columns, backfill.rows, backfill.total)
        }
        await context.source.close()
        await applier.session.close()
        return report
    }
}

/// The mirror's half of a reconciliation.
struct MirrorSide {
    let layout: MirrorLayout
    let session: PostgresSession
    let logger: Logger

    var keyTuple: String { "(" + layout.keyColumns.map { layout.quoted($0) }.joined(separator: ", ") + ")" }

    var rowHash: String {
        let parts = layout.columns.map { "coalesce(\(layout.quoted($0))::text, E'\\x1e')" }
        return "hashtextextended(concat_ws(E'\\x1f', \(parts.joined(separator: ", "))), 0)"
    }

    func condition(_ range: KeyRange, binds: inout PostgresBindings) -> String {
        var parts = ["deleted_at IS NULL"]
        let types = layout.keyColumns.map(\.type)
        func tuple(_ values: [String]) -> String {
            var placeholders: [String] = []
            for (value, type) in zip(values, types) {
                binds.append(value)
                placeholders.append("$\(binds.count)::\(type)")
            }
            return "(" + placeholders.joined(separator: ", ") + ")"
        }
        if let after = range.after { parts.append("\(keyTuple) > \(tuple(after))") }
        if let through = range.through { parts.append("\(keyTuple) <= \(tuple(through))") }
        return parts.joined(separator: " AND ")
    }

    func digest(of range: KeyRange) async throws -> RangeDigest {
        var binds = PostgresBindings()
        let sql = "SELECT count(*), coalesce(bit_xor(\(rowHash)), 0) FROM \(layout.mirrorTable) WHERE \(condition(range, binds: &binds))"
        return try await session.withConnection { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await (count, hash) in rows.decode((Int64, Int64).self) { return RangeDigest(count: Int(count), hash: hash) }
            return RangeDigest(count: 0, hash: 0)
        }
    }

    func rowHashes(in range: KeyRange) async throws -> [(key: [String], hash: Int64)] {
        var binds = PostgresBindings()
        let keys = layout.keyColumns.map { "\(layout.quoted($0))::text" }.joined(separator: ", ")
        let sql = "SELECT \(keys), (\(rowHash))::text FROM \(layout.mirrorTable) WHERE \(condition(range, binds: &binds))"
        return try await session.withConnection { connection in
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            var rows: [(key: [String], hash: Int64)] = []
            for try await row in result {
                var values: [String] = []
                for cell in row { values.append(cell.bytes.map { String(buffer: $0) } ?? "") }
                let hash = Int64(values.removeLast()) ?? 0
                rows.append((values, hash))
            }
            return rows
        }
    }

    /// The row hashes of the live mirror rows with these keys.
    func rowHashes(keys: [[String]]) async throws -> [[String]: Int64] {
        var binds = PostgresBindings()
        var columns: [String] = []
        for (index, column) in layout.keyColumns.enumerated() {
            binds.append(keys.map { $0[index] })
            columns.append("unnest($\(binds.count)::text[])::\(column.type)")
        }
        let keyText = layout.keyColumns.map { "\(layout.quoted($0))::text" }.joined(separator: ", ")
        let sql = """
            SELECT \(keyText), (\(rowHash))::text FROM \(layout.mirrorTable)
            WHERE deleted_at IS NULL AND \(keyTuple) IN (SELECT \(columns.joined(separator: ", ")))
            """
        return try await session.withConnection { connection in
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            var hashes: [[String]: Int64] = [:]
            for try await row in result {
                var values: [String] = []
                for cell in row { values.append(cell.bytes.map { String(buffer: $0) } ?? "") }
                let hash = Int64(values.removeLast()) ?? 0
                hashes[values] = hash
            }
            return hashes
        }
    }

    /// Marks `keys` deleted (once); returns how many rows changed.
    func softDelete(_ keys: [[String]]) async throws -> Int {
        var binds = PostgresBindings()
        var columns: [String] = []
        for (index, column) in layout.keyColumns.enumerated() {
            binds.append(keys.map { $0[index] })
            columns.append("unnest($\(binds.count)::text[])::\(column.type)")
        }
        let sql = """
            UPDATE \(layout.mirrorTable) SET deleted_at = now(), updated_at = now()
            WHERE deleted_at IS NULL AND \(keyTuple) IN (SELECT \(columns.joined(separator: ", ")))
            RETURNING 1
            """
        return try await session.withTransaction { connection in
            try await connection.query("SELECT set_config('ferry.sync', 'on', true)", logger: logger)
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            var changed = 0
            for try await _ in result { changed += 1 }
            return changed
        }
    }
}
