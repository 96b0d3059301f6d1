package import FerryCore
import FerryPostgres
import Foundation

/// How a pipeline's source columns land in its mirror and companion tables; all SQL names are quoted here.
package struct MirrorLayout: Sendable {
    package struct Column: Sendable, Hashable {
        /// Name at the source.
        package var source: String
        /// Name in the mirror.
        package var name: String
        /// PostgreSQL type in the mirror.
        package var type: String
        /// Whether the type was set by a column mapping rather than taken from the source.
        package var overridden: Bool
    }

    package let pipeline: PipelineConfiguration
    package let schema: SourceSchema
    package let columns: [Column]
    /// Positions of the key columns in `columns`, in key order.
    package let keyIndexes: [Int]
    package let watermarkIndex: Int

    package init(pipeline: PipelineConfiguration, schema: SourceSchema) throws(FerryError) {
        self.pipeline = pipeline
        self.schema = schema
        var columns: [Column] = []
        for column in schema.columns {
            let mapping = pipeline.columns.first { $0.source == column.name || $0.source.lowercased() == column.name.lowercased() }
            columns.append(
                Column(
                    source: column.name, name: mapping?.name ?? column.name.lowercased(), type: mapping?.type ?? column.type,
                    overridden: mapping?.type != nil)
            )
        }
        var seen: Set<String> = []
        for column in columns where !seen.insert(column.name).inserted {
            throw FerryError(
                .configuration, "pipelines \(pipeline.name): two source columns map to the mirror column \"\(column.name)\"",
                fix: "rename one of them under `columns`")
        }
        for reserved in ["ferry_seq", "created_at", "updated_at", "deleted_at"] where seen.contains(reserved) {
            throw FerryError(
                .configuration,
                "pipelines \(pipeline.name): the source column mapped to \"\(reserved)\" clashes with a column Ferry adds to the mirror",
                fix: "rename it under `columns`, e.g. `\(reserved.uppercased()): source_\(reserved)`"
            )
        }
        if let companion = pipeline.companion {
            // The companion has its own id and timestamps beside the key and the editable columns.
            let keyNames = pipeline.source.key.compactMap { key in columns.first { $0.source.lowercased() == key.lowercased() }?.name }
            for name in keyNames + companion.columns.map(\.name) where ["id", "created_at", "updated_at"].contains(name) {
                let isKey = keyNames.contains(name)
                throw FerryError(
                    .configuration,
                    "pipelines \(pipeline.name): the companion table \(companion.table) has its own \"\(name)\" column, and the \(isKey ? "key" : "editable") column \"\(name)\" would clash with it",
                    fix: isKey
                        ? "map the key to another mirror name under `columns`, e.g. `\(name): source_\(name)`"
                        : "rename the editable column under companion.columns")
            }
        }
        self.columns = columns
        keyIndexes = try pipeline.source.key.map { (name: String) throws(FerryError) -> Int in
            guard let index = schema.index(of: name) else {
                throw FerryError(
                    .configuration, "pipelines \(pipeline.name): key column \"\(name)\" is not among the source's columns", fix: "fix source.key")
            }
            return index
        }
        guard let watermarkIndex = schema.index(of: pipeline.source.watermark) else {
            throw FerryError(
                .configuration, "pipelines \(pipeline.name): watermark column \"\(pipeline.source.watermark)\" is not among the source's columns",
                fix: "fix source.watermark")
        }
        self.watermarkIndex = watermarkIndex
    }

    package var keyColumns: [Column] { keyIndexes.map { columns[$0] } }

    /// Per source column, the mirror's type when it differs by mapping (for reconciliation digests).
    package var mirrorTypes: [String?] { columns.map { $0.overridden ? $0.type : nil } }

    package var targetSchema: String { pipeline.target.schema }
    package var mirrorTable: String { SQLIdentifier.qualified(targetSchema, pipeline.target.table) }
    package var companionTable: String? { pipeline.companion.map { SQLIdentifier.qualified(targetSchema, $0.table) } }

    /// A batch's rows, bound as one `text[]` per field (``stagedFieldCount``, sequence first), read as a table
    /// `staged` with text columns `s` (sequence) and `c0…`; the arrays are parameters `$first…`.
    func stagedRows(firstParameter first: Int) -> String {
        let arrays = (0..<stagedFieldCount).map { "$\(first + $0)::text[]" }
        return "unnest(\(arrays.joined(separator: ", "))) AS staged(s, \(columns.indices.map { "c\($0)" }.joined(separator: ", ")))"
    }

    /// The key fields alone, bound as `text[]` from `$first`, read as `staged` with the key's `c…` columns.
    func stagedKeys(firstParameter first: Int) -> String {
        let arrays = keyIndexes.indices.map { "$\(first + $0)::text[]" }
        return "unnest(\(arrays.joined(separator: ", "))) AS staged(\(keyIndexes.map { "c\($0)" }.joined(separator: ", ")))"
    }

    /// Fields per row of a batch: the sequence number and the source columns.
    var stagedFieldCount: Int { columns.count + 1 }

    func quoted(_ column: Column) -> String { SQLIdentifier.quote(column.name) }

    /// `c3::character varying` — a staging value cast to its mirror type without the type modifier: an explicit
    /// cast to `varchar(6)` would silently truncate, while assigning to the column rejects a value too long.
    func cast(_ index: Int) -> String { "c\(index)::\(Self.baseType(columns[index].type))" }

    /// `character varying(20)` → `character varying`, `timestamp(6) without time zone` → `timestamp without
    /// time zone`, `numeric(12,2)[]` → `numeric[]`. `character(n)` → `bpchar` and `bit(n)` → `bit varying`: without a
    /// length, `character` and `bit` mean a length of 1, and the cast would cut `ab` to `a`.
    static func baseType(_ type: String) -> String {
        let plain = unmodified(type)
        let element = plain.hasSuffix("[]") ? String(plain.dropLast(2)) : plain
        let array = plain.hasSuffix("[]") ? "[]" : ""
        switch element.lowercased() {
        case "character", "char": return "bpchar" + array
        case "bit": return "bit varying" + array
        default: return plain
        }
    }

    private static func unmodified(_ type: String) -> String {
        var out = ""
        var depth = 0
        for character in type {
            if character == "(" {
                depth += 1
            } else if character == ")" {
                depth = max(0, depth - 1)
            } else if depth == 0 {
                out.append(character)
            }
        }
        return out.replacingOccurrences(of: "  ", with: " ").trimmingCharacters(in: .whitespaces)
    }

    var keyList: String { keyColumns.map(quoted).joined(separator: ", ") }
}
