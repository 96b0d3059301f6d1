import NIOCore

/// An RPC request ([MS-TDS] 2.2.6.6): a procedure (by name or well-known id) and its parameters, each value already
/// turned into the text PostgreSQL reads for it (`nil` for NULL). Only `sp_executesql` is run by the emulator.
struct TDSRPCRequest {
    struct Parameter {
        var name: String
        /// The TDS type the client sent the value as (for logs and tests).
        var type: UInt8
        var text: String?
    }

    var procedure: String
    var parameters: [Parameter]

    /// Well-known procedure ids ([MS-TDS] 2.2.6.6, ProcID).
    static let procedures: [UInt16: String] = [10: "sp_executesql", 11: "sp_prepare", 12: "sp_execute", 13: "sp_prepexec", 15: "sp_unprepare"]

    init(_ payload: ByteBuffer) throws {
        var buffer = payload
        guard let nameLength = buffer.readInteger(endianness: .little, as: UInt16.self) else { throw TDSProtocolError("an RPC without a name") }
        if nameLength == 0xFFFF {
            guard let id = buffer.readInteger(endianness: .little, as: UInt16.self) else { throw TDSProtocolError("an RPC without its id") }
            procedure = Self.procedures[id] ?? "procedure \(id)"
        } else {
            guard let name = buffer.readUTF16(units: Int(nameLength)) else { throw TDSProtocolError("an RPC name past the message") }
            procedure = name
        }
        guard buffer.readInteger(endianness: .little, as: UInt16.self) != nil else { throw TDSProtocolError("an RPC without option flags") }
        parameters = []
        while buffer.readableBytes > 0 {
            // A batch separator (0x80 or 0xFF) would start the next call; the emulator runs one call per request.
            if let next = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), next == 0x80 || next == 0xFF { break }
            parameters.append(try Self.readParameter(&buffer))
        }
    }

    private static func readParameter(_ buffer: inout ByteBuffer) throws -> Parameter {
        guard let nameLength = buffer.readInteger(as: UInt8.self), let name = buffer.readUTF16(units: Int(nameLength)),
            buffer.readInteger(as: UInt8.self) != nil,  // status flags (output parameter, default value)
            let type = buffer.readInteger(as: UInt8.self)
        else { throw TDSProtocolError("an RPC parameter cut short") }
        let text = try TDSParameterValue.read(type: type, from: &buffer)
        return Parameter(name: name, type: type, text: text)
    }

    /// The names `@params` declares, in order: `@a int, @b decimal(10, 2)` → `["@a", "@b"]`.
    static func declaredNames(_ declarations: String) -> [String] {
        var names: [String] = []
        var depth = 0
        var current = ""
        for character in declarations + "," {
            switch character {
            case "(": depth += 1
            case ")": depth -= 1
            case "," where depth == 0:
                if let name = current.split(whereSeparator: \.isWhitespace).first { names.append(String(name)) }
                current = ""
                continue
            default: break
            }
            current.append(character)
        }
        return names
    }
}

/// A value's TYPE_INFO ([MS-TDS] 2.2.5.4): the type byte and what follows it (maximum length, precision, scale, collation).
struct TDSTypeInfo: Sendable {
    var type: UInt8
    /// The maximum length in bytes (0xFFFF: PLP; for text, ntext and image the 4-byte maximum).
    var maximum = 0
    var precision = 0
    var scale = 0
}

/// A parameter's or bulk-load row's TYPE_INFO and value ([MS-TDS] 2.2.5.4, 2.2.5.5) read as the text PostgreSQL takes
/// for it.
enum TDSParameterValue {
    static func read(type: UInt8, from buffer: inout ByteBuffer) throws -> String? {
        try readValue(try readInfo(type: type, from: &buffer), from: &buffer, inRow: false)
    }

    /// The TYPE_INFO after the type byte.
    static func readInfo(type: UInt8, from buffer: inout ByteBuffer) throws -> TDSTypeInfo {
        func byte() throws -> Int {
            guard let value = buffer.readInteger(as: UInt8.self) else { throw TDSProtocolError("a value's type cut short") }
            return Int(value)
        }
        var info = TDSTypeInfo(type: type)
        switch type {
        case 0x30, 0x32, 0x34, 0x38, 0x7F, 0x3B, 0x3E, 0x28: break
        case 0x26, 0x68, 0x6D, 0x24, 0x6F, 0x6E: info.maximum = try byte()
        case 0x29, 0x2A, 0x2B: info.scale = try byte()
        case 0x6A, 0x6C:
            info.maximum = try byte()
            info.precision = try byte()
            info.scale = try byte()
        case 0xE7, 0xEF, 0xA7, 0xAF, 0xA5, 0xAD:
            guard let maximum = buffer.readInteger(endianness: .little, as: UInt16.self) else { throw TDSProtocolError("a value's type cut short") }
            info.maximum = Int(maximum)
            if type != 0xA5 && type != 0xAD {
                guard buffer.readSlice(length: 5) != nil else { throw TDSProtocolError("a collation cut short") }
            }
        case 0x63, 0x23, 0x22:
            guard let maximum = buffer.readInteger(endianness: .little, as: Int32.self) else { throw TDSProtocolError("a value's type cut short") }
            info.maximum = Int(maximum)
            if type != 0x22 {
                guard buffer.readSlice(length: 5) != nil else { throw TDSProtocolError("a collation cut short") }
            }
        default:
            throw TDSProtocolError("the emulator does not read values of type 0x\(String(type, radix: 16)) yet")
        }
        return info
    }

    /// A value of `info`'s type. `inRow`: as a bulk-load ROW carries it (text, ntext and image with a text pointer).
    static func readValue(_ info: TDSTypeInfo, from buffer: inout ByteBuffer, inRow: Bool) throws -> String? {
        let type = info.type
        func byte() throws -> Int {
            guard let value = buffer.readInteger(as: UInt8.self) else { throw TDSProtocolError("a value cut short") }
            return Int(value)
        }
        func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard let value = buffer.readInteger(endianness: .little, as: T.self) else { throw TDSProtocolError("a value cut short") }
            return value
        }
        func bytes(_ count: Int) throws -> ByteBuffer {
            guard count >= 0, let slice = buffer.readSlice(length: count) else { throw TDSProtocolError("a value cut short") }
            return slice
        }
        switch type {
        // Fixed-length types: the value follows the type byte.
        case 0x30: return String(try integer(UInt8.self))
        case 0x32: return try integer(UInt8.self) != 0 ? "true" : "false"
        case 0x34: return String(try integer(Int16.self))
        case 0x38: return String(try integer(Int32.self))
        case 0x7F: return String(try integer(Int64.self))
        case 0x3B: return String(Float(bitPattern: try integer(UInt32.self)))
        case 0x3E: return String(Double(bitPattern: try integer(UInt64.self)))
        // Nullable fixed types: a length byte (0 = NULL) and the value.
        case 0x26, 0x68, 0x6D, 0x24:
            let length = try byte()
            if length == 0 { return nil }
            var value = try bytes(length)
            switch (type, length) {
            case (0x26, 1): return String(value.readInteger(as: UInt8.self)!)
            case (0x26, 2): return String(value.readInteger(endianness: .little, as: Int16.self)!)
            case (0x26, 4): return String(value.readInteger(endianness: .little, as: Int32.self)!)
            case (0x26, 8): return String(value.readInteger(endianness: .little, as: Int64.self)!)
            case (0x68, _): return value.readInteger(as: UInt8.self)! != 0 ? "true" : "false"
            case (0x6D, 4): return String(Float(bitPattern: value.readInteger(endianness: .little, as: UInt32.self)!))
            case (0x6D, 8): return String(Double(bitPattern: value.readInteger(endianness: .little, as: UInt64.self)!))
            case (0x24, 16):
                let raw = value.readBytes(length: 16)!
                let ordered = [raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]] + raw[8...]
                let hex = ordered.map { String($0, radix: 16).leftPadded(to: 2) }
                return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
            default: throw TDSProtocolError("a value of type 0x\(String(type, radix: 16)) with \(length) bytes")
            }
        // Dates and times: a length byte (0 = NULL), the time in 10^-scale s units, the days since 0001-01-01 (3 bytes),
        // and for datetimeoffset the offset in minutes (the time and date are UTC).
        case 0x28, 0x29, 0x2A, 0x2B:
            let scale = info.scale
            guard scale <= 7 else { throw TDSProtocolError("a time scale of \(scale)") }
            let length = try byte()
            if length == 0 { return nil }
            var value = try bytes(length)
            let timeBytes = type == 0x28 ? 0 : (scale <= 2 ? 3 : scale <= 4 ? 4 : 5)
            var units: UInt64 = 0
            for index in 0..<timeBytes {
                guard let part = value.readInteger(as: UInt8.self) else { throw TDSProtocolError("a time value cut short") }
                units |= UInt64(part) << (8 * UInt64(index))
            }
            var parts: [String] = []
            if type != 0x29 {
                guard let low = value.readInteger(endianness: .little, as: UInt16.self), let high = value.readInteger(as: UInt8.self) else {
                    throw TDSProtocolError("a date value cut short")
                }
                parts.append(dateText(daysSince0001: Int(low) | Int(high) << 16))
            }
            if type != 0x28 {
                var divisor: UInt64 = 1
                for _ in 0..<scale { divisor *= 10 }
                let seconds = units / divisor
                var text = String(format2(Int(seconds / 3600))) + ":" + format2(Int(seconds / 60 % 60)) + ":" + format2(Int(seconds % 60))
                if scale > 0 { text += "." + String(units % divisor).leftPadded(to: scale) }
                parts.append(text)
            }
            return parts.joined(separator: " ") + (type == 0x2B ? "+00" : "")
        // datetime / smalldatetime (nullable): days since 1900 and 1/300 s ticks, or days and minutes.
        case 0x6F:
            let length = try byte()
            if length == 0 { return nil }
            guard length == 4 || length == 8 else { throw TDSProtocolError("a datetime of \(length) bytes") }
            var value = try bytes(length)
            let daysTo1900 = 693_595
            if length == 4 {
                let days = Int(value.readInteger(endianness: .little, as: UInt16.self)!)
                let minutes = Int(value.readInteger(endianness: .little, as: UInt16.self)!)
                return dateText(daysSince0001: days + daysTo1900) + " " + format2(minutes / 60) + ":" + format2(minutes % 60) + ":00"
            }
            let days = Int(value.readInteger(endianness: .little, as: Int32.self)!)
            let ticks = Int(value.readInteger(endianness: .little, as: Int32.self)!)
            let microseconds = (ticks * 10_000 + 1) / 3
            let seconds = microseconds / 1_000_000
            return dateText(daysSince0001: days + daysTo1900) + " " + format2(seconds / 3600) + ":" + format2(seconds / 60 % 60) + ":"
                + format2(seconds % 60) + "." + String(microseconds % 1_000_000).leftPadded(to: 6)
        // decimal / numeric: length, sign (1 = positive), the magnitude little-endian.
        case 0x6A, 0x6C:
            let scale = info.scale
            let length = try byte()
            if length == 0 { return nil }
            guard length <= 17 else { throw TDSProtocolError("a decimal of \(length) bytes") }
            var value = try bytes(length)
            let positive = value.readInteger(as: UInt8.self)! == 1
            var magnitude: UInt128 = 0
            for (index, byte) in value.readableBytesView.enumerated() { magnitude |= UInt128(byte) << (8 * UInt128(index)) }
            var digits = String(magnitude).leftPadded(to: scale + 1)
            if scale > 0 { digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -scale)) }
            return (positive ? "" : "-") + digits
        // money / smallmoney (nullable): ten-thousandths, the high half first for money.
        case 0x6E:
            let length = try byte()
            if length == 0 { return nil }
            guard length == 4 || length == 8 else { throw TDSProtocolError("a money value of \(length) bytes") }
            var value = try bytes(length)
            let amount: Int64
            if length == 4 {
                amount = Int64(value.readInteger(endianness: .little, as: Int32.self)!)
            } else {
                let high = Int64(value.readInteger(endianness: .little, as: Int32.self)!)
                amount = high << 32 | Int64(value.readInteger(endianness: .little, as: UInt32.self)!)
            }
            let digits = String(amount.magnitude).leftPadded(to: 5)
            return (amount < 0 ? "-" : "") + digits.dropLast(4) + "." + digits.suffix(4)
        // Character and binary types with a 2-byte maximum length (0xFFFF: sent in chunks, PLP).
        case 0xE7, 0xEF, 0xA7, 0xAF, 0xA5, 0xAD:
            var value: ByteBuffer
            if info.maximum == 0xFFFF {
                guard let plp = try readPLP(&buffer) else { return nil }
                value = plp
            } else {
                let length = try integer(UInt16.self)
                if length == 0xFFFF { return nil }
                value = try bytes(Int(length))
            }
            return try text(of: type, value)
        // ntext, text, image: a 4-byte length; in a bulk-load row a text pointer (length 0 = NULL) and timestamp first.
        case 0x63, 0x23, 0x22:
            if inRow {
                let pointer = try byte()
                if pointer == 0 { return nil }
                _ = try bytes(pointer + 8)
            }
            let length = try integer(Int32.self)
            if length < 0 { return nil }
            return try text(of: type, try bytes(Int(length)))
        default:
            throw TDSProtocolError("the emulator does not read values of type 0x\(String(type, radix: 16)) yet")
        }
    }

    /// A character or binary value's bytes as PostgreSQL text.
    private static func text(of type: UInt8, _ value: ByteBuffer) throws -> String {
        var value = value
        switch type {
        case 0xE7, 0xEF, 0x63:
            guard value.readableBytes % 2 == 0, let text = value.readUTF16(units: value.readableBytes / 2) else {
                throw TDSProtocolError("a value that is not UTF-16")
            }
            return text
        case 0xA7, 0xAF, 0x23:
            // The emulator's collation is Latin-1 (code page 1252 for these characters).
            return String(String.UnicodeScalarView(value.readableBytesView.map { Unicode.Scalar($0) }))
        default:
            return "\\x" + value.readableBytesView.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        }
    }

    private static func format2(_ value: Int) -> String { String(value).leftPadded(to: 2) }

    /// `YYYY-MM-DD` of a day count from 0001-01-01 (proleptic Gregorian; H. Hinnant's civil_from_days).
    static func dateText(daysSince0001 days: Int) -> String {
        let shifted = days - 719_162 + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return String(year).leftPadded(to: 4) + "-" + format2(month) + "-" + format2(day)
    }

    /// A PLP value ([MS-TDS] 2.2.5.2.3): total length (or NULL), then chunks until a zero-length one.
    private static func readPLP(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let total = buffer.readInteger(endianness: .little, as: UInt64.self) else { throw TDSProtocolError("a PLP value cut short") }
        if total == 0xFFFF_FFFF_FFFF_FFFF { return nil }
        var value = ByteBuffer()
        while true {
            guard let chunk = buffer.readInteger(endianness: .little, as: UInt32.self) else { throw TDSProtocolError("a PLP chunk cut short") }
            if chunk == 0 { return value }
            guard var part = buffer.readSlice(length: Int(chunk)) else { throw TDSProtocolError("a PLP chunk past the message") }
            value.writeBuffer(&part)
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
