import FerryCore

/// A date or timestamp as Ferry prints it (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.fffffff][+HH]`), for the arithmetic the
/// table sync needs on watermarks without asking the server: the lookback window's bounds, and the next microsecond
/// above a cut value.
struct SQLServerTimeText: Equatable {
    /// Days since 1970-01-01.
    var days: Int
    /// 100 ns units since midnight.
    var units: Int
    /// What followed the time (a UTC offset such as `+00`), kept as it was.
    var suffix: String
    var hasTime: Bool

    static let unitsPerDay = 864_000_000_000

    init?(_ text: String) {
        let scalars = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= scalars.count, !range.isEmpty else { return nil }
            var value = 0
            for byte in scalars[range] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard scalars.count >= 10, scalars[4] == UInt8(ascii: "-"), scalars[7] == UInt8(ascii: "-"), let year = number(0..<4),
            let month = number(5..<7), let day = number(8..<10), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        days = CivilDate.daysSince1970(year: year, month: month, day: day)
        guard scalars.count > 10 else {
            units = 0
            suffix = ""
            hasTime = false
            return
        }
        guard scalars.count >= 19, scalars[10] == UInt8(ascii: " "), let hour = number(11..<13), let minute = number(14..<16),
            let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0
        var digits = 0
        if index < scalars.count, scalars[index] == UInt8(ascii: ".") {
            index += 1
            while index < scalars.count, (48...57).contains(scalars[index]) {
                if digits < 7 {
                    fraction = fraction * 10 + Int(scalars[index] - 48)
                    digits += 1
                }
                index += 1
            }
        }
        while digits < 7 {
            fraction *= 10
            digits += 1
        }
        units = ((hour * 60 + minute) * 60 + second) * 10_000_000 + fraction
        suffix = String(decoding: scalars[index...], as: UTF8.self)
        hasTime = true
    }

    /// This moment moved by `delta` 100 ns units (negative: earlier).
    func adding(units delta: Int) -> SQLServerTimeText {
        var result = self
        let total = units + delta
        let dayShift = total >= 0 ? total / Self.unitsPerDay : (total - Self.unitsPerDay + 1) / Self.unitsPerDay
        result.days += dayShift
        result.units = total - dayShift * Self.unitsPerDay
        return result
    }

    /// As Ferry prints it, with up to `digits` fractional digits (6 as PostgreSQL, without trailing zeros), or all seven
    /// (an exact position, fixed width).
    func text(digits: Int = 6) -> String {
        let (year, month, day) = CivilDate.from(daysSince1970: days)
        func padded(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var out = "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))"
        guard hasTime else { return out }
        let seconds = units / 10_000_000
        out += " \(padded(seconds / 3600, 2)):\(padded(seconds / 60 % 60, 2)):\(padded(seconds % 60, 2))"
        var fraction = units % 10_000_000
        var width = 7
        while width > digits {
            fraction /= 10
            width -= 1
        }
        if digits >= 7 {
            out += "." + padded(fraction, 7)
        } else if fraction > 0 {
            while fraction % 10 == 0 {
                fraction /= 10
                width -= 1
            }
            out += "." + padded(fraction, width)
        }
        return out + suffix
    }
}
