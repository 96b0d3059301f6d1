package import FerryCore
package import NIOCore
package import PostgresNIO

/// A `text[]` parameter in PostgreSQL's binary array format, built element by element: a batch's rows are bound as
/// one array per column and read back with `unnest($1::text[], $2::text[], …)`.
///
/// Rows are bound rather than sent with COPY because postgres-nio stops the process with a precondition failure
/// when the server closes the connection in the middle of a COPY (a restart at that moment), whatever the caller
/// does next; a bound statement fails with an error instead. It also saves the round trip of a separate COPY.
package struct PostgresTextArray: PostgresNonThrowingEncodable, Sendable {
    package static var psqlType: PostgresDataType { .textArray }
    package static var psqlFormat: PostgresFormat { .binary }

    /// The elements, each a 32-bit length (-1 for NULL) and its bytes.
    private var elements: ByteBuffer
    package private(set) var count = 0
    private var hasNulls = false

    package init(capacity: Int = 1024) {
        elements = ByteBufferAllocator().buffer(capacity: capacity)
    }

    package mutating func appendNull() {
        elements.writeInteger(Int32(-1))
        count += 1
        hasNulls = true
    }

    package mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        elements.writeInteger(Int32(bytes.count))
        elements.writeBytes(bytes)
        count += 1
    }

    package mutating func append(_ bytes: ByteBuffer) {
        elements.writeInteger(Int32(bytes.readableBytes))
        elements.writeImmutableBuffer(bytes)
        count += 1
    }

    package mutating func append(_ text: String?) {
        guard let text else { return appendNull() }
        append(text)
    }

    /// Appends an element that `write` writes straight into the array (a timestamp, a number: no copy between).
    package mutating func appendWritten(_ write: (inout ByteBuffer) -> Void) {
        let lengthAt = elements.writerIndex
        elements.writeInteger(Int32(0))
        write(&elements)
        elements.setInteger(Int32(elements.writerIndex - lengthAt - 4), at: lengthAt)
        count += 1
    }

    /// Appends a field of COPY's text format (`\N` is NULL), unescaped as COPY would: `\t`, `\n`, `\r`, `\b`, `\f`,
    /// `\v`, octal `\123`, hex `\x7f`, and a backslash before any other character stands for that character.
    mutating func appendCopyField(_ field: UnsafeRawBufferPointer) {
        if field.count == 2, field[0] == UInt8(ascii: "\\"), field[1] == UInt8(ascii: "N") { return appendNull() }
        let lengthAt = elements.writerIndex
        elements.writeInteger(Int32(0))
        guard let firstEscape = field.firstIndex(of: UInt8(ascii: "\\")) else {
            elements.writeBytes(field)
            elements.setInteger(Int32(field.count), at: lengthAt)
            count += 1
            return
        }
        elements.writeBytes(UnsafeRawBufferPointer(rebasing: field[..<firstEscape]))
        var index = firstEscape
        while index < field.count {
            let byte = field[index]
            index += 1
            guard byte == UInt8(ascii: "\\"), index < field.count else {
                elements.writeInteger(byte)
                continue
            }
            let escaped = field[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "t"): elements.writeInteger(UInt8(0x09))
            case UInt8(ascii: "n"): elements.writeInteger(UInt8(0x0A))
            case UInt8(ascii: "r"): elements.writeInteger(UInt8(0x0D))
            case UInt8(ascii: "b"): elements.writeInteger(UInt8(0x08))
            case UInt8(ascii: "f"): elements.writeInteger(UInt8(0x0C))
            case UInt8(ascii: "v"): elements.writeInteger(UInt8(0x0B))
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(escaped - UInt8(ascii: "0"))
                var digits = 1
                while digits < 3, index < field.count, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(field[index]) {
                    value = value * 8 + Int(field[index] - UInt8(ascii: "0"))
                    index += 1
                    digits += 1
                }
                elements.writeInteger(UInt8(truncatingIfNeeded: value))
            case UInt8(ascii: "x") where index < field.count && Self.hexValue(field[index]) != nil:
                var value = Int(Self.hexValue(field[index])!)
                index += 1
                if index < field.count, let low = Self.hexValue(field[index]) {
                    value = value * 16 + Int(low)
                    index += 1
                }
                elements.writeInteger(UInt8(value))
            default:
                elements.writeInteger(escaped)
            }
        }
        elements.setInteger(Int32(elements.writerIndex - lengthAt - 4), at: lengthAt)
        count += 1
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    package func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // array_recv: dimensions, flags (1: has NULLs), element type, then per dimension its length and lower bound.
        guard count > 0 else {
            byteBuffer.writeMultipleIntegers(Int32(0), Int32(0), PostgresDataType.text.rawValue)
            return
        }
        byteBuffer.writeMultipleIntegers(Int32(1), Int32(hasNulls ? 1 : 0), PostgresDataType.text.rawValue, Int32(count), Int32(1))
        byteBuffer.writeImmutableBuffer(elements)
    }
}

/// A row of COPY text whose field count is not the batch's: a data error, rejected like a value PostgreSQL refuses
/// (the bisection isolates it and it goes to the dead letters).
package struct MalformedRowError: Error, CustomStringConvertible {
    /// The row's position in the batch (from 0).
    package let row: Int
    /// Its first field (a queue row's sequence number).
    package let first: String
    package let fields: Int
    package let expected: Int

    package var description: String {
        "the row starting \"\(first)\" has \(fields) fields, not \(expected) (a malformed queue entry; only Ferry should write to the stream)"
    }
}

extension CopyTextRows {
    /// The rows as one `text[]` per column, `columns` of them. A row with another number of fields throws
    /// ``MalformedRowError``; with `lenient`, it is cut or padded with NULLs instead (to record it as a dead letter).
    package func textArrays(columns: Int, lenient: Bool = false) throws(MalformedRowError) -> [PostgresTextArray] {
        let perColumn = buffer.readableBytes / max(columns, 1) + rowCount * 4 + 16
        var arrays = (0..<columns).map { _ in PostgresTextArray(capacity: perColumn) }
        var failure: MalformedRowError?
        buffer.withUnsafeReadableBytes { bytes in
            var row = 0
            var field = 0
            var start = 0
            var rowBegin = 0
            var firstEnd = 0
            var position = 0
            let end = bytes.count
            while position <= end {
                // A last line without its newline ends at the buffer's end.
                let atEnd = position == end
                let byte = atEnd ? UInt8(0x0A) : bytes[position]
                if byte == 0x09 || byte == 0x0A {
                    if atEnd && start == end && field == 0 { break }
                    if field < columns {
                        arrays[field].appendCopyField(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
                    }
                    if field == 0 { firstEnd = position }
                    field += 1
                    start = position + 1
                    if byte == 0x0A {
                        if field != columns {
                            guard lenient else {
                                let first = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[rowBegin..<firstEnd]).prefix(40), as: UTF8.self)
                                failure = MalformedRowError(row: row, first: first, fields: field, expected: columns)
                                return
                            }
                            while field < columns {
                                arrays[field].appendNull()
                                field += 1
                            }
                        }
                        row += 1
                        field = 0
                        rowBegin = start
                    }
                }
                position += 1
            }
        }
        if let failure { throw failure }
        return arrays
    }
}
