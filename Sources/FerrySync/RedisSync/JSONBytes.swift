import Foundation
import NIOCore

/// JSON written straight from Redis bytes, once per stream entry or key on the sync's hot path.
///
/// Each string is scanned once and written with one reservation; objects list their keys in jsonb's storage
/// order (shorter keys first, then bytewise), so PostgreSQL's jsonb input finds them already sorted — on 600,000
/// five-field entries that makes its parse a fifth to a quarter cheaper. The stored jsonb is the same either way.
enum JSONBytes {
    /// What one string needs: whether it is text (UTF-8 without NUL, which jsonb refuses as `\u0000`) and how
    /// many bytes its escapes add.
    private struct Scan {
        var isText: Bool
        var extra: Int
    }

    private static func scan(_ bytes: UnsafeRawBufferPointer) -> Scan {
        var extra = 0
        var ascii = true
        for byte in bytes {
            if byte >= 0x80 {
                ascii = false
            } else if byte < 0x20 {
                if byte == 0 { return Scan(isText: false, extra: 0) }
                // \n \r \t take two bytes, other control characters six (\u00XX).
                extra += (byte == 0x0A || byte == 0x0D || byte == 0x09) ? 1 : 5
            } else if byte == 0x22 || byte == 0x5C {
                extra += 1
            }
        }
        if !ascii, String(validating: bytes, as: UTF8.self) == nil { return Scan(isText: false, extra: 0) }
        return Scan(isText: true, extra: extra)
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// Writes `"bytes"` with JSON escapes, framed by `before` and `after` when they are not 0, in one write.
    private static func writeQuoted(_ bytes: UnsafeRawBufferPointer, extra: Int, before: UInt8, after: UInt8, to out: inout ByteBuffer) {
        let length = bytes.count + extra + 2 + (before == 0 ? 0 : 1) + (after == 0 ? 0 : 1)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
            var position = 0
            func put(_ byte: UInt8) {
                target[position] = byte
                position += 1
            }
            if before != 0 { put(before) }
            put(0x22)
            if extra == 0 {
                if let source = bytes.baseAddress, bytes.count > 0 {
                    (target.baseAddress! + position).copyMemory(from: source, byteCount: bytes.count)
                }
                position += bytes.count
            } else {
                for byte in bytes {
                    switch byte {
                    case 0x22, 0x5C:
                        put(0x5C)
                        put(byte)
                    case 0x0A:
                        put(0x5C)
                        put(UInt8(ascii: "n"))
                    case 0x0D:
                        put(0x5C)
                        put(UInt8(ascii: "r"))
                    case 0x09:
                        put(0x5C)
                        put(UInt8(ascii: "t"))
                    case 0..<0x20:
                        put(0x5C)
                        put(UInt8(ascii: "u"))
                        put(UInt8(ascii: "0"))
                        put(UInt8(ascii: "0"))
                        hexDigits.withUTF8Buffer { digits in
                            put(digits[Int(byte >> 4)])
                            put(digits[Int(byte & 0x0F)])
                        }
                    default:
                        put(byte)
                    }
                }
            }
            put(0x22)
            if after != 0 { put(after) }
            return position
        }
    }

    /// Appends `value` as a JSON string when it is UTF-8 text without NUL, otherwise as `{"base64": "…"}`.
    static func appendValue(_ value: ByteBuffer, to out: inout ByteBuffer) {
        let written = value.withUnsafeReadableBytes { bytes -> Bool in
            let scan = scan(bytes)
            guard scan.isText else { return false }
            writeQuoted(bytes, extra: scan.extra, before: 0, after: 0, to: &out)
            return true
        }
        if !written { out.writeString("{\"base64\":\"\(Data(value.readableBytesView).base64EncodedString())\"}") }
    }

    /// Appends `name` as an object key with its colon, after a comma unless it is the object's first key; a name
    /// that is not text becomes `"base64:…"`.
    static func appendKey(_ name: ByteBuffer, first: Bool, to out: inout ByteBuffer) {
        let comma = first ? 0 : UInt8(ascii: ",")
        let written = name.withUnsafeReadableBytes { bytes -> Bool in
            let scan = scan(bytes)
            guard scan.isText else { return false }
            writeQuoted(bytes, extra: scan.extra, before: comma, after: UInt8(ascii: ":"), to: &out)
            return true
        }
        if !written {
            if !first { out.writeInteger(UInt8(ascii: ",")) }
            out.writeString("\"base64:\(Data(name.readableBytesView).base64EncodedString())\":")
        }
    }

    /// Whether jsonb stores key `a` before key `b`: the shorter first, equal lengths bytewise.
    static func jsonbPrecedes(_ a: ByteBuffer, _ b: ByteBuffer) -> Bool {
        if a.readableBytes != b.readableBytes { return a.readableBytes < b.readableBytes }
        return a.withUnsafeReadableBytes { left in
            b.withUnsafeReadableBytes { right in
                guard let l = left.baseAddress, let r = right.baseAddress else { return false }
                return memcmp(l, r, left.count) < 0
            }
        }
    }

    /// A key's length and first eight bytes: enough to order almost every pair of field names without reading
    /// the names again.
    private struct SortKey {
        var length: Int
        var prefix: UInt64

        init(_ name: ByteBuffer) {
            length = name.readableBytes
            prefix = name.withUnsafeReadableBytes { bytes in
                var prefix: UInt64 = 0
                for index in 0..<8 { prefix = prefix << 8 | (index < bytes.count ? UInt64(bytes[index]) : 0) }
                return prefix
            }
        }
    }

    /// Calls `body` with the indices `0..<count` in jsonb's key order of `name(index)`. The sort is stable: of
    /// two equal names the later stays later, so it still wins in PostgreSQL as it does in the Redis order.
    static func forEachInJSONBOrder(count: Int, name: (Int) -> ByteBuffer, body: (_ index: Int) -> Void) {
        guard count > 1 else {
            if count == 1 { body(0) }
            return
        }
        withUnsafeTemporaryAllocation(of: SortKey.self, capacity: count) { keys in
            for index in 0..<count { keys.initializeElement(at: index, to: SortKey(name(index))) }
            func precedes(_ a: Int, _ b: Int) -> Bool {
                let (left, right) = (keys[a], keys[b])
                if left.length != right.length { return left.length < right.length }
                if left.prefix != right.prefix { return left.prefix < right.prefix }
                return left.length > 8 && jsonbPrecedes(name(a), name(b))
            }
            var sorted = true
            for index in 1..<count where precedes(index, index - 1) {
                sorted = false
                break
            }
            if sorted {
                for index in 0..<count { body(index) }
                return
            }
            guard count <= 16 else {
                // Large hashes: an n log n sort, made stable by the index.
                for index in (0..<count).sorted(by: { a, b in precedes(a, b) || (!precedes(b, a) && a < b) }) { body(index) }
                return
            }
            withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { order in
                for index in 0..<count {
                    // Insertion sort: a handful of fields, and stable.
                    var position = index
                    while position > 0, precedes(index, order[position - 1]) {
                        order[position] = order[position - 1]
                        position -= 1
                    }
                    order[position] = index
                }
                for position in 0..<count { body(order[position]) }
            }
        }
    }
}
