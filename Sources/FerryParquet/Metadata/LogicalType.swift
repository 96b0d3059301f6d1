/// The unit of a TIME or TIMESTAMP logical type (parquet.thrift union `TimeUnit`: 1 MILLIS, 2 MICROS, 3 NANOS).
package enum TimeUnit: Sendable, Equatable {
    case millis
    case micros
    case nanos
}

extension TimeUnit: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var unit: TimeUnit?
        try reader.beginStruct("TimeUnit")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: unit = .millis
            case 2: unit = .micros
            case 3: unit = .nanos
            default: throw reader.error("TimeUnit has unknown member \(field.id)")
            }
            try reader.readEmptyStruct(field, "TimeUnit member \(field.id)")
        }
        self = try reader.require(unit, "TimeUnit (union with no member set)")
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        switch self {
        case .millis: writer.writeEmptyStructField(1)
        case .micros: writer.writeEmptyStructField(2)
        case .nanos: writer.writeEmptyStructField(3)
        }
        writer.endStruct()
    }
}

/// What a column's values mean beyond their physical type (parquet.thrift union `LogicalType`). Members this
/// reader does not know (VARIANT, GEOMETRY... or anything newer) decode as `.unknown(fieldID:)` with their body
/// skipped, so a file using them can still be opened and the column refused by name; a union with no member set
/// decodes as `.unknown(fieldID: 0)`.
package enum LogicalType: Sendable, Equatable {
    case string
    case map
    case list
    case enumeration
    case decimal(scale: Int32, precision: Int32)
    case date
    case time(isAdjustedToUTC: Bool, unit: TimeUnit)
    case timestamp(isAdjustedToUTC: Bool, unit: TimeUnit)
    case integer(bitWidth: Int8, isSigned: Bool)
    /// The `UNKNOWN` member (11): a column that is always null.
    case null
    case json
    case bson
    case uuid
    case float16
    /// A member this reader does not know, by its union field id.
    case unknown(fieldID: Int16)
}

extension LogicalType: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var result = LogicalType.unknown(fieldID: 0)
        try reader.beginStruct("LogicalType")
        while let field = try reader.nextField() {
            result = try Self.readMember(field, &reader)
        }
        self = result
    }

    /// The member in union field `field`.
    private static func readMember(_ field: ThriftField, _ reader: inout ThriftCompactReader) throws(ParquetError) -> LogicalType {
        if let empty = emptyMember(field.id) {
            try reader.readEmptyStruct(field, "LogicalType member \(field.id)")
            return empty
        }
        switch field.id {
        case 5: return try readDecimal(field, &reader)
        case 7, 8: return try readTime(field, &reader)
        case 10: return try readInteger(field, &reader)
        default:
            try reader.skip(field)
            return .unknown(fieldID: field.id)
        }
    }

    /// The members whose body is an empty struct, by field id.
    private static func emptyMember(_ id: Int16) -> LogicalType? {
        switch id {
        case 1: .string
        case 2: .map
        case 3: .list
        case 4: .enumeration
        case 6: .date
        case 11: .null
        case 12: .json
        case 13: .bson
        case 14: .uuid
        case 15: .float16
        default: nil
        }
    }

    private static func readDecimal(_ field: ThriftField, _ reader: inout ThriftCompactReader) throws(ParquetError) -> LogicalType {
        try reader.expect(field, .structure, "LogicalType.DECIMAL")
        var scale: Int32?
        var precision: Int32?
        try reader.beginStruct("DecimalType")
        while let member = try reader.nextField() {
            switch member.id {
            case 1: scale = try reader.readI32(member, "DecimalType.scale")
            case 2: precision = try reader.readI32(member, "DecimalType.precision")
            default: try reader.skip(member)
            }
        }
        return .decimal(
            scale: try reader.require(scale, "DecimalType.scale"),
            precision: try reader.require(precision, "DecimalType.precision")
        )
    }

    /// A TimeType (field 7) or TimestampType (field 8), which have the same fields.
    private static func readTime(_ field: ThriftField, _ reader: inout ThriftCompactReader) throws(ParquetError) -> LogicalType {
        let name = field.id == 7 ? "TimeType" : "TimestampType"
        try reader.expect(field, .structure, "LogicalType.\(field.id == 7 ? "TIME" : "TIMESTAMP")")
        var isAdjustedToUTC: Bool?
        var unit: TimeUnit?
        try reader.beginStruct(name)
        while let member = try reader.nextField() {
            switch member.id {
            case 1: isAdjustedToUTC = try reader.readBool(member, "\(name).isAdjustedToUTC")
            case 2: unit = try reader.readStruct(member, "\(name).unit")
            default: try reader.skip(member)
            }
        }
        let adjusted = try reader.require(isAdjustedToUTC, "\(name).isAdjustedToUTC")
        let timeUnit = try reader.require(unit, "\(name).unit")
        return field.id == 7 ? .time(isAdjustedToUTC: adjusted, unit: timeUnit) : .timestamp(isAdjustedToUTC: adjusted, unit: timeUnit)
    }

    private static func readInteger(_ field: ThriftField, _ reader: inout ThriftCompactReader) throws(ParquetError) -> LogicalType {
        try reader.expect(field, .structure, "LogicalType.INTEGER")
        var bitWidth: Int8?
        var isSigned: Bool?
        try reader.beginStruct("IntType")
        while let member = try reader.nextField() {
            switch member.id {
            case 1: bitWidth = try reader.readI8(member, "IntType.bitWidth")
            case 2: isSigned = try reader.readBool(member, "IntType.isSigned")
            default: try reader.skip(member)
            }
        }
        return .integer(
            bitWidth: try reader.require(bitWidth, "IntType.bitWidth"),
            isSigned: try reader.require(isSigned, "IntType.isSigned")
        )
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writeMember(into: &writer)
        writer.endStruct()
    }

    /// The union's one member.
    private func writeMember(into writer: inout ThriftCompactWriter) {
        switch self {
        case .string: writer.writeEmptyStructField(1)
        case .map: writer.writeEmptyStructField(2)
        case .list: writer.writeEmptyStructField(3)
        case .enumeration: writer.writeEmptyStructField(4)
        case .decimal(let scale, let precision):
            writer.writeStructField(5) { writer in
                writer.writeI32Field(1, scale)
                writer.writeI32Field(2, precision)
            }
        case .date: writer.writeEmptyStructField(6)
        case .time(let isAdjustedToUTC, let unit): Self.writeTime(7, isAdjustedToUTC, unit, into: &writer)
        case .timestamp(let isAdjustedToUTC, let unit): Self.writeTime(8, isAdjustedToUTC, unit, into: &writer)
        case .integer(let bitWidth, let isSigned):
            writer.writeStructField(10) { writer in
                writer.writeI8Field(1, bitWidth)
                writer.writeBoolField(2, isSigned)
            }
        case .null: writer.writeEmptyStructField(11)
        case .json: writer.writeEmptyStructField(12)
        case .bson: writer.writeEmptyStructField(13)
        case .uuid: writer.writeEmptyStructField(14)
        case .float16: writer.writeEmptyStructField(15)
        case .unknown(let fieldID): if fieldID != 0 { writer.writeEmptyStructField(fieldID) }
        }
    }

    private static func writeTime(_ id: Int16, _ isAdjustedToUTC: Bool, _ unit: TimeUnit, into writer: inout ThriftCompactWriter) {
        writer.writeStructField(id) { writer in
            writer.writeBoolField(1, isAdjustedToUTC)
            writer.writeStructField(2, unit)
        }
    }
}

/// The order of a column's min and max statistics (parquet.thrift union `ColumnOrder`): `TYPE_ORDER` (field 1,
/// an empty struct) or one this reader does not know (IEEE_754_TOTAL_ORDER or newer), whose statistics it must
/// not use.
package enum ColumnOrder: Sendable, Equatable {
    case typeDefined
    case unknown
}

extension ColumnOrder: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var result = ColumnOrder.unknown
        try reader.beginStruct("ColumnOrder")
        while let field = try reader.nextField() {
            if field.id == 1 {
                try reader.readEmptyStruct(field, "ColumnOrder.TYPE_ORDER")
                result = .typeDefined
            } else {
                try reader.skip(field)
                result = .unknown
            }
        }
        self = result
    }

    /// `.unknown` is written as a union with no member set, which reads back as `.unknown`.
    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        if self == .typeDefined { writer.writeEmptyStructField(1) }
        writer.endStruct()
    }
}
