@testable import FerryParquet

/// A table of every type Ferry writes, with nulls, boundary values and non-Latin text, written through the
/// ``ParquetWriter`` API; `expected` is what a reader must give back (as ``ParquetValue``s).
struct SampleTable {
    static let schema = ParquetSchema([
        ParquetColumn(name: "id", kind: .integer(bits: 64, signed: true), nullable: false),
        ParquetColumn(name: "flag", kind: .boolean),
        ParquetColumn(name: "i8", kind: .integer(bits: 8, signed: true)),
        ParquetColumn(name: "i16", kind: .integer(bits: 16, signed: true)),
        ParquetColumn(name: "i32", kind: .integer(bits: 32, signed: true)),
        ParquetColumn(name: "u8", kind: .integer(bits: 8, signed: false)),
        ParquetColumn(name: "u16", kind: .integer(bits: 16, signed: false)),
        ParquetColumn(name: "u32", kind: .integer(bits: 32, signed: false)),
        ParquetColumn(name: "u64", kind: .integer(bits: 64, signed: false)),
        ParquetColumn(name: "real", kind: .float),
        ParquetColumn(name: "double", kind: .double),
        ParquetColumn(name: "text", kind: .string),
        ParquetColumn(name: "category", kind: .string),
        ParquetColumn(name: "uuid", kind: .string),
        ParquetColumn(name: "blob", kind: .binary),
        ParquetColumn(name: "day", kind: .date),
        ParquetColumn(name: "at", kind: .timestamp(unit: .micros, utc: true)),
        ParquetColumn(name: "local", kind: .timestamp(unit: .micros, utc: false)),
        ParquetColumn(name: "price", kind: .decimal(precision: 9, scale: 2)),
        ParquetColumn(name: "amount", kind: .decimal(precision: 18, scale: 4)),
        ParquetColumn(name: "huge", kind: .decimal(precision: 38, scale: 0)),
        ParquetColumn(name: "wide", kind: .decimal(precision: 25, scale: 10)),
    ])

    var expected: [[ParquetValue]] = []

    /// `rows` rows; every 7th value of a nullable column is null. `pandasRange` keeps dates and timestamps within
    /// 1677–2262, which is all fastparquet (through pandas' nanosecond timestamps) can hold.
    static func rows(_ count: Int, pandasRange: Bool = false) -> [[ParquetValue]] {
        var generator = SeededRandom(seed: 42)
        let texts = ["", "a", "ñandú", "漢字テキスト", "emoji 🚢", String(repeating: "x", count: 9000), "quote \" and \\ and\nnewline"]
        var out: [[ParquetValue]] = []
        out.reserveCapacity(count)
        for row in 0..<count {
            let random = generator.next()
            let maxDecimal38 = "99999999999999999999999999999999999999"
            var values: [ParquetValue] = [
                .integer(Int64(row)),
                .boolean(random & 1 == 0),
                .integer(Int64(Int8(truncatingIfNeeded: random >> 8))),
                .integer(row % 3 == 0 ? Int64(Int16.min) : Int64(Int16(truncatingIfNeeded: random >> 16))),
                .integer(row % 5 == 0 ? Int64(Int32.max) : Int64(Int32(truncatingIfNeeded: random >> 20))),
                .unsigned(UInt64(UInt8(truncatingIfNeeded: random >> 3))),
                .unsigned(UInt64(UInt16(truncatingIfNeeded: random >> 5))),
                .unsigned(row % 4 == 0 ? UInt64(UInt32.max) : UInt64(UInt32(truncatingIfNeeded: random >> 7))),
                .unsigned(row % 4 == 1 ? UInt64.max : random),
                .float(row % 11 == 0 ? -0.0 : Float(Int32(truncatingIfNeeded: random)) / 1024),
                .double(row % 13 == 0 ? .greatestFiniteMagnitude : Double(Int64(bitPattern: random)) / 3),
                .string(texts[row % texts.count]),
                .string("category \(row % 10)"),
                .string(uuid(random)),
                .binary((0..<(row % 5)).map { UInt8(truncatingIfNeeded: row &* 31 &+ $0) }),
                // 9999-12-31 and back to year 1.
                .date(pandasRange ? Int32(row * 7 - 10_000) : Int32(row % 3 == 0 ? 2_932_896 : -719_162 + row * 97)),
                .timestamp(
                    row % 3 == 0 && !pandasRange ? 253_402_300_799_999_999 : Int64(row) * 1_000_003_007 - 1 << 40, unit: .micros, utc: true),
                .timestamp(Int64(row) * 86_400_000_001, unit: .micros, utc: false),
                .decimal(DecimalText.format(Int64(Int32(truncatingIfNeeded: random >> 2) % 999_999_999), scale: 2)),
                .decimal(DecimalText.format(Int64(bitPattern: random) % 999_999_999_999_999_999, scale: 4)),
                .decimal(row % 2 == 0 ? maxDecimal38 : "-" + maxDecimal38),
                .decimal(DecimalText.format(Int64(bitPattern: random) / 7, scale: 10)),
            ]
            for index in values.indices where index > 0 && (row + index) % 7 == 3 { values[index] = .null }
            out.append(values)
        }
        return out
    }

    static func uuid(_ seed: UInt64) -> String {
        let hex = String(seed, radix: 16)
        let padded = String(repeating: "0", count: 16 - hex.count) + hex
        let chars = Array(padded + padded)
        return String(chars[0..<8]) + "-" + String(chars[8..<12]) + "-" + String(chars[12..<16]) + "-" + String(chars[16..<20]) + "-"
            + String(chars[20..<32])
    }

    /// A Parquet file of `rows` with `options`.
    static func write(_ rows: [[ParquetValue]], options: ParquetWriterOptions = ParquetWriterOptions()) throws -> [UInt8] {
        var writer = try ParquetWriter(schema: schema, options: options)
        var file: [UInt8] = []
        for row in rows {
            for (column, value) in zip(writer.columns, row) { try append(value, to: column) }
            try writer.endRow()
            if writer.bufferedBytes == 0 { file += writer.takeOutput() }
        }
        file += try writer.finish()
        return file
    }

    static func append(_ value: ParquetValue, to column: ParquetColumnWriter) throws {
        switch value {
        case .null: try column.appendNull()
        case .boolean(let value): column.append(value)
        case .integer(let value), .timestamp(let value, _, _), .time(let value, _):
            if column.column.physicalType == .int32 { column.append(Int32(value)) } else { column.append(value) }
        case .unsigned(let value):
            if column.column.physicalType == .int32 {
                column.append(Int32(bitPattern: UInt32(value)))
            } else {
                column.append(Int64(bitPattern: value))
            }
        case .float(let value): column.append(value)
        case .double(let value): column.append(value)
        case .string(let text): try column.append(text)
        case .binary(let bytes): try column.append(bytes: bytes)
        case .date(let days): column.append(days)
        case .decimal(let text):
            guard case .decimal(let precision, let scale) = column.column.kind else { return }
            guard let unscaled = DecimalUnscaled.parse(text, scale: scale) else { throw ParquetError("\(text) is not a decimal") }
            switch column.column.physicalType {
            case .int32: column.append(Int32(unscaled.int64 ?? 0))
            case .int64: column.append(unscaled.int64 ?? 0)
            default:
                guard let bytes = unscaled.bigEndian(width: ParquetColumn.decimalWidth(precision: precision)) else {
                    throw ParquetError("\(text) does not fit DECIMAL(\(precision))")
                }
                try column.append(bytes: bytes)
            }
        }
    }
}

/// SeededRandom64: a seeded generator, so failures repeat.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
