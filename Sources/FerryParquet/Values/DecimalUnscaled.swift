/// A decimal's unscaled integer (`-12.50` at scale 2 is -1250), parsed from text, for DECIMAL columns: as an INT64
/// when it fits, or as the big-endian two's-complement bytes of a FIXED_LEN_BYTE_ARRAY.
package struct DecimalUnscaled: Sendable, Equatable {
    package var negative: Bool
    /// The magnitude, big-endian, without leading zero bytes (empty for zero).
    package var magnitude: [UInt8]

    /// `text` (`-12.5`, `0.125`, `42`) at `scale`: nil when it is not a decimal number or has more fraction digits
    /// than `scale` that are not zeros (a value the column cannot hold exactly).
    package static func parse(_ text: some StringProtocol, scale: Int) -> DecimalUnscaled? {
        var utf8 = Substring(text).utf8[...]
        var negative = false
        if let first = utf8.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            utf8 = utf8.dropFirst()
        }
        var digits: [UInt8] = []
        digits.reserveCapacity(utf8.count + scale)
        var fraction = -1
        for byte in utf8 {
            if byte == UInt8(ascii: ".") {
                guard fraction < 0 else { return nil }
                fraction = 0
                continue
            }
            guard byte >= 48, byte <= 57 else { return nil }
            if fraction >= 0 {
                if fraction >= scale {
                    guard byte == 48 else { return nil }
                    continue
                }
                fraction += 1
            }
            digits.append(byte - 48)
        }
        guard !digits.isEmpty else { return nil }
        digits.append(contentsOf: repeatElement(0, count: scale - max(fraction, 0)))
        // Decimal digits to base 256, most significant first.
        var magnitude: [UInt8] = []
        for digit in digits {
            var carry = UInt16(digit)
            for index in magnitude.indices.reversed() {
                let value = UInt16(magnitude[index]) * 10 + carry
                magnitude[index] = UInt8(truncatingIfNeeded: value)
                carry = value >> 8
            }
            if carry > 0 { magnitude.insert(UInt8(carry), at: 0) }
        }
        let trimmed = Array(magnitude.drop { $0 == 0 })
        return DecimalUnscaled(negative: negative && !trimmed.isEmpty, magnitude: trimmed)
    }

    /// The value as an INT64, when it fits.
    package var int64: Int64? {
        guard magnitude.count <= 8 else { return nil }
        var value: UInt64 = 0
        for byte in magnitude { value = value << 8 | UInt64(byte) }
        if negative {
            guard value <= UInt64(Int64.max) + 1 else { return nil }
            return value == UInt64(Int64.max) + 1 ? Int64.min : -Int64(value)
        }
        guard value <= UInt64(Int64.max) else { return nil }
        return Int64(value)
    }

    /// Two's complement, big-endian, sign-extended to `width` bytes; nil when it does not fit.
    package func bigEndian(width: Int) -> [UInt8]? {
        guard magnitude.count <= width else { return nil }
        var bytes = [UInt8](repeating: 0, count: width - magnitude.count) + magnitude
        if negative {
            for index in bytes.indices { bytes[index] = ~bytes[index] }
            var index = width - 1
            while index >= 0 {
                let (sum, overflow) = bytes[index].addingReportingOverflow(1)
                bytes[index] = sum
                if !overflow { break }
                index -= 1
            }
            guard (bytes.first ?? 0) >= 0x80 else { return nil }
        } else {
            guard (bytes.first ?? 0) < 0x80 else { return nil }
        }
        return bytes
    }
}
