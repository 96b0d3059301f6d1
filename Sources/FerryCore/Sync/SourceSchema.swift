/// One column of a sync source, as the mirror will store it.
package struct SourceColumn: Sendable, Hashable, Codable {
    /// The column's name at the source.
    package var name: String
    /// The PostgreSQL type of its values, e.g. `timestamp without time zone`, `numeric(12,2)`, `text`.
    package var type: String

    package init(name: String, type: String) {
        self.name = name
        self.type = type
    }
}

/// The columns a source delivers, in order.
package struct SourceSchema: Sendable, Hashable, Codable {
    package var columns: [SourceColumn]

    package init(columns: [SourceColumn]) {
        self.columns = columns
    }

    package func index(of name: String) -> Int? {
        columns.firstIndex { $0.name == name } ?? columns.firstIndex { $0.name.lowercased() == name.lowercased() }
    }

    /// The positions of the key columns and of the watermark; throws naming the first one `source` lacks and the
    /// columns it has (a pipeline's source.key / source.watermark that do not match the source).
    package func positions(key: [String], watermark: String, in source: String) throws -> (key: [Int], watermark: Int) {
        for name in key + [watermark] where index(of: name) == nil {
            let available = columns.map(\.name).joined(separator: ", ")
            throw FerryError(
                .invalidInput, "column \"\(name)\" is not in \(source) (columns: \(available))",
                fix: "fix the pipeline's source.key / source.watermark, or stop excluding it")
        }
        return (key.map { index(of: $0)! }, index(of: watermark)!)
    }

    /// A short, stable identifier of the column names and types (FNV-1a, hex); entries name the schema they use.
    package var fingerprint: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for column in columns {
            for byte in column.name.utf8 + [0] + column.type.utf8 + [1] {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Where a source read stopped: the watermark and key of the last row, as text.
package struct SourcePosition: Sendable, Hashable, Codable {
    /// `nil` for rows whose watermark is NULL (read by key).
    package var watermark: String?
    package var key: [String]

    package init(watermark: String?, key: [String]) {
        self.watermark = watermark
        self.key = key
    }
}

/// A range of keys for reconciliation: lower bound exclusive, upper bound inclusive; `nil` is open.
package struct KeyRange: Sendable, Hashable, Codable {
    package var after: [String]?
    package var through: [String]?

    package init(after: [String]?, through: [String]?) {
        self.after = after
        self.through = through
    }

    package static let all = KeyRange(after: nil, through: nil)
}

/// Row count and an order-independent hash of the rows in a key range.
package struct RangeDigest: Sendable, Hashable {
    package var count: Int
    package var hash: Int64

    package init(count: Int, hash: Int64) {
        self.count = count
        self.hash = hash
    }
}
