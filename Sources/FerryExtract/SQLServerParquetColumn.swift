package import FerryCore
package import FerryParquet
package import FerrySQLServer
import NIOCore

/// How one SQL Server result column becomes a Parquet column, from the type DB-Library reports for the result, and
/// how its values are converted from the form DB-Library holds them in (no text in between, but for decimals).
///
/// | SQL Server | Parquet |
/// |---|---|
/// | bit | BOOLEAN |
/// | tinyint, smallint | INT32 (INT(16, signed)), as the mirror's smallint |
/// | int, bigint | INT32, INT64 |
/// | real, float | FLOAT, DOUBLE |
/// | decimal(p,s), numeric(p,s) | DECIMAL(p,s) |
/// | money, smallmoney | DECIMAL(19,4), DECIMAL(10,4) |
/// | char, varchar, nchar, nvarchar, text, ntext | STRING |
/// | binary, varbinary, image, rowversion | BINARY |
/// | uniqueidentifier | STRING (36 characters; Spark rejects the UUID type) |
/// | date | DATE |
/// | time(n) | TIME(MICROS, local) |
/// | datetime, smalldatetime, datetime2(n) | TIMESTAMP(MICROS, local) |
/// | datetimeoffset(n) | TIMESTAMP(MICROS, UTC), the instant |
///
/// Digits of a second below the microsecond are cut, never rounded (23:59:59.9999999 stays on its day), as the
/// table sync's mirror has them. `xml`, `sql_variant` and CLR types are refused by name: cast them in the query.
package struct SQLServerParquetColumn: Sendable {
    enum Conversion: Sendable {
        case boolean, tinyint, int16, int32, int64, float32, float64
        /// Ten-thousandths: INT64 (money) / INT32 (smallmoney) into DECIMAL(19,4) / DECIMAL(10,4).
        case money, smallmoney
        /// Through DB-Library's own decimal text (38 digits exactly), by the DB-Library type number.
        case decimal(type: Int32, precision: Int, scale: Int)
        case bytes
        case uniqueidentifier
        case date, time
        case timestamp(SQLServerText.Kind)
    }

    package let parquet: ParquetColumn
    let conversion: Conversion

    /// 1900-01-01 (DB-Library's day 0) is day -25,567 of Parquet's 1970-01-01.
    static let epochDays = 25_567

    /// The Parquet column for a result column; a type Ferry does not write is an error naming the column and the cast.
    package static func map(_ column: SQLServerColumn, query: String) throws(FerryError) -> SQLServerParquetColumn {
        let name = column.name
        guard !name.isEmpty else {
            throw FerryError(
                .invalidInput, "\(query): a result column has no name", fix: "name it in the query (… AS name), as Parquet needs a name per column")
        }
        func make(_ kind: ParquetColumn.Kind, _ conversion: Conversion) -> SQLServerParquetColumn {
            SQLServerParquetColumn(parquet: ParquetColumn(name: name, kind: kind, nullable: true), conversion: conversion)
        }
        switch column.kind {
        case .bit: return make(.boolean, .boolean)
        case .tinyint: return make(.integer(bits: 16, signed: true), .tinyint)
        case .smallint: return make(.integer(bits: 16, signed: true), .int16)
        case .int: return make(.integer(bits: 32, signed: true), .int32)
        case .bigint: return make(.integer(bits: 64, signed: true), .int64)
        case .real: return make(.float, .float32)
        case .float: return make(.double, .float64)
        case .money: return make(.decimal(precision: 19, scale: 4), .money)
        case .smallmoney: return make(.decimal(precision: 10, scale: 4), .smallmoney)
        case .decimal:
            let precision = column.precision
            let scale = column.scale
            guard (1...ParquetColumn.maximumDecimalPrecision).contains(precision), (0...precision).contains(scale) else {
                throw FerryError(
                    .unsupported, "\(query): column \(name) is a decimal of precision \(precision) and scale \(scale), which Parquet cannot hold",
                    fix: "cast it in the query, e.g. CAST(\(name) AS decimal(38, 10))")
            }
            return make(.decimal(precision: precision, scale: scale), .decimal(type: column.type, precision: precision, scale: scale))
        case .text: return make(.string, .bytes)
        case .binary: return make(.binary, .bytes)
        case .uniqueidentifier: return make(.string, .uniqueidentifier)
        case .date: return make(.date, .date)
        case .time: return make(.time(unit: .micros, utc: false), .time)
        case .datetime, .smalldatetime, .datetime2: return make(.timestamp(unit: .micros, utc: false), .timestamp(column.kind))
        case .datetimeoffset: return make(.timestamp(unit: .micros, utc: true), .timestamp(.datetimeoffset))
        case .unsupported(let type):
            throw FerryError(
                .unsupported,
                "\(query): column \(name) is of a type Ferry does not write to Parquet (DB-Library type \(type): xml, sql_variant or a CLR type)",
                fix: "cast it in the query, e.g. CAST(\(name) AS nvarchar(max))")
        }
    }

    /// Appends one non-null value as DB-Library holds it. `scratch` is reused for the values that go through text.
    @inline(__always)
    static func append(
        _ bytes: UnsafeRawBufferPointer, _ conversion: Conversion, to writer: ParquetColumnWriter, scratch: inout ByteBuffer
    ) throws(FerryError) {
        @inline(__always) func load<T: FixedWidthInteger>(_: T.Type) throws(FerryError) -> T {
            guard bytes.count == MemoryLayout<T>.size else { throw malformed(bytes.count) }
            return T(littleEndian: bytes.loadUnaligned(as: T.self))
        }
        switch conversion {
        case .boolean: writer.append(try load(UInt8.self) != 0)
        case .tinyint: writer.append(Int32(try load(UInt8.self)))
        case .int16: writer.append(Int32(try load(Int16.self)))
        case .int32: writer.append(try load(Int32.self))
        case .int64: writer.append(try load(Int64.self))
        case .float32: writer.append(Float(bitPattern: try load(UInt32.self)))
        case .float64: writer.append(Double(bitPattern: try load(UInt64.self)))
        case .money:
            // DBMONEY: the high 32 bits, then the low 32 bits, of ten-thousandths.
            guard bytes.count == 8 else { throw malformed(bytes.count) }
            let high = Int64(Int32(littleEndian: bytes.loadUnaligned(as: Int32.self)))
            let low = Int64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            try appendBytes(Self.bigEndian(high << 32 | low, width: ParquetColumn.decimalWidth(precision: 19)), to: writer)
        case .smallmoney: writer.append(Int64(try load(Int32.self)))
        case .decimal(let type, let precision, let scale):
            scratch.clear()
            guard SQLServerText.appendDecimal(type: type, bytes, into: &scratch),
                let unscaled = DecimalUnscaled.parse(String(buffer: scratch), scale: scale)
            else { throw malformed(bytes.count) }
            if precision <= 9, let value = unscaled.int64, let narrow = Int32(exactly: value) {
                writer.append(narrow)
            } else if precision <= 18, let value = unscaled.int64 {
                writer.append(value)
            } else if precision > 18, let wide = unscaled.bigEndian(width: ParquetColumn.decimalWidth(precision: precision)) {
                try appendBytes(wide, to: writer)
            } else {
                throw FerryError(.invalidInput, "\(String(buffer: scratch)) has more digits than decimal(\(precision),\(scale)) holds")
            }
        case .bytes: try appendBytes(bytes, to: writer)
        case .uniqueidentifier:
            scratch.clear()
            do {
                try SQLServerText.append(.uniqueidentifier, bytes, into: &scratch) { _, _ in false }
            } catch {
                throw malformed(bytes.count)
            }
            try scratch.withUnsafeReadableBytes { (raw) throws(FerryError) in try appendBytes(raw, to: writer) }
        case .date:
            guard let (day, _) = SQLServerText.dayAndMicroseconds(.date, bytes) else { throw malformed(bytes.count) }
            writer.append(Int32(day - Self.epochDays))
        case .time:
            guard let (_, microseconds) = SQLServerText.dayAndMicroseconds(.time, bytes) else { throw malformed(bytes.count) }
            writer.append(microseconds)
        case .timestamp(let kind):
            guard let (day, microseconds) = SQLServerText.dayAndMicroseconds(kind, bytes) else { throw malformed(bytes.count) }
            writer.append(Int64(day - Self.epochDays) * 86_400_000_000 + microseconds)
        }
    }

    /// `value` as `width` big-endian two's-complement bytes (sign-extended).
    static func bigEndian(_ value: Int64, width: Int) -> [UInt8] {
        (0..<width).map { index in
            let shift = (width - 1 - index) * 8
            return shift >= 64 ? (value < 0 ? 0xFF : 0) : UInt8(truncatingIfNeeded: value >> shift)
        }
    }

    private static func appendBytes(_ raw: UnsafeRawBufferPointer, to writer: ParquetColumnWriter) throws(FerryError) {
        do {
            try writer.append(bytes: raw)
        } catch {
            throw FerryError(.invalidInput, error.message)
        }
    }

    private static func appendBytes(_ bytes: [UInt8], to writer: ParquetColumnWriter) throws(FerryError) {
        do {
            try writer.append(bytes: bytes)
        } catch {
            throw FerryError(.invalidInput, error.message)
        }
    }

    private static func malformed(_ length: Int) -> FerryError {
        FerryError(.protocolViolation, "the server sent a value of \(length) bytes that does not decode as its type")
    }
}
