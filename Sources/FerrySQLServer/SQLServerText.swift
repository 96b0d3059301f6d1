import CFreeTDS
import FerryCore
package import NIOCore

/// SQL Server values, as DB-Library hands them over, written as PostgreSQL prints the mirror's type: what COPY reads
/// and what a comparison with the mirror sees. Full precision: decimal(38) digit for digit, money to 4 places,
/// datetime's 1/300 s ticks to the microsecond, time/datetime2/datetimeoffset to the microsecond (their 7th digit is
/// cut, never rounded: 23:59:59.9999999 must not become the next day), floats as their shortest exact text.
package enum SQLServerText {
    /// The type numbers DB-Library reports (`dbcoltype`), by name.
    package enum Kind: Sendable, Equatable {
        case bit, tinyint, smallint, int, bigint, real, float, money, smallmoney, decimal
        case text, binary, uniqueidentifier
        case datetime, smalldatetime, date, time, datetime2, datetimeoffset
        case unsupported(Int32)

        package init(type: Int32) {
            switch type {
            case Int32(SYBBIT), Int32(SYBBITN): self = .bit
            case Int32(SYBINT1): self = .tinyint
            case Int32(SYBINT2): self = .smallint
            case Int32(SYBINT4): self = .int
            case Int32(SYBINT8): self = .bigint
            case Int32(SYBREAL): self = .real
            case Int32(SYBFLT8): self = .float
            case Int32(SYBMONEY): self = .money
            case Int32(SYBMONEY4): self = .smallmoney
            case Int32(SYBDECIMAL), Int32(SYBNUMERIC): self = .decimal
            case Int32(SYBCHAR), Int32(SYBVARCHAR), Int32(SYBTEXT), Int32(SYBNTEXT),
                Int32(SYBNVARCHAR):
                self = .text
            case Int32(SYBBINARY), Int32(SYBVARBINARY), Int32(SYBIMAGE): self = .binary
            case Int32(FERRY_SYBUNIQUE): self = .uniqueidentifier
            case Int32(SYBDATETIME): self = .datetime
            case Int32(SYBDATETIME4): self = .smalldatetime
            case Int32(SYBMSDATE): self = .date
            case Int32(SYBMSTIME): self = .time
            case Int32(SYBMSDATETIME2): self = .datetime2
            case Int32(SYBMSDATETIMEOFFSET): self = .datetimeoffset
            default: self = .unsupported(type)
            }
        }
    }

    /// A value DB-Library delivered in a form this code does not read.
    package struct Unreadable: Error, CustomStringConvertible {
        package var kind: Kind
        package var length: Int
        package var description: String { "a \(kind) value of \(length) bytes that Ferry cannot read" }
    }

    /// Appends `bytes`, a value of `kind`, as PostgreSQL text. `decimal` converts through DB-Library (`convert`).
    /// With `fullPrecision`, time, datetime2 and datetimeoffset keep a 7th fractional digit (for positions, which must
    /// name the exact value; PostgreSQL itself takes only six).
    package static func append(
        _ kind: Kind, _ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer, fullPrecision: Bool = false,
        decimal convert: (UnsafeRawBufferPointer, inout ByteBuffer) -> Bool
    ) throws {
        func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard bytes.count >= MemoryLayout<T>.size else { throw Unreadable(kind: kind, length: bytes.count) }
            return T(littleEndian: bytes.loadUnaligned(as: T.self))
        }
        switch kind {
        case .bit: buffer.writeInteger(try load(UInt8.self) != 0 ? UInt8(ascii: "t") : UInt8(ascii: "f"))
        case .tinyint: writeSigned(Int64(try load(UInt8.self)), into: &buffer)
        case .smallint: writeSigned(Int64(try load(Int16.self)), into: &buffer)
        case .int: writeSigned(Int64(try load(Int32.self)), into: &buffer)
        case .bigint: writeSigned(try load(Int64.self), into: &buffer)
        case .real: buffer.writeString(floatText(Float(bitPattern: try load(UInt32.self))))
        case .float: buffer.writeString(floatText(Double(bitPattern: try load(UInt64.self))))
        case .money:
            // DBMONEY: the high 32 bits, then the low 32 bits, of ten-thousandths.
            let high = Int64(try load(Int32.self))
            guard bytes.count >= 8 else { throw Unreadable(kind: kind, length: bytes.count) }
            let low = Int64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            writeScaled(high << 32 | low, scale: 4, into: &buffer)
        case .smallmoney: writeScaled(Int64(try load(Int32.self)), scale: 4, into: &buffer)
        case .decimal:
            guard convert(bytes, &buffer) else { throw Unreadable(kind: kind, length: bytes.count) }
        case .text: buffer.writeBytes(bytes)
        case .binary:
            buffer.writeString("\\x")
            writeHex(bytes, into: &buffer)
        case .uniqueidentifier:
            guard bytes.count == 16 else { throw Unreadable(kind: kind, length: bytes.count) }
            // Data1 (4 bytes), Data2 and Data3 (2 each) little-endian, then 8 bytes as they are.
            let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
            for index in order {
                if index < 0 {
                    buffer.writeInteger(UInt8(ascii: "-"))
                } else {
                    writeHex(UnsafeRawBufferPointer(rebasing: bytes[index..<index + 1]), into: &buffer)
                }
            }
        case .datetime, .smalldatetime:
            guard let (day, microseconds) = dayAndMicroseconds(kind, bytes) else { throw Unreadable(kind: kind, length: bytes.count) }
            writeDate(day, into: &buffer, then: UInt8(ascii: " "))
            writeTime(microseconds: Int(microseconds), into: &buffer)
        case .date, .time, .datetime2, .datetimeoffset:
            guard bytes.count >= MemoryLayout<DBDATETIMEALL>.size else { throw Unreadable(kind: kind, length: bytes.count) }
            let value = bytes.loadUnaligned(as: DBDATETIMEALL.self)
            // 100 ns units since midnight; the 7th digit is cut.
            if kind != .time {
                writeDate(Int(value.date), into: &buffer, then: kind == .date ? nil : UInt8(ascii: " "))
            }
            if kind != .date {
                if fullPrecision {
                    writeTime(Int(value.time), digits: 7, into: &buffer)
                } else {
                    writeTime(microseconds: Int(value.time / 10), into: &buffer)
                }
            }
            // DB-Library keeps a datetimeoffset in UTC with its offset beside it: UTC is the instant.
            if kind == .datetimeoffset { buffer.writeString("+00") }
        case .unsupported:
            throw Unreadable(kind: kind, length: bytes.count)
        }
    }

    /// The day (since 1900-01-01, DB-Library's day 0) and the microseconds since midnight of a `datetime`,
    /// `smalldatetime`, `date`, `time`, `datetime2` or `datetimeoffset` (in UTC) value as DB-Library holds it, converted
    /// as the text is: datetime's 1/300 s ticks to the nearest microsecond, a 7th fractional digit cut. nil for
    /// another kind or a value of the wrong size.
    package static func dayAndMicroseconds(_ kind: Kind, _ bytes: UnsafeRawBufferPointer) -> (day: Int, microseconds: Int64)? {
        switch kind {
        case .datetime:
            guard bytes.count >= 8 else { return nil }
            let days = Int(Int32(littleEndian: bytes.loadUnaligned(as: Int32.self)))
            let ticks = Int64(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self)))
            return (days, (ticks * 10_000 + 1) / 3)
        case .smalldatetime:
            guard bytes.count >= 4 else { return nil }
            let days = Int(UInt16(littleEndian: bytes.loadUnaligned(as: UInt16.self)))
            let minutes = Int64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            return (days, minutes * 60_000_000)
        case .date, .time, .datetime2, .datetimeoffset:
            guard bytes.count >= MemoryLayout<DBDATETIMEALL>.size else { return nil }
            let value = bytes.loadUnaligned(as: DBDATETIMEALL.self)
            guard value.time < 864_000_000_000 else { return nil }
            return (Int(value.date), Int64(value.time / 10))
        default:
            return nil
        }
    }

    /// A decimal/numeric (DB-Library's type number `type`) as text, through DB-Library's own conversion (38 digits
    /// exactly; no connection needed); false when it does not convert.
    package static func appendDecimal(type: Int32, _ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) -> Bool {
        withUnsafeTemporaryAllocation(of: BYTE.self, capacity: 80) { target in
            let written = dbconvert(
                nil, type, bytes.baseAddress?.assumingMemoryBound(to: BYTE.self), DBINT(bytes.count), Int32(SYBCHAR), target.baseAddress,
                DBINT(target.count))
            guard written > 0 else { return false }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(target).prefix(Int(written))))
            return true
        }
    }

    /// PostgreSQL's float text: the shortest text that reads back exactly, `Infinity`/`NaN`, no trailing `.0`.
    static func floatText<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    static func writeScaled(_ value: Int64, scale: Int, into buffer: inout ByteBuffer) {
        let magnitude = value.magnitude
        var divisor: UInt64 = 1
        for _ in 0..<scale { divisor *= 10 }
        if value < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        writeUnsigned(magnitude / divisor, width: 1, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeUnsigned(magnitude % divisor, width: scale, into: &buffer)
    }

    /// `value` in decimal digits, straight into `buffer` (no String in between: this runs for every value read).
    static func writeSigned(_ value: Int64, into buffer: inout ByteBuffer) {
        if value < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        writeUnsigned(value.magnitude, width: 1, into: &buffer)
    }

    /// `value`'s digits, zero-padded on the left to `width`.
    static func writeUnsigned(_ value: UInt64, width: Int, into buffer: inout ByteBuffer) {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        let total = max(count, width)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            var remaining = value
            var index = total - 1
            while index >= 0 {
                out[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining % 10)
                remaining /= 10
                index -= 1
            }
            return total
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeHex(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: bytes.count * 2)
        for byte in bytes {
            buffer.writeInteger(hexDigits[Int(byte >> 4)])
            buffer.writeInteger(hexDigits[Int(byte & 0x0F)])
        }
    }

    /// Days since 1900-01-01 (negative before it) as `YYYY-MM-DD`, then `separator` when there is one.
    static func writeDate(_ daysSince1900: Int, into buffer: inout ByteBuffer, then separator: UInt8? = nil) {
        let (year, month, day) = CivilDate.from(daysSince1970: daysSince1900 - 25_567)
        guard (0...9999).contains(year) else {
            writeDate(year: year, month: month, day: day, into: &buffer)
            if let separator { buffer.writeInteger(separator) }
            return
        }
        // The usual years: the whole date in one write (this runs for every value read).
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 11) { out in
            var text = FixedText(out)
            text.digits(year, width: 4)
            text.byte(UInt8(ascii: "-"))
            text.digits(month, width: 2)
            text.byte(UInt8(ascii: "-"))
            text.digits(day, width: 2)
            if let separator { text.byte(separator) }
            return text.count
        }
    }

    /// Any year, with a sign before it and more than four digits when it has them.
    private static func writeDate(year: Int, month: Int, day: Int, into buffer: inout ByteBuffer) {
        writePadded(year, width: 4, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writePadded(month, width: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writePadded(day, width: 2, into: &buffer)
    }

    /// `HH:MM:SS`, then `.ffffff` without trailing zeros when there is a fraction (as PostgreSQL prints it).
    static func writeTime(microseconds: Int, into buffer: inout ByteBuffer) {
        writeTime(microseconds, digits: 6, into: &buffer)
    }

    /// `HH:MM:SS` and up to `digits` fractional digits of `units` (10^-digits s since midnight), without trailing zeros;
    /// seven digits (full precision) are always written, zeros included.
    static func writeTime(_ units: Int, digits: Int, into buffer: inout ByteBuffer) {
        var perSecond = 1
        for _ in 0..<digits { perSecond *= 10 }
        let seconds = units / perSecond
        if units >= 0, seconds < 360_000, digits <= 7 {
            // Up to 99 hours and seven digits: the whole time in one write (this runs for every value read).
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 17) { out in
                var text = FixedText(out)
                text.digits(seconds / 3600, width: 2)
                text.byte(UInt8(ascii: ":"))
                text.digits(seconds / 60 % 60, width: 2)
                text.byte(UInt8(ascii: ":"))
                text.digits(seconds % 60, width: 2)
                var fraction = units % perSecond
                var width = digits
                if digits != 7 {
                    guard fraction > 0 else { return text.count }
                    while fraction % 10 == 0 {
                        fraction /= 10
                        width -= 1
                    }
                }
                text.byte(UInt8(ascii: "."))
                text.digits(fraction, width: width)
                return text.count
            }
            return
        }
        writePadded(seconds / 3600, width: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writePadded(seconds / 60 % 60, width: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writePadded(seconds % 60, width: 2, into: &buffer)
        var fraction = units % perSecond
        if digits == 7 {
            // Full precision: always seven digits, so that positions are fixed-width text.
            buffer.writeInteger(UInt8(ascii: "."))
            writePadded(fraction, width: 7, into: &buffer)
            return
        }
        guard fraction > 0 else { return }
        var width = digits
        while fraction % 10 == 0 {
            fraction /= 10
            width -= 1
        }
        buffer.writeInteger(UInt8(ascii: "."))
        writePadded(fraction, width: width, into: &buffer)
    }

    static func writePadded(_ value: Int, width: Int, into buffer: inout ByteBuffer) {
        if value < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        writeUnsigned(UInt64(value.magnitude), width: width, into: &buffer)
    }
}

/// Text of a known greatest length written into the space a buffer lends (`writeWithUnsafeMutableBytes`): every write
/// is checked against that space.
private struct FixedText {
    let out: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        precondition(count < out.count)
        out[count] = value
        count += 1
    }

    /// The last `width` decimal digits of `value` (not negative), zero-padded on the left.
    @inline(__always)
    mutating func digits(_ value: Int, width: Int) {
        precondition(value >= 0 && width >= 0 && count + width <= out.count)
        var rest = value
        var index = count + width - 1
        while index >= count {
            out[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
            index -= 1
        }
        count += width
    }
}
