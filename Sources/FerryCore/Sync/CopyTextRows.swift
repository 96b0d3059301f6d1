package import NIOCore

/// Rows in PostgreSQL's `COPY … FROM STDIN` text format: one line per row, fields separated by tabs, `\N` for
/// NULL, and backslash, tab, newline and carriage return escaped.
///
/// This is the payload of queue entries (documented in docs/QUEUE_FORMAT.md): sources write it, the consumer
/// streams it to PostgreSQL unchanged.
package struct CopyTextRows: Sendable {
    package private(set) var buffer: ByteBuffer
    package private(set) var rowCount = 0
    private var fieldsInRow = 0
    private var rowStart = 0
    /// Reader offsets of every row's first byte, so rows can be split off without re-parsing.
    package private(set) var rowOffsets: [Int] = []
    /// Rows that stand for a deleted source row (key and what the source still knows; other fields NULL), ascending:
    /// a source that sees deletes marks them (``markLastRowDeleted()``), the producer queues them as deletes.
    package private(set) var deletedRows: [Int] = []

    package init(capacity: Int = 64 * 1024) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    package init(buffer: ByteBuffer) {
        self.buffer = buffer
        rowOffsets = Self.lineOffsets(buffer)
        rowCount = rowOffsets.count
    }

    package var isEmpty: Bool { rowCount == 0 }
    package var byteCount: Int { buffer.readableBytes }

    package mutating func beginRow() {
        rowStart = buffer.writerIndex
        rowOffsets.append(rowStart - buffer.readerIndex)
        fieldsInRow = 0
    }

    /// Appends a field already in text form (UTF-8 bytes), escaping as COPY requires.
    package mutating func appendField(_ bytes: ByteBuffer?) {
        if fieldsInRow > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
        fieldsInRow += 1
        guard let bytes else {
            buffer.writeInteger(UInt16(0x5C4E))  // \N
            return
        }
        bytes.withUnsafeReadableBytes { source in appendEscaped(source) }
    }

    /// Writes `source` with COPY's escapes (the field separator is already written).
    private mutating func appendEscaped(_ source: UnsafeRawBufferPointer) {
        if source.count <= Self.shortField {
            appendShort(source, separated: false)
            return
        }
        do {
            buffer.reserveCapacity(minimumWritableBytes: source.count)
            var clean = 0
            var index = 0
            let count = source.count
            while index < count {
                let byte = source[index]
                // Only 0x09, 0x0A, 0x0D and 0x5C need escaping; everything above 0x5C and most below is plain.
                if byte > 0x5C || (byte != 0x5C && byte > 0x0D) || (byte < 0x09) || byte == 0x0B || byte == 0x0C {
                    index += 1
                    continue
                }
                if index > clean { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[clean..<index])) }
                buffer.writeInteger(UInt8(ascii: "\\"))
                switch byte {
                case 0x09: buffer.writeInteger(UInt8(ascii: "t"))
                case 0x0A: buffer.writeInteger(UInt8(ascii: "n"))
                case 0x0D: buffer.writeInteger(UInt8(ascii: "r"))
                default: buffer.writeInteger(UInt8(ascii: "\\"))
                }
                clean = index + 1
                index += 1
            }
            if clean < source.count { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[clean...])) }
        }
    }

    /// Fields up to this long are escaped in one write, with room for every byte escaped.
    private static var shortField: Int { 4096 }

    /// The separator when `separated`, then `source` with COPY's escapes, in one write: for short fields, the usual
    /// ones, where a write per run of bytes would cost more than the bytes.
    private mutating func appendShort(_ source: UnsafeRawBufferPointer, separated: Bool) {
        let room = 2 * source.count + 1
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { out in
            precondition(out.count >= room)
            var written = 0
            if separated {
                out[0] = UInt8(ascii: "\t")
                written = 1
            }
            // Most fields have nothing to escape: their bytes are copied whole.
            if !source.contains(where: { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || $0 == 0x5C }) {
                UnsafeMutableRawBufferPointer(rebasing: out[written..<written + source.count]).copyMemory(from: source)
                return written + source.count
            }
            for byte in source {
                let escaped: UInt8
                switch byte {
                case 0x09: escaped = UInt8(ascii: "t")
                case 0x0A: escaped = UInt8(ascii: "n")
                case 0x0D: escaped = UInt8(ascii: "r")
                case 0x5C: escaped = UInt8(ascii: "\\")
                default:
                    out[written] = byte
                    written += 1
                    continue
                }
                out[written] = UInt8(ascii: "\\")
                out[written + 1] = escaped
                written += 2
            }
            return written
        }
    }

    /// Appends a field from raw UTF-8 bytes, escaping as COPY requires.
    package mutating func appendField(bytes: UnsafeRawBufferPointer) {
        defer { fieldsInRow += 1 }
        if bytes.count <= Self.shortField {
            appendShort(bytes, separated: fieldsInRow > 0)
            return
        }
        if fieldsInRow > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
        appendEscaped(bytes)
    }

    package mutating func appendField(_ text: String?) {
        guard var text else { return appendField(nil as ByteBuffer?) }
        // Native strings are contiguous UTF-8: escape from their bytes without a ByteBuffer in between.
        if fieldsInRow > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
        fieldsInRow += 1
        text.withUTF8 { bytes in appendEscaped(UnsafeRawBufferPointer(bytes)) }
    }

    /// A field whose bytes need no escaping (digits, timestamps: no tab, newline, carriage return or backslash),
    /// written by `write` straight into the buffer.
    package mutating func appendPlainField(_ write: (inout ByteBuffer) throws -> Void) rethrows {
        if fieldsInRow > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
        fieldsInRow += 1
        try write(&buffer)
    }

    package mutating func endRow() {
        buffer.writeInteger(UInt8(ascii: "\n"))
        rowCount += 1
    }

    /// Drops the row being written (after `beginRow`).
    package mutating func cancelRow() {
        buffer.moveWriterIndex(to: rowStart)
        rowOffsets.removeLast()
    }

    /// Marks the last row as a deleted source row (see ``deletedRows``).
    package mutating func markLastRowDeleted() {
        guard rowCount > 0, deletedRows.last != rowCount - 1 else { return }
        deletedRows.append(rowCount - 1)
    }

    /// The bytes of row `index`, newline included.
    package func row(_ index: Int) -> ByteBuffer {
        let start = rowOffsets[index]
        let end = index + 1 < rowOffsets.count ? rowOffsets[index + 1] : buffer.readableBytes
        return buffer.getSlice(at: buffer.readerIndex + start, length: end - start)!
    }

    /// The fields of row `index`, unescaped; `nil` for NULL.
    package func fields(ofRow index: Int) -> [String?] {
        Self.fields(ofLine: row(index))
    }

    /// Rows `range` as a new value sharing storage.
    package func rows(_ range: Range<Int>) -> CopyTextRows {
        guard !range.isEmpty else { return CopyTextRows(capacity: 0) }
        let start = rowOffsets[range.lowerBound]
        let end = range.upperBound < rowOffsets.count ? rowOffsets[range.upperBound] : buffer.readableBytes
        var result = CopyTextRows(buffer: buffer.getSlice(at: buffer.readerIndex + start, length: end - start)!)
        result.deletedRows = deletedRows.filter { range.contains($0) }.map { $0 - range.lowerBound }
        return result
    }

    /// Appends a complete line (newline included) with `sequence` as an extra first field.
    package mutating func appendRow(sequence: Int64, line: ByteBuffer) {
        rowOffsets.append(buffer.readableBytes)
        buffer.writeString(String(sequence))
        buffer.writeInteger(UInt8(ascii: "\t"))
        var line = line
        buffer.writeBuffer(&line)
        rowCount += 1
    }

    /// Field `field` of row `index`, still escaped, without splitting the rest of the row; `nil` for NULL.
    package func rawField(_ field: Int, ofRow index: Int) -> ByteBuffer? {
        let line = row(index)
        var start = 0
        var current = 0
        var result: ByteBuffer?
        line.withUnsafeReadableBytes { bytes in
            var position = 0
            while position < bytes.count {
                let byte = bytes[position]
                if byte == 0x09 || byte == 0x0A {
                    if current == field {
                        let length = position - start
                        let isNull = length == 2 && bytes[start] == UInt8(ascii: "\\") && bytes[start + 1] == UInt8(ascii: "N")
                        result = isNull ? nil : line.getSlice(at: line.readerIndex + start, length: length)
                        return
                    }
                    current += 1
                    start = position + 1
                }
                position += 1
            }
        }
        return result
    }

    /// These rows without their last field, and that field of the last row (unescaped; nil for NULL or no rows): for a
    /// source that reads one column more than its rows carry.
    package func droppingLastField() -> (rows: CopyTextRows, lastOfLastRow: String?) {
        var result = CopyTextRows(capacity: buffer.readableBytes)
        for index in 0..<rowCount {
            let line = row(index)
            let cut = line.withUnsafeReadableBytes { bytes in bytes.lastIndex(of: 0x09) } ?? 0
            result.rowOffsets.append(result.buffer.readableBytes)
            var kept = line.getSlice(at: line.readerIndex, length: cut)!
            result.buffer.writeBuffer(&kept)
            result.buffer.writeInteger(UInt8(ascii: "\n"))
            result.rowCount += 1
        }
        result.deletedRows = deletedRows
        let last = rowCount > 0 ? Self.fields(ofLine: row(rowCount - 1)).last ?? nil : nil
        return (result, last)
    }

    /// These rows without their last field, marking deleted (``deletedRows``) each row whose last field is `1`: for a
    /// source that reads whether a row was deleted as one column more than its rows carry.
    package func droppingDeletionFlag() -> CopyTextRows {
        var result = droppingLastField().rows
        result.deletedRows = []
        for index in 0..<rowCount {
            let line = row(index)
            let flagged = line.withUnsafeReadableBytes { bytes in
                guard let tab = bytes.lastIndex(of: 0x09) else { return false }
                return bytes.count - tab == 3 && bytes[tab + 1] == UInt8(ascii: "1")
            }
            if flagged { result.deletedRows.append(index) }
        }
        return result
    }

    /// Appends every row of `other`.
    package mutating func append(_ other: CopyTextRows) {
        let base = buffer.readableBytes
        var bytes = other.buffer
        buffer.writeBuffer(&bytes)
        rowOffsets.append(contentsOf: other.rowOffsets.map { $0 + base })
        deletedRows.append(contentsOf: other.deletedRows.map { $0 + rowCount })
        rowCount += other.rowCount
    }

    /// Splits one COPY text line into unescaped fields.
    package static func fields(ofLine line: ByteBuffer) -> [String?] {
        var fields: [String?] = []
        var current: [UInt8] = []
        var isNull = false
        var escaping = false
        var sawContent = false
        for byte in line.readableBytesView {
            if escaping {
                escaping = false
                switch byte {
                case UInt8(ascii: "N"):
                    isNull = true
                case UInt8(ascii: "t"): current.append(0x09)
                case UInt8(ascii: "n"): current.append(0x0A)
                case UInt8(ascii: "r"): current.append(0x0D)
                default: current.append(byte)
                }
                sawContent = true
                continue
            }
            switch byte {
            case UInt8(ascii: "\\"):
                escaping = true
            case 0x09, 0x0A:
                fields.append(isNull ? nil : String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
                isNull = false
                sawContent = byte == 0x09
                if byte == 0x0A { return fields }
            default:
                current.append(byte)
                sawContent = true
            }
        }
        if sawContent || !current.isEmpty || isNull { fields.append(isNull ? nil : String(decoding: current, as: UTF8.self)) }
        return fields
    }

    static func lineOffsets(_ buffer: ByteBuffer) -> [Int] {
        var offsets: [Int] = []
        var atStart = true
        for (index, byte) in buffer.readableBytesView.enumerated() {
            if atStart {
                offsets.append(index)
                atStart = false
            }
            if byte == 0x0A { atStart = true }
        }
        return offsets
    }
}
