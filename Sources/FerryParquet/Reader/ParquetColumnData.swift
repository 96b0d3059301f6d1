/// Variable-length values stored end to end: value `i` is `bytes[offsets[i]..<offsets[i + 1]]`.
package struct ByteArrays: Sendable, Equatable {
    package var bytes: [UInt8] = []
    package var offsets: [Int32] = [0]

    package init() {}

    package init(bytes: [UInt8], offsets: [Int32]) {
        self.bytes = bytes
        self.offsets = offsets
    }

    package var count: Int { offsets.count - 1 }

    package subscript(index: Int) -> ArraySlice<UInt8> { bytes[Int(offsets[index])..<Int(offsets[index + 1])] }

    package mutating func append(_ value: some Collection<UInt8>) {
        bytes.append(contentsOf: value)
        offsets.append(Int32(truncatingIfNeeded: bytes.count))
    }

    /// Fixed-width values (FIXED_LEN_BYTE_ARRAY, INT96) as byte arrays.
    package init(fixed bytes: [UInt8], width: Int) {
        self.bytes = bytes
        let count = width > 0 ? bytes.count / width : 0
        offsets = (0...count).map { Int32(truncatingIfNeeded: $0 * width) }
    }
}

/// The non-null values of a column chunk, densely, in the column's physical type.
package enum ParquetValues: Sendable, Equatable {
    case boolean([Bool])
    case int32([Int32])
    case int64([Int64])
    /// INT96 as 12 bytes each (nanoseconds of the day, little endian, then the Julian day).
    case int96(ByteArrays)
    case float([Float])
    case double([Double])
    case byteArrays(ByteArrays)
    case fixed(ByteArrays)

    package var count: Int {
        switch self {
        case .boolean(let values): values.count
        case .int32(let values): values.count
        case .int64(let values): values.count
        case .float(let values): values.count
        case .double(let values): values.count
        case .int96(let values), .byteArrays(let values), .fixed(let values): values.count
        }
    }

    static func empty(_ type: PhysicalType) -> ParquetValues {
        switch type {
        case .boolean: .boolean([])
        case .int32: .int32([])
        case .int64: .int64([])
        case .int96: .int96(ByteArrays())
        case .float: .float([])
        case .double: .double([])
        case .fixedLenByteArray: .fixed(ByteArrays())
        default: .byteArrays(ByteArrays())
        }
    }
}

extension ByteArrays {
    mutating func appendAll(_ other: ByteArrays) {
        let base = Int32(truncatingIfNeeded: bytes.count)
        bytes.append(contentsOf: other.bytes)
        offsets.reserveCapacity(offsets.count + other.count)
        for offset in other.offsets.dropFirst() { offsets.append(base &+ offset) }
    }
}

/// One column of a row group as read: which rows hold a value, and the values.
package struct ParquetColumnData: Sendable, Equatable {
    package var column: ParquetColumn
    /// Per row, whether it holds a value; nil when every row does.
    package var present: [Bool]?
    package var values: ParquetValues
    package var rowCount: Int

    /// Every row's value in the column's logical meaning.
    package func rowValues() -> [ParquetValue] {
        var out: [ParquetValue] = []
        out.reserveCapacity(rowCount)
        var next = 0
        for row in 0..<rowCount {
            if let present, !present[row] {
                out.append(.null)
                continue
            }
            out.append(value(at: next))
            next += 1
        }
        return out
    }

    /// The `index`th non-null value.
    package func value(at index: Int) -> ParquetValue {
        switch values {
        case .boolean(let values): return .boolean(values[index])
        case .int32(let values): return Self.interpret(Int64(values[index]), column.kind, bits: 32)
        case .int64(let values): return Self.interpret(values[index], column.kind, bits: 64)
        case .float(let values): return .float(values[index])
        case .double(let values): return .double(values[index])
        case .int96(let values): return Self.int96(values[index])
        case .byteArrays(let values), .fixed(let values):
            let bytes = values[index]
            switch column.kind {
            case .string: return .string(String(decoding: bytes, as: UTF8.self))
            case .decimal(_, let scale): return .decimal(DecimalText.format(bigEndian: bytes, scale: scale))
            default: return .binary(Array(bytes))
            }
        }
    }

    static func interpret(_ value: Int64, _ kind: ParquetColumn.Kind, bits: Int) -> ParquetValue {
        switch kind {
        case .integer(_, let signed):
            guard !signed else { return .integer(value) }
            return .unsigned(bits == 32 ? UInt64(UInt32(truncatingIfNeeded: value)) : UInt64(bitPattern: value))
        case .date: return .date(Int32(truncatingIfNeeded: value))
        case .timestamp(let unit, let utc): return .timestamp(value, unit: unit, utc: utc)
        case .time(let unit, _): return .time(value, unit: unit)
        case .decimal(_, let scale): return .decimal(DecimalText.format(value, scale: scale))
        default: return .integer(value)
        }
    }

    /// INT96: nanoseconds of the day then the Julian day (2440588 is 1970-01-01), as a nanosecond timestamp when it
    /// fits 64 bits (1677–2262), else in the finest unit that does (microseconds, as Spark reads them, then
    /// milliseconds), so year 9999 and far beyond keep their value.
    static func int96(_ bytes: ArraySlice<UInt8>) -> ParquetValue {
        guard bytes.count == 12 else { return .null }
        var nanos: UInt64 = 0
        var julian: UInt32 = 0
        for (index, byte) in bytes.prefix(8).enumerated() { nanos |= UInt64(byte) << (8 * UInt64(index)) }
        for (index, byte) in bytes.dropFirst(8).enumerated() { julian |= UInt32(byte) << (8 * UInt32(index)) }
        let days = Int64(julian) - 2_440_588
        // The nanoseconds are unsigned, as Arrow reads them.
        let (product, overflow) = days.multipliedReportingOverflow(by: 86_400_000_000_000)
        let (sum, overflow2) = product.addingReportingOverflow(Int64(truncatingIfNeeded: nanos))
        if !overflow, !overflow2, nanos <= UInt64(Int64.max) { return .timestamp(sum, unit: .nanos, utc: false) }
        for (unit, perDay, divisor) in [(TimeUnit.micros, Int64(86_400_000_000), Int64(1000)), (.millis, 86_400_000, 1_000_000)] {
            let (scaled, overflow3) = days.multipliedReportingOverflow(by: perDay)
            let (total, overflow4) = scaled.addingReportingOverflow(Int64(nanos / UInt64(divisor)))
            if !overflow3, !overflow4 { return .timestamp(total, unit: unit, utc: false) }
        }
        return .null
    }
}
