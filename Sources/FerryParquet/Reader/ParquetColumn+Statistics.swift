extension ParquetColumn {
    /// A footer statistic (min or max, PLAIN-encoded in the physical type) as a value; nil when its bytes do not fit
    /// the type.
    package func statisticValue(_ bytes: [UInt8]) -> ParquetValue? {
        func integer(_ width: Int) -> Int64? {
            guard bytes.count == width else { return nil }
            var value: UInt64 = 0
            for (index, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
            return width == 4 ? Int64(Int32(truncatingIfNeeded: value)) : Int64(bitPattern: value)
        }
        let data: ParquetValues
        switch physicalType {
        case .boolean:
            guard bytes.count == 1 else { return nil }
            data = .boolean([bytes[0] != 0])
        case .int32:
            guard let value = integer(4) else { return nil }
            data = .int32([Int32(truncatingIfNeeded: value)])
        case .int64:
            guard let value = integer(8) else { return nil }
            data = .int64([value])
        case .float:
            guard let value = integer(4) else { return nil }
            data = .float([Float(bitPattern: UInt32(truncatingIfNeeded: value))])
        case .double:
            guard let value = integer(8) else { return nil }
            data = .double([Double(bitPattern: UInt64(bitPattern: value))])
        case .int96:
            guard bytes.count == 12 else { return nil }
            data = .int96(ByteArrays(fixed: bytes, width: 12))
        case .fixedLenByteArray:
            data = .fixed(ByteArrays(fixed: bytes, width: bytes.count))
        default:
            data = .byteArrays(ByteArrays(bytes: bytes, offsets: [0, Int32(truncatingIfNeeded: bytes.count)]))
        }
        return ParquetColumnData(column: self, present: nil, values: data, rowCount: 1).value(at: 0)
    }

    /// How the column is described: `INT64 TIMESTAMP(MICROS, UTC)`, `BYTE_ARRAY STRING`, `INT32 DECIMAL(9, 2)`.
    package var typeDescription: String {
        let logical: String
        switch kind {
        case .boolean, .float, .double, .binary: logical = ""
        case .integer(let bits, let signed): logical = (signed ? "INT" : "UINT") + "\(bits)"
        case .string: logical = "STRING"
        case .fixedBinary: logical = ""
        case .date: logical = "DATE"
        case .timestamp(let unit, let utc): logical = "TIMESTAMP(\(unit.name)\(utc ? ", UTC" : ""))"
        case .time(let unit, let utc): logical = "TIME(\(unit.name)\(utc ? ", UTC" : ""))"
        case .decimal(let precision, let scale): logical = "DECIMAL(\(precision), \(scale))"
        case .int96Timestamp: logical = "TIMESTAMP(NANOS)"
        }
        let physical = physicalType == .fixedLenByteArray ? "FIXED_LEN_BYTE_ARRAY(\(typeLength ?? 0))" : "\(physicalType)"
        return logical.isEmpty || logical == physical ? physical : physical + " " + logical
    }
}

extension TimeUnit {
    package var name: String {
        switch self {
        case .millis: "MILLIS"
        case .micros: "MICROS"
        case .nanos: "NANOS"
        }
    }
}
