import DequeModule
import NIOCore

/// The rows a producer queued whose watermark may still fall inside the lookback window: content hashes in
/// queue order, each with a sortable key of its watermark, 16 bytes a row.
///
/// Re-reading the window queues a row only when its exact content is not remembered (a late commit, or a change
/// that kept its watermark). Forgetting too early only queues a duplicate, which the mirror ignores.
struct WindowMemory {
    private var hashes: Set<UInt64> = []
    private var order: Deque<(hash: UInt64, key: Int64)> = []

    func contains(_ hash: UInt64) -> Bool { hashes.contains(hash) }

    /// Remembers a queued row unless its watermark is already below `floor` (microseconds): most rows of an
    /// initial load are far older than the window and need no memory.
    mutating func remember(_ hash: UInt64, watermark: ByteBuffer?, floor: Int64 = .min) {
        guard let watermark, let key = Self.sortKey(watermark), key >= floor else { return }
        if hashes.insert(hash).inserted { order.append((hash, key)) }
    }

    /// Drops rows whose watermark is below `lowerBound` (text as the source prints it).
    mutating func forget(below lowerBound: String) {
        guard let lower = Self.sortKey(ByteBuffer(string: lowerBound)) else { return }
        while let first = order.first, first.key < lower {
            order.removeFirst()
            hashes.remove(first.hash)
        }
    }

    var count: Int { order.count }

    /// Microseconds since 1970 of an ISO date or timestamp as Ferry's sessions print them
    /// (`YYYY-MM-DD[ HH:MM:SS[.ffffff]]`, UTC; a zone suffix is ignored); `nil` for anything else.
    static func sortKey(_ text: ByteBuffer) -> Int64? {
        var digits: [Int64] = []
        digits.reserveCapacity(7)
        var current: Int64 = 0
        var width = 0
        var fraction = false
        var fractionDigits = 0
        for byte in text.readableBytesView {
            if byte >= 48 && byte <= 57 {
                current = current * 10 + Int64(byte - 48)
                width += 1
                if fraction { fractionDigits += 1 }
                continue
            }
            if width > 0 {
                digits.append(current)
                current = 0
                width = 0
            }
            if byte == UInt8(ascii: ".") && digits.count == 6 {
                fraction = true
            } else if byte == UInt8(ascii: "+") || (byte == UInt8(ascii: "-") && digits.count >= 6) {
                break
            }
        }
        if width > 0 { digits.append(current) }
        guard digits.count >= 3, digits[0] > 0, digits[0] < 100_000, (1...12).contains(digits[1]), (1...31).contains(digits[2]) else { return nil }
        while digits.count < 6 { digits.append(0) }
        var micros: Int64 = 0
        if digits.count > 6 {
            micros = digits[6]
            var scale = fractionDigits
            while scale < 6 {
                micros *= 10
                scale += 1
            }
            while scale > 6 {
                micros /= 10
                scale -= 1
            }
        }
        let days = daysFromCivil(year: digits[0], month: digits[1], day: digits[2])
        return ((days * 24 + digits[3]) * 60 + digits[4]) * 60_000_000 + digits[5] * 1_000_000 + micros
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
