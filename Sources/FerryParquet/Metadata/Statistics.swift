/// Statistics of a column chunk or a page (parquet.thrift `Statistics`): min and max values PLAIN-encoded
/// (without a length prefix for byte arrays), null and distinct counts. All fields are optional.
package struct Statistics: Sendable, Equatable {
    /// Deprecated: the maximum by signed comparison.
    package var max: [UInt8]?
    /// Deprecated: the minimum by signed comparison.
    package var min: [UInt8]?
    package var nullCount: Int64?
    package var distinctCount: Int64?
    /// The maximum (or an upper bound) in the column's `ColumnOrder`.
    package var maxValue: [UInt8]?
    /// The minimum (or a lower bound) in the column's `ColumnOrder`.
    package var minValue: [UInt8]?
    package var isMaxValueExact: Bool?
    package var isMinValueExact: Bool?

    package init(
        max: [UInt8]? = nil,
        min: [UInt8]? = nil,
        nullCount: Int64? = nil,
        distinctCount: Int64? = nil,
        maxValue: [UInt8]? = nil,
        minValue: [UInt8]? = nil,
        isMaxValueExact: Bool? = nil,
        isMinValueExact: Bool? = nil
    ) {
        self.max = max
        self.min = min
        self.nullCount = nullCount
        self.distinctCount = distinctCount
        self.maxValue = maxValue
        self.minValue = minValue
        self.isMaxValueExact = isMaxValueExact
        self.isMinValueExact = isMinValueExact
    }
}

extension Statistics: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        self.init()
        try reader.beginStruct("Statistics")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: max = try reader.readBinary(field, "Statistics.max")
            case 2: min = try reader.readBinary(field, "Statistics.min")
            case 3: nullCount = try reader.readI64(field, "Statistics.null_count")
            case 4: distinctCount = try reader.readI64(field, "Statistics.distinct_count")
            case 5: maxValue = try reader.readBinary(field, "Statistics.max_value")
            case 6: minValue = try reader.readBinary(field, "Statistics.min_value")
            case 7: isMaxValueExact = try reader.readBool(field, "Statistics.is_max_value_exact")
            case 8: isMinValueExact = try reader.readBool(field, "Statistics.is_min_value_exact")
            default: try reader.skip(field)
            }
        }
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        if let max { writer.writeBinaryField(1, max) }
        if let min { writer.writeBinaryField(2, min) }
        if let nullCount { writer.writeI64Field(3, nullCount) }
        if let distinctCount { writer.writeI64Field(4, distinctCount) }
        if let maxValue { writer.writeBinaryField(5, maxValue) }
        if let minValue { writer.writeBinaryField(6, minValue) }
        if let isMaxValueExact { writer.writeBoolField(7, isMaxValueExact) }
        if let isMinValueExact { writer.writeBoolField(8, isMinValueExact) }
        writer.endStruct()
    }
}
