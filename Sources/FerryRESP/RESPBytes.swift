import NIOCore

/// Byte-level helpers shared by the scanner and the token reader. Indices are absolute buffer indices.
enum RESPBytes {
    /// "\r\n" read as a big-endian UInt16.
    static let crlf: UInt16 = 0x0D0A

    /// Parses a decimal Int64 from `buffer[start..<end]` (optional leading `-`); nil on anything else or overflow.
    static func parseInteger(_ buffer: ByteBuffer, _ start: Int, _ end: Int) -> Int64? {
        guard end > start else { return nil }
        return buffer.withUnsafeReadableBytes { bytes -> Int64? in
            var index = start - buffer.readerIndex
            let last = end - buffer.readerIndex
            var negative = false
            if bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
                guard index < last else { return nil }
            } else if bytes[index] == UInt8(ascii: "+") {
                index += 1
                guard index < last else { return nil }
            }
            var value: Int64 = 0
            while index < last {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (added, overflow2) =
                    negative ? multiplied.subtractingReportingOverflow(Int64(digit)) : multiplied.addingReportingOverflow(Int64(digit))
                guard !overflow1, !overflow2 else { return nil }
                value = added
                index += 1
            }
            return value
        }
    }

    /// Parses a RESP3 double: decimal or exponent notation, `inf`, `-inf`, `nan`.
    static func parseDouble(_ buffer: ByteBuffer, _ start: Int, _ end: Int) -> Double? {
        guard end > start, end - start < 512, let text = buffer.getString(at: start, length: end - start) else { return nil }
        switch text.lowercased() {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "-nan": return .nan
        default:
            guard text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 43 || $0 == 46 || $0 == 101 || $0 == 69 }) else { return nil }
            return Double(text)
        }
    }

    static func isBigNumber(_ buffer: ByteBuffer, _ start: Int, _ end: Int) -> Bool {
        guard end > start else { return false }
        var index = start
        if let sign = buffer.getInteger(at: index, as: UInt8.self), sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            index += 1
            guard index < end else { return false }
        }
        while index < end {
            guard let byte = buffer.getInteger(at: index, as: UInt8.self), byte >= 48, byte <= 57 else { return false }
            index += 1
        }
        return true
    }

    /// Index of the CR ending the line that starts at `from` in a validated buffer.
    static func lineEnd(_ buffer: ByteBuffer, from: Int) -> Int {
        buffer.withUnsafeReadableBytes { bytes in
            var index = from - buffer.readerIndex
            while bytes[index] != 0x0D { index += 1 }
            return index + buffer.readerIndex
        }
    }
}
