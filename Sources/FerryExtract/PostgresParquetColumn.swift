package import FerryCore
package import FerryParquet
import NIOCore
package import PostgresNIO

/// How one PostgreSQL result column becomes a Parquet column, and how its binary values are converted.
package struct PostgresParquetColumn: Sendable {
    enum Conversion: Sendable {
        case boolean, int16, int32, int64, float32, float64
        /// numeric(p, s): unscaled into INT32 / INT64 / FIXED_LEN_BYTE_ARRAY.
        case numeric(precision: Int, scale: Int)
        /// Bytes as they are: text, varchar, bpchar, name, json, bytea.
        case bytes
        /// jsonb's binary form: a version byte, then the text.
        case jsonb
        case date, timestamp, timestamptz, time
        case uuid
    }

    package let parquet: ParquetColumn
    let conversion: Conversion

    /// PostgreSQL's dates and timestamps count from 2000-01-01; Parquet's from 1970-01-01.
    static let epochDays: Int32 = 10_957
    static let epochMicros: Int64 = 946_684_800_000_000

    /// The Parquet column for a result column; unsupported types are errors naming the column and the cast to use.
    package static func map(_ column: PostgresColumn, query: String) throws(FerryError) -> PostgresParquetColumn {
        let name = column.name
        func make(_ kind: ParquetColumn.Kind, _ conversion: Conversion) -> PostgresParquetColumn {
            PostgresParquetColumn(parquet: ParquetColumn(name: name, kind: kind, nullable: true), conversion: conversion)
        }
        switch column.dataType {
        case .bool: return make(.boolean, .boolean)
        case .int2: return make(.integer(bits: 16, signed: true), .int16)
        case .int4: return make(.integer(bits: 32, signed: true), .int32)
        case .int8: return make(.integer(bits: 64, signed: true), .int64)
        case .float4: return make(.float, .float32)
        case .float8: return make(.double, .float64)
        case .numeric:
            let modifier = Int(column.dataTypeModifier)
            guard modifier >= 4 else {
                throw FerryError(
                    .unsupported, "\(query): column \(name) is numeric without a precision, which has no exact Parquet type",
                    fix: "cast it in the query, e.g. \(name)::numeric(18,2) (a DECIMAL), or \(name)::text")
            }
            let precision = (modifier - 4) >> 16
            let scale = (modifier - 4) & 0xFFFF
            guard precision <= ParquetColumn.maximumDecimalPrecision, scale <= precision else {
                throw FerryError(
                    .unsupported, "\(query): column \(name) is numeric(\(precision),\(scale)); Parquet decimals hold 38 digits",
                    fix: "cast it in the query to numeric(38,\(min(scale, 38))) or text")
            }
            return make(.decimal(precision: precision, scale: scale), .numeric(precision: precision, scale: scale))
        case .text, .varchar, .bpchar, .name, .json: return make(.string, .bytes)
        case .jsonb: return make(.string, .jsonb)
        case .bytea: return make(.binary, .bytes)
        case .date: return make(.date, .date)
        case .timestamp: return make(.timestamp(unit: .micros, utc: false), .timestamp)
        case .timestamptz: return make(.timestamp(unit: .micros, utc: true), .timestamptz)
        case .time: return make(.time(unit: .micros, utc: false), .time)
        case .uuid: return make(.string, .uuid)
        default:
            throw FerryError(
                .unsupported, "\(query): column \(name) is of type \(column.dataType), which Ferry does not write to Parquet",
                fix: "cast it in the query, e.g. \(name)::text")
        }
    }

    /// Appends one non-null value from its binary form (a COPY field or a result cell); fixed-width types must be
    /// exactly their width. The caller names the row and column in an error.
    @inline(__always)
    static func append(raw: UnsafeRawBufferPointer, _ conversion: Conversion, to writer: ParquetColumnWriter) throws(FerryError) {
        @inline(__always) func load<T: FixedWidthInteger>(_: T.Type) throws(FerryError) -> T {
            guard raw.count == MemoryLayout<T>.size else { throw malformed() }
            return T(bigEndian: raw.loadUnaligned(as: T.self))
        }
        switch conversion {
        case .boolean: writer.append(try load(UInt8.self) != 0)
        case .int16: writer.append(Int32(try load(Int16.self)))
        case .int32: writer.append(try load(Int32.self))
        case .int64: writer.append(try load(Int64.self))
        case .float32: writer.append(Float(bitPattern: try load(UInt32.self)))
        case .float64: writer.append(Double(bitPattern: try load(UInt64.self)))
        case .date:
            let days = try load(Int32.self)
            guard days != Int32.max, days != Int32.min else { throw infinite() }
            writer.append(days &+ Self.epochDays)
        case .timestamp, .timestamptz:
            let micros = try load(Int64.self)
            guard micros != Int64.max, micros != Int64.min else { throw infinite() }
            writer.append(micros &+ Self.epochMicros)
        case .time: writer.append(try load(Int64.self))
        case .bytes:
            try appendBytes(raw, to: writer)
        case .jsonb:
            // A version byte (1), then the text.
            guard raw.first == 1 else { throw malformed() }
            try appendBytes(UnsafeRawBufferPointer(rebasing: raw.dropFirst()), to: writer)
        case .uuid:
            guard raw.count == 16 else { throw malformed() }
            try appendBytes(Self.uuidText(Array(raw)), to: writer)
        case .numeric(let precision, let scale):
            var buffer = ByteBuffer(bytes: raw)
            try appendNumeric(&buffer, precision: precision, scale: scale, to: writer)
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

    /// numeric's binary form: digit count, weight, sign, display scale, then base-10000 digits.
    private static func appendNumeric(
        _ buffer: inout ByteBuffer, precision: Int, scale: Int, to writer: ParquetColumnWriter
    ) throws(FerryError) {
        guard let count = buffer.readInteger(as: Int16.self), let weight = buffer.readInteger(as: Int16.self),
            let sign = buffer.readInteger(as: UInt16.self), buffer.readInteger(as: Int16.self) != nil, count >= 0,
            buffer.readableBytes == Int(count) * 2
        else { throw malformed() }
        guard sign == 0 || sign == 0x4000 else {
            throw FerryError(
                .invalidInput, "NaN or infinity has no DECIMAL value", fix: "filter it out or cast the column to text in the query")
        }
        // Digit i is worth 10000^(weight - i); the unscaled value is the number times 10^scale. The server rounded to
        // the column's scale, so digits past it are zeros.
        var digits: [Int16] = []
        digits.reserveCapacity(Int(count))
        for _ in 0..<count { digits.append(buffer.readInteger(as: Int16.self) ?? 0) }
        guard digits.allSatisfy({ (0..<10_000).contains($0) }) else { throw malformed() }
        if precision <= 18 {
            var unscaled: Int64 = 0
            for (index, digit) in digits.enumerated() {
                let exponent = (Int(weight) - index) * 4 + scale
                if exponent >= 0 {
                    unscaled &+= Int64(digit) &* Self.power10(exponent)
                } else if exponent > -4 {
                    unscaled &+= Int64(digit) / Self.power10(-exponent)
                }
            }
            if sign == 0x4000 { unscaled = -unscaled }
            if precision <= 9 { writer.append(Int32(truncatingIfNeeded: unscaled)) } else { writer.append(unscaled) }
            return
        }
        // Wider: through decimal text.
        func padded(_ digit: Int16) -> String {
            let text = String(digit)
            return String(repeating: "0", count: 4 - text.count) + text
        }
        var whole = ""
        if weight >= 0 {
            for index in 0...Int(weight) {
                let digit = index < digits.count ? digits[index] : 0
                whole += index == 0 ? String(digit) : padded(digit)
            }
        } else {
            whole = "0"
        }
        var fraction = weight < -1 ? String(repeating: "0000", count: -Int(weight) - 1) : ""
        for index in max(0, Int(weight) + 1)..<max(max(0, Int(weight) + 1), digits.count) { fraction += padded(digits[index]) }
        let decimal = (sign == 0x4000 ? "-" : "") + whole + (fraction.isEmpty ? "" : "." + fraction)
        guard let unscaled = DecimalUnscaled.parse(decimal, scale: scale),
            let bytes = unscaled.bigEndian(width: ParquetColumn.decimalWidth(precision: precision))
        else { throw malformed() }
        try appendBytes(bytes, to: writer)
    }

    static let powers: [Int64] = (0...18).map { exponent in (0..<exponent).reduce(Int64(1)) { value, _ in value * 10 } }

    @inline(__always) static func power10(_ exponent: Int) -> Int64 {
        exponent >= 0 && exponent <= 18 ? powers[exponent] : 0
    }

    static func uuidText(_ bytes: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 15)])
        }
        return out
    }

    private static func malformed() -> FerryError {
        FerryError(.protocolViolation, "the server sent a value that does not decode as its type")
    }

    private static func infinite() -> FerryError {
        FerryError(.invalidInput, "infinity has no Parquet value", fix: "filter it out or cast the column to text in the query")
    }
}
