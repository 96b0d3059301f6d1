import Foundation
import NIOCore
import PostgresNIO

/// ROW values ([MS-TDS] 2.2.5.5) from PostgreSQL's binary values.
extension TDSColumn.SQLType {
    /// Days from 0001-01-01 to 2000-01-01 (PostgreSQL's epoch), and from 1900-01-01 (datetime's).
    static let daysTo2000From0001 = 730_119
    static let daysTo2000From1900 = 36_524
    static let microsecondsPerDay: Int64 = 86_400_000_000

    /// Writes `bytes` (PostgreSQL's binary form of a value of `pgType`) as this type's ROW value.
    func writeValue(_ bytes: ByteBuffer, pgType: PostgresDataType, into buffer: inout ByteBuffer) throws {
        var bytes = bytes
        switch self {
        case .bit:
            // The length (1), then the value.
            buffer.writeInteger(try Self.integer(&bytes, pgType) != 0 ? UInt16(0x0101) : UInt16(0x0001), endianness: .little)
        case .tinyint, .smallint, .int, .bigint:
            let value = try Self.integer(&bytes, pgType)
            switch self {
            case .tinyint:
                guard let byte = UInt8(exactly: value) else { throw TDSValueError(description: "\(value) is not a tinyint") }
                buffer.writeBytes([1, byte])
            case .smallint:
                guard let small = Int16(exactly: value) else { throw TDSValueError(description: "\(value) is not a smallint") }
                buffer.writeInteger(UInt8(2))
                buffer.writeInteger(small, endianness: .little)
            case .int:
                guard let int = Int32(exactly: value) else { throw TDSValueError(description: "\(value) is not an int") }
                buffer.writeInteger(UInt8(4))
                buffer.writeInteger(int, endianness: .little)
            default:
                buffer.writeInteger(UInt8(8))
                buffer.writeInteger(value, endianness: .little)
            }
        case .decimal(let precision, let scale):
            let (negative, magnitude) = try Self.numeric(&bytes, pgType, scale: scale)
            let length = Self.decimalLength(precision)
            buffer.writeInteger(UInt8(length))
            buffer.writeInteger(UInt8(negative ? 0 : 1))
            // The magnitude takes 4, 8, 12 or 16 bytes, little-endian.
            for i in 0..<(length - 1) { buffer.writeInteger(UInt8(truncatingIfNeeded: magnitude >> (8 * i))) }
        case .money, .smallmoney:
            let (negative, magnitude) = try Self.numeric(&bytes, pgType, scale: 4)
            guard magnitude <= UInt128(Int64.max) + (negative ? 1 : 0) else { throw TDSValueError(description: "a money value is out of range") }
            let value = negative ? Int64(truncatingIfNeeded: 0 &- UInt64(magnitude)) : Int64(magnitude)
            if self == .money {
                buffer.writeInteger(UInt8(8))
                buffer.writeInteger(Int32(truncatingIfNeeded: value >> 32), endianness: .little)
                buffer.writeInteger(UInt32(truncatingIfNeeded: value), endianness: .little)
            } else {
                guard let small = Int32(exactly: value) else { throw TDSValueError(description: "a smallmoney value is out of range") }
                buffer.writeInteger(UInt8(4))
                buffer.writeInteger(small, endianness: .little)
            }
        case .real, .float:
            let value: Double
            switch pgType {
            case .float4: value = Double(Float(bitPattern: bytes.readInteger(as: UInt32.self) ?? 0))
            case .float8: value = Double(bitPattern: bytes.readInteger(as: UInt64.self) ?? 0)
            default: value = Double(try Self.integer(&bytes, pgType))
            }
            if self == .real {
                buffer.writeInteger(UInt8(4))
                buffer.writeInteger(Float(value).bitPattern, endianness: .little)
            } else {
                buffer.writeInteger(UInt8(8))
                buffer.writeInteger(value.bitPattern, endianness: .little)
            }
        case .nvarchar(let length):
            Self.writeText(bytes, wide: true, plp: length == nil, into: &buffer)
        case .varchar(let length):
            Self.writeText(bytes, wide: false, plp: length == nil, into: &buffer)
        case .nchar:
            Self.writeText(bytes, wide: true, plp: false, into: &buffer)
        case .char:
            Self.writeText(bytes, wide: false, plp: false, into: &buffer)
        case .varbinary(let length):
            if length == nil {
                Self.writePLP(bytes, into: &buffer)
            } else {
                buffer.writeInteger(UInt16(bytes.readableBytes), endianness: .little)
                buffer.writeImmutableBuffer(bytes)
            }
        case .rowversion:
            guard bytes.readableBytes == 8 else { throw TDSValueError(description: "a rowversion is 8 bytes, not \(bytes.readableBytes)") }
            buffer.writeInteger(UInt16(8), endianness: .little)
            buffer.writeImmutableBuffer(bytes)
        case .binary(let length):
            // Fixed length: padded with zero bytes, as SQL Server stores binary(n).
            buffer.writeInteger(UInt16(length), endianness: .little)
            buffer.writeImmutableBuffer(bytes.getSlice(at: bytes.readerIndex, length: min(bytes.readableBytes, length)) ?? ByteBuffer())
            buffer.writeRepeatingByte(0, count: max(0, length - bytes.readableBytes))
        case .date:
            guard pgType == .date, let days = bytes.readInteger(as: Int32.self) else { throw Self.mismatch(self, pgType) }
            // The length (3), then the days, in one write.
            buffer.writeInteger(UInt32(Int(days) + Self.daysTo2000From0001) << 8 | 3, endianness: .little)
        case .time(let scale):
            guard pgType == .time, let micros = bytes.readInteger(as: Int64.self) else { throw Self.mismatch(self, pgType) }
            let length = Self.timeLength(scale)
            buffer.writeInteger(UInt8(length))
            Self.writeTime(micros, scale: scale, length: length, into: &buffer)
        case .datetime2(let scale) where pgType == .text || pgType == .varchar:
            // A text column declared datetime2(7) holds what PostgreSQL cannot: `YYYY-MM-DD HH:MM:SS.fffffff`, 100 ns.
            let text = String(buffer: bytes)
            guard let (days, units) = Self.parseDateTime7(text) else { throw TDSValueError(description: "\(text) is not a datetime2") }
            let length = Self.timeLength(scale)
            var scaled = units
            for _ in scale..<7 { scaled /= 10 }
            buffer.writeInteger(UInt8(length + 3))
            for i in 0..<length { buffer.writeInteger(UInt8(truncatingIfNeeded: scaled >> (8 * UInt64(i)))) }
            Self.writeUInt24(UInt32(days + Self.daysTo2000From0001), into: &buffer)
        case .datetime2(let scale), .datetimeoffset(let scale):
            guard pgType == .timestamp || pgType == .timestamptz, let micros = bytes.readInteger(as: Int64.self) else {
                throw Self.mismatch(self, pgType)
            }
            let (days, ofDay) = Self.split(micros)
            let length = Self.timeLength(scale)
            let offset = self == .datetimeoffset(scale)
            let units = Self.timeUnits(ofDay, scale: scale)
            let date = UInt32(days + Self.daysTo2000From0001)
            // The length, the time's `length` bytes, the date's three and the offset's two (0), in one write: each part
            // is stored with its whole integer and the next part overwrites what lies beyond it.
            let total = 1 + length + 3 + (offset ? 2 : 0)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16) { out in
                precondition(out.count >= 16 && length <= 5)
                out[0] = UInt8(total - 1)
                out.storeBytes(of: units.littleEndian, toByteOffset: 1, as: UInt64.self)
                out.storeBytes(of: date.littleEndian, toByteOffset: 1 + length, as: UInt32.self)
                if offset { out.storeBytes(of: UInt16(0), toByteOffset: 1 + length + 3, as: UInt16.self) }
                return total
            }
        case .datetime, .smalldatetime:
            guard pgType == .timestamp || pgType == .timestamptz, let micros = bytes.readInteger(as: Int64.self) else {
                throw Self.mismatch(self, pgType)
            }
            var (days, ofDay) = Self.split(micros)
            if self == .datetime {
                // 1/300 s ticks, rounded as SQL Server rounds a value it stores (.000, .003, .007).
                var ticks = (ofDay * 3 + 5_000) / 10_000
                if ticks == 25_920_000 {
                    ticks = 0
                    days += 1
                }
                buffer.writeInteger(UInt8(8))
                buffer.writeInteger(Int32(days + Self.daysTo2000From1900), endianness: .little)
                buffer.writeInteger(UInt32(ticks), endianness: .little)
            } else {
                var minutes = (ofDay + 30_000_000) / 60_000_000
                if minutes == 1440 {
                    minutes = 0
                    days += 1
                }
                guard let day = UInt16(exactly: days + Self.daysTo2000From1900) else {
                    throw TDSValueError(description: "a smalldatetime is out of range")
                }
                buffer.writeInteger(UInt8(4))
                buffer.writeInteger(day, endianness: .little)
                buffer.writeInteger(UInt16(minutes), endianness: .little)
            }
        case .uniqueidentifier:
            guard pgType == .uuid, let raw = bytes.readBytes(length: 16) else { throw Self.mismatch(self, pgType) }
            // The first three groups are little-endian on the wire.
            buffer.writeInteger(UInt8(16))
            buffer.writeBytes([raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]])
            buffer.writeBytes(raw[8...])
        }
    }

    /// `YYYY-MM-DD HH:MM:SS[.fffffff]` as days since 2000-01-01 and 100 ns units since midnight.
    static func parseDateTime7(_ text: String) -> (days: Int, units: UInt64)? {
        let parts = text.split(separator: " ")
        guard parts.count == 2 else { return nil }
        let date = parts[0].split(separator: "-").compactMap { Int($0) }
        let clock = parts[1].split(separator: ".", maxSplits: 1)
        let hms = clock[0].split(separator: ":").compactMap { Int($0) }
        guard date.count == 3, hms.count == 3 else { return nil }
        let digits = clock.count > 1 ? String(clock[1].prefix(7)) : ""
        guard let fraction = UInt64(digits.padding(toLength: 7, withPad: "0", startingAt: 0)) else { return nil }
        // Days from 2000-01-01 (civil calendar).
        let (y, m, d) = (date[0], date[1], date[2])
        let shifted = m <= 2 ? y - 1 : y
        let era = (shifted >= 0 ? shifted : shifted - 399) / 400
        let yoe = shifted - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468 - 10_957
        return (days, UInt64((hms[0] * 60 + hms[1]) * 60 + hms[2]) * 10_000_000 + fraction)
    }

    static func mismatch(_ type: Self, _ pgType: PostgresDataType) -> TDSValueError {
        TDSValueError(description: "a PostgreSQL \(pgType) value cannot be served as \(type)")
    }

    static func integer(_ bytes: inout ByteBuffer, _ pgType: PostgresDataType) throws -> Int64 {
        switch pgType {
        case .bool: return Int64(bytes.readInteger(as: UInt8.self) ?? 0)
        case .int2: return Int64(bytes.readInteger(as: Int16.self) ?? 0)
        case .int4: return Int64(bytes.readInteger(as: Int32.self) ?? 0)
        case .int8: return bytes.readInteger(as: Int64.self) ?? 0
        case .numeric:
            let (negative, magnitude) = try numeric(&bytes, pgType, scale: 0)
            guard magnitude <= UInt128(Int64.max) else { throw TDSValueError(description: "an integer is out of range") }
            return negative ? -Int64(magnitude) : Int64(magnitude)
        default: throw TDSValueError(description: "a PostgreSQL \(pgType) value is not an integer")
        }
    }

    /// PostgreSQL's binary numeric (base-10000 digits) as a sign and the magnitude scaled by 10^scale.
    static func numeric(_ bytes: inout ByteBuffer, _ pgType: PostgresDataType, scale: Int) throws -> (Bool, UInt128) {
        guard pgType == .numeric else { return try integerAsNumeric(&bytes, pgType, scale: scale) }
        guard let count = bytes.readInteger(as: Int16.self), let weight = bytes.readInteger(as: Int16.self),
            let sign = bytes.readInteger(as: UInt16.self), bytes.readInteger(as: Int16.self) != nil, count >= 0
        else { throw TDSValueError(description: "a numeric value is malformed") }
        guard sign != 0xC000 else { throw TDSValueError(description: "NaN has no SQL Server decimal") }
        var magnitude: UInt128 = 0
        // Digit i stands for digit × 10000^(weight − i); scaled by 10^scale that is 10^(4(weight − i) + scale).
        for i in 0..<Int(count) {
            guard let digit = bytes.readInteger(as: Int16.self) else { throw TDSValueError(description: "a numeric value is malformed") }
            let exponent = 4 * (Int(weight) - i) + scale
            var term = UInt128(digit)
            if exponent >= 0 {
                for _ in 0..<exponent {
                    let (next, overflow) = term.multipliedReportingOverflow(by: 10)
                    guard !overflow else { throw TDSValueError(description: "a numeric value has more than 38 digits") }
                    term = next
                }
            } else {
                for _ in 0..<min(-exponent, 5) { term /= 10 }
            }
            let (sum, overflow) = magnitude.addingReportingOverflow(term)
            guard !overflow else { throw TDSValueError(description: "a numeric value has more than 38 digits") }
            magnitude = sum
        }
        return (sign == 0x4000 && magnitude != 0, magnitude)
    }

    static func integerAsNumeric(_ bytes: inout ByteBuffer, _ pgType: PostgresDataType, scale: Int) throws -> (Bool, UInt128) {
        let value = try integer(&bytes, pgType)
        var magnitude = UInt128(value.magnitude)
        for _ in 0..<scale { magnitude *= 10 }
        return (value < 0, magnitude)
    }

    /// Microseconds since 2000-01-01 as whole days and microseconds into the day.
    static func split(_ micros: Int64) -> (days: Int, ofDay: Int64) {
        var days = micros / microsecondsPerDay
        var ofDay = micros % microsecondsPerDay
        if ofDay < 0 {
            ofDay += microsecondsPerDay
            days -= 1
        }
        return (Int(days), ofDay)
    }

    static func writeTime(_ micros: Int64, scale: Int, length: Int, into buffer: inout ByteBuffer) {
        writeLittleEndian(timeUnits(micros, scale: scale), length: length, into: &buffer)
    }

    /// Microseconds as units of 10^-scale s.
    static func timeUnits(_ micros: Int64, scale: Int) -> UInt64 {
        var units = UInt64(micros)
        if scale >= 6 {
            for _ in 6..<scale { units *= 10 }
        } else {
            for _ in scale..<6 { units /= 10 }
        }
        return units
    }

    static func writeUInt24(_ value: UInt32, into buffer: inout ByteBuffer) {
        writeLittleEndian(UInt64(value), length: 3, into: &buffer)
    }

    /// The low `length` bytes (at most 8) of `value`, little-endian, in one write.
    static func writeLittleEndian(_ value: UInt64, length: Int, into buffer: inout ByteBuffer) {
        precondition((0...8).contains(length))
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 8) { out in
            precondition(out.count >= 8)
            out.storeBytes(of: value.littleEndian, as: UInt64.self)
            return length
        }
    }

    /// PostgreSQL's text (UTF-8) as a character value: UTF-16LE when `wide` (nvarchar, nchar), Latin-1 otherwise;
    /// after a two-byte length, or as PLP when `plp` ((max) types).
    static func writeText(_ utf8: ByteBuffer, wide: Bool, plp: Bool, into buffer: inout ByteBuffer) {
        let ascii = utf8.withUnsafeReadableBytes { bytes in bytes.allSatisfy { $0 < 0x80 } }
        guard ascii else {
            let text = String(buffer: utf8)
            var encoded = ByteBuffer()
            if wide { encoded.writeUTF16(text) } else { encoded.writeBytes(Self.latin1(text)) }
            if plp {
                Self.writePLP(encoded, into: &buffer)
            } else {
                buffer.writeInteger(UInt16(encoded.readableBytes), endianness: .little)
                buffer.writeImmutableBuffer(encoded)
            }
            return
        }
        // ASCII (the usual text): each byte is its Latin-1 byte, and its UTF-16 unit with a zero byte after it. The
        // lengths, the value and a PLP terminator in one write.
        let count = utf8.readableBytes * (wide ? 2 : 1)
        let header = plp ? (count > 0 ? 12 : 8) : 2
        let total = header + count + (plp ? 4 : 0)
        utf8.withUnsafeReadableBytes { source in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
                precondition(out.count >= total)
                if plp {
                    out.storeBytes(of: UInt64(count).littleEndian, toByteOffset: 0, as: UInt64.self)
                    if count > 0 { out.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 8, as: UInt32.self) }
                    out.storeBytes(of: UInt32(0), toByteOffset: header + count, as: UInt32.self)
                } else {
                    out.storeBytes(of: UInt16(count).littleEndian, toByteOffset: 0, as: UInt16.self)
                }
                if wide {
                    var index = header
                    for byte in source {
                        out[index] = byte
                        out[index + 1] = 0
                        index += 2
                    }
                } else {
                    UnsafeMutableRawBufferPointer(rebasing: out[header..<header + count]).copyMemory(from: source)
                }
                return total
            }
        }
    }

    /// A PLP value ([MS-TDS] 2.2.5.2.3): the total length, one chunk, the terminator.
    static func writePLP(_ data: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt64(data.readableBytes), endianness: .little)
        if data.readableBytes > 0 {
            buffer.writeInteger(UInt32(data.readableBytes), endianness: .little)
            buffer.writeImmutableBuffer(data)
        }
        buffer.writeInteger(UInt32(0), endianness: .little)
    }

    /// Latin-1 bytes for an ANSI column (characters beyond it become '?', as SQL Server does for a code page).
    static func latin1(_ text: String) -> [UInt8] {
        text.unicodeScalars.map { $0.value <= 0xFF ? UInt8($0.value) : UInt8(ascii: "?") }
    }
}
