/// One value of a row read back, in the column's logical meaning; `ferry parquet cat` prints these as JSON the way
/// pyarrow's `to_pylist()` gives them (decimals as strings, timestamps in ISO 8601).
package enum ParquetValue: Sendable, Equatable {
    case null
    case boolean(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case float(Float)
    case double(Double)
    case string(String)
    case binary([UInt8])
    /// Days since 1970-01-01.
    case date(Int32)
    /// Since 1970-01-01 in `unit`; `utc`: adjusted to UTC (printed with `Z`).
    case timestamp(Int64, unit: TimeUnit, utc: Bool)
    /// Since midnight in `unit`.
    case time(Int64, unit: TimeUnit)
    /// The exact decimal text, e.g. `-12.50`.
    case decimal(String)

    /// The value as JSON text.
    package var json: String {
        switch self {
        case .null: return "null"
        case .boolean(let value): return value ? "true" : "false"
        case .integer(let value): return "\(value)"
        case .unsigned(let value): return "\(value)"
        case .float(let value): return Self.number(Double(value), text: "\(value)")
        case .double(let value): return Self.number(value, text: "\(value)")
        case .string(let value): return JSONString.quote(value)
        case .binary(let bytes): return JSONString.quote(Base64.encode(bytes))
        case .date, .timestamp, .time, .decimal: return JSONString.quote(text)
        }
    }

    /// The value as text: what `json` quotes for dates, times and decimals.
    package var text: String {
        switch self {
        case .null: return "null"
        case .date(let days): return CivilDate.format(days: Int64(days))
        case .timestamp(let value, let unit, let utc):
            let perSecond = unit.perSecond
            let (seconds, fraction) = Self.floorDivide(value, perSecond)
            let (days, secondOfDay) = Self.floorDivide(seconds, 86_400)
            return CivilDate.format(days: days) + "T" + Self.clock(secondOfDay, fraction: fraction, unit: unit) + (utc ? "Z" : "")
        case .time(let value, let unit):
            let (seconds, fraction) = Self.floorDivide(value, unit.perSecond)
            return Self.clock(seconds, fraction: fraction, unit: unit)
        case .decimal(let text): return text
        case .string(let text): return text
        default: return json
        }
    }

    /// JSON has no NaN or infinities: they are printed as strings, as pandas' `to_json` does.
    static func number(_ value: Double, text: String) -> String {
        if value.isNaN { return "\"NaN\"" }
        if value.isInfinite { return value > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        return text
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    static func clock(_ secondOfDay: Int64, fraction: Int64, unit: TimeUnit) -> String {
        let hours = secondOfDay / 3600
        let minutes = secondOfDay / 60 % 60
        let seconds = secondOfDay % 60
        var text = pad(hours, 2) + ":" + pad(minutes, 2) + ":" + pad(seconds, 2)
        if fraction != 0 { text += "." + pad(fraction, unit.digits) }
        return text
    }

    static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension TimeUnit {
    var perSecond: Int64 {
        switch self {
        case .millis: 1000
        case .micros: 1_000_000
        case .nanos: 1_000_000_000
        }
    }

    var digits: Int {
        switch self {
        case .millis: 3
        case .micros: 6
        case .nanos: 9
        }
    }
}

/// Proleptic Gregorian dates from days since 1970-01-01 (Howard Hinnant's civil-from-days).
enum CivilDate {
    static func format(days: Int64) -> String {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let yearText = year < 0 ? "-" + ParquetValue.pad(-year, 4) : ParquetValue.pad(year, 4)
        return yearText + "-" + ParquetValue.pad(month, 2) + "-" + ParquetValue.pad(day, 2)
    }
}

/// JSON string quoting without Foundation.
package enum JSONString {
    package static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Standard base64 (with padding), for binary values in JSON.
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int(chunk >> UInt32(shift) & 63)]) }
            index += 3
        }
        let left = bytes.count - index
        if left > 0 {
            let chunk = UInt32(bytes[index]) << 16 | (left == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(left == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Decimal text from an unscaled two's-complement big-endian integer of any width.
package enum DecimalText {
    package static func format(bigEndian bytes: some Collection<UInt8>, scale: Int) -> String {
        var magnitude = Array(bytes)
        let negative = (magnitude.first ?? 0) >= 0x80
        if negative {
            // Two's complement negation: invert and add one.
            for index in magnitude.indices { magnitude[index] = ~magnitude[index] }
            var index = magnitude.count - 1
            while index >= 0 {
                let (sum, overflow) = magnitude[index].addingReportingOverflow(1)
                magnitude[index] = sum
                if !overflow { break }
                index -= 1
            }
        }
        // Repeated division by 10 of the big-endian magnitude.
        var digits: [UInt8] = []
        var number = magnitude.drop { $0 == 0 }.map { $0 }
        while !number.isEmpty {
            var remainder: UInt16 = 0
            var quotient: [UInt8] = []
            quotient.reserveCapacity(number.count)
            for byte in number {
                let value = remainder << 8 | UInt16(byte)
                let digit = UInt8(value / 10)
                remainder = value % 10
                if !quotient.isEmpty || digit != 0 { quotient.append(digit) }
            }
            digits.append(UInt8(remainder))
            number = quotient
        }
        return compose(digits: digits.reversed(), negative: negative, scale: scale)
    }

    package static func format(_ value: Int64, scale: Int) -> String {
        let negative = value < 0
        let magnitude = value.magnitude
        return compose(digits: String(magnitude).utf8.map { $0 - 48 }, negative: negative, scale: scale)
    }

    /// `digits` most significant first (none for zero).
    static func compose(digits: some Collection<UInt8>, negative: Bool, scale: Int) -> String {
        var text = String(decoding: digits.map { $0 + 48 }, as: UTF8.self)
        if text.isEmpty { text = "0" }
        if scale > 0 {
            if text.count <= scale { text = String(repeating: "0", count: scale - text.count + 1) + text }
            let split = text.index(text.endIndex, offsetBy: -scale)
            text = String(text[..<split]) + "." + String(text[split...])
        }
        let isZero = !text.utf8.contains { $0 >= 49 && $0 <= 57 }
        return negative && !isZero ? "-" + text : text
    }
}
