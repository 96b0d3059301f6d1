import CFreeTDS
import FerryCore
import NIOCore

/// Rows as DB-Library held them, copied out of its buffers on its thread: per value a 4-byte length (-1: NULL), then
/// the bytes. ``SQLServerRowRenderer`` turns them into COPY text on another thread. Plain memory rather than a
/// `ByteBuffer`: the copy is what DB-Library's thread adds to FreeTDS's own work, so it is kept to a store and a
/// `memcpy` per value. Handed from one thread to the next, never used by two at once.
package final class SQLServerRawRows: @unchecked Sendable {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    package internal(set) var rowCount = 0

    init(capacity: Int = 64 * 1024) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    /// The values written so far.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: used) }

    /// Calls `body` with a cursor over the values, row after row, each row's columns in the result's order; the
    /// cursor is valid only inside `body`.
    package func withValues<T, Failure: Error>(_ body: (inout SQLServerValueCursor) throws(Failure) -> T) throws(Failure) -> T {
        var cursor = SQLServerValueCursor(bytes)
        return try body(&cursor)
    }

    /// Appends one value: `count` bytes at `data`, or NULL when `data` is nil.
    func append(_ data: UnsafeRawPointer?, count: Int) {
        let length = data == nil ? 0 : count
        if used + 4 + length > capacity { grow(to: used + 4 + length) }
        base.storeBytes(of: Int32(data == nil ? -1 : length).littleEndian, toByteOffset: used, as: Int32.self)
        used += 4
        if let data, length > 0 {
            (base + used).copyMemory(from: data, byteCount: length)
            used += length
        }
    }

    private func grow(to needed: Int) {
        let larger = max(needed, capacity * 2)
        let moved = UnsafeMutableRawPointer.allocate(byteCount: larger, alignment: 8)
        moved.copyMemory(from: base, byteCount: used)
        base.deallocate()
        base = moved
        capacity = larger
    }
}

/// The values of ``SQLServerRawRows`` one after another.
package struct SQLServerValueCursor {
    private let base: UnsafeRawBufferPointer
    private var offset = 0

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    /// The next value's bytes as DB-Library held them, nil for NULL. Calling it more often than there are values is a
    /// programming error.
    @inline(__always)
    package mutating func next() -> UnsafeRawBufferPointer? {
        let length = Int(Int32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
        offset += 4
        guard length >= 0 else { return nil }
        defer { offset += length }
        return UnsafeRawBufferPointer(rebasing: base[offset..<offset + length])
    }
}

/// COPY text of a result's raw rows, by the column types DB-Library reported. Calls nothing of DB-Library but
/// `dbconvert` without a connection (decimal/numeric, 38 digits exactly), so it runs on any thread.
struct SQLServerRowRenderer: Sendable {
    private let names: [String]
    private let kinds: [SQLServerText.Kind]
    private let types: [Int32]
    /// Columns that keep a 7th fractional digit of seconds.
    private let precise: [Bool]

    init(columns: [SQLServerColumn], fullPrecision: Set<Int>) {
        names = columns.map(\.name)
        kinds = columns.map(\.kind)
        types = columns.map(\.type)
        precise = columns.indices.map { fullPrecision.contains($0) }
    }

    func render(_ raw: SQLServerRawRows) throws(SQLServerError) -> CopyTextRows {
        var rows = CopyTextRows()
        var field = ByteBufferAllocator().buffer(capacity: 256)
        let failure: SQLServerError? = { (base: UnsafeRawBufferPointer) -> SQLServerError? in
            var cursor = SQLServerValueCursor(base)
            for _ in 0..<raw.rowCount {
                rows.beginRow()
                for (offset, kind) in kinds.enumerated() {
                    guard let bytes = cursor.next() else {
                        rows.appendField(nil as ByteBuffer?)
                        continue
                    }
                    do {
                        switch kind {
                        case .text:
                            // Text as DB-Library converted it to UTF-8, escaped straight into the rows.
                            rows.appendField(bytes: bytes)
                        case .binary:
                            // `\x…` has a backslash to escape: through a field.
                            field.clear()
                            try SQLServerText.append(kind, bytes, into: &field) { _, _ in false }
                            rows.appendField(field)
                        case .decimal:
                            let type = types[offset]
                            try rows.appendPlainField { buffer in
                                try SQLServerText.append(kind, bytes, into: &buffer) { SQLServerText.appendDecimal(type: type, $0, into: &$1) }
                            }
                        default:
                            // Digits, dates and times need no escaping: written straight into the rows (by closures that
                            // hold no reference, which every value would retain and release).
                            let fullPrecision = precise[offset]
                            try rows.appendPlainField { buffer in
                                try SQLServerText.append(kind, bytes, into: &buffer, fullPrecision: fullPrecision) { _, _ in false }
                            }
                        }
                    } catch {
                        return SQLServerError(messages: [], library: "column \(names[offset]): \(error)")
                    }
                }
                rows.endRow()
            }
            return nil
        }(raw.bytes)
        if let failure { throw failure }
        return rows
    }
}
