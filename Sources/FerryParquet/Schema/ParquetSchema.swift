/// The columns of a flat Parquet file (no nested groups, lists or maps), and their Thrift schema elements.
package struct ParquetSchema: Sendable, Equatable {
    package var columns: [ParquetColumn]

    package init(_ columns: [ParquetColumn]) { self.columns = columns }

    /// The schema as the footer stores it: a root group, then one leaf per column, with both the logical type and
    /// the older converted type (readers that predate logical types use the latter).
    package func elements() -> [SchemaElement] {
        var elements = [SchemaElement(name: "schema", numChildren: Int32(columns.count))]
        for column in columns {
            var element = SchemaElement(
                type: column.physicalType, typeLength: column.typeLength.map { Int32($0) },
                repetitionType: column.nullable ? .optional : .required, name: column.name)
            switch column.kind {
            case .boolean, .float, .double, .binary, .fixedBinary, .int96Timestamp:
                break
            case .integer(let bits, let signed):
                element.logicalType = .integer(bitWidth: Int8(bits), isSigned: signed)
                element.convertedType = Self.integerConvertedType(bits: bits, signed: signed)
            case .string:
                element.logicalType = .string
                element.convertedType = .utf8
            case .date:
                element.logicalType = .date
                element.convertedType = .date
            case .timestamp(let unit, let utc):
                element.logicalType = .timestamp(isAdjustedToUTC: utc, unit: unit)
                if utc { element.convertedType = unit == .millis ? .timestampMillis : unit == .micros ? .timestampMicros : nil }
            case .time(let unit, let utc):
                element.logicalType = .time(isAdjustedToUTC: utc, unit: unit)
                if utc { element.convertedType = unit == .millis ? .timeMillis : unit == .micros ? .timeMicros : nil }
            case .decimal(let precision, let scale):
                element.logicalType = .decimal(scale: Int32(scale), precision: Int32(precision))
                element.convertedType = .decimal
                element.precision = Int32(precision)
                element.scale = Int32(scale)
            }
            elements.append(element)
        }
        return elements
    }

    static func integerConvertedType(bits: Int, signed: Bool) -> ConvertedType? {
        switch (bits, signed) {
        case (8, true): .int8
        case (16, true): .int16
        case (32, true): .int32
        case (64, true): .int64
        case (8, false): .uint8
        case (16, false): .uint16
        case (32, false): .uint32
        case (64, false): .uint64
        default: nil
        }
    }

    /// The columns of a footer's schema; nested groups, repeated fields and types Ferry does not read are refused by
    /// name.
    package init(elements: [SchemaElement]) throws(ParquetError) {
        guard let root = elements.first else { throw ParquetError("footer: the schema is empty") }
        let children = Int(root.numChildren ?? 0)
        guard children == elements.count - 1 else {
            let nested = elements.dropFirst().first { ($0.numChildren ?? 0) > 0 }
            if let nested {
                throw ParquetError(
                    "column \(nested.name) is nested (a group, list or map): Ferry reads flat columns only")
            }
            throw ParquetError("footer: the schema's root has \(children) children but \(elements.count - 1) elements follow")
        }
        var columns: [ParquetColumn] = []
        columns.reserveCapacity(children)
        for element in elements.dropFirst() {
            columns.append(try Self.column(element))
        }
        self.columns = columns
    }

    static func column(_ element: SchemaElement) throws(ParquetError) -> ParquetColumn {
        let name = element.name
        if (element.numChildren ?? 0) > 0 || element.type == nil {
            throw ParquetError("column \(name) is nested (a group, list or map): Ferry reads flat columns only")
        }
        guard let physical = element.type else { throw ParquetError("column \(name) has no type") }
        if element.repetitionType == .repeated {
            throw ParquetError("column \(name) is repeated (a legacy list): Ferry reads flat columns only")
        }
        let nullable = element.repetitionType != .required
        var typeLength: Int?
        if physical == .fixedLenByteArray {
            guard let length = element.typeLength, length > 0, length <= 1 << 20 else {
                throw ParquetError("column \(name): FIXED_LEN_BYTE_ARRAY with a width of \(element.typeLength.map { "\($0)" } ?? "none")")
            }
            typeLength = Int(length)
        }
        let kind = try Self.kind(of: element, physical: physical, typeLength: typeLength)
        return ParquetColumn(name: name, kind: kind, nullable: nullable, physicalType: physical, typeLength: typeLength)
    }

    /// What a leaf's values mean: its logical type first, the older converted type when it has none, else its
    /// physical type alone.
    static func kind(of element: SchemaElement, physical: PhysicalType, typeLength: Int?) throws(ParquetError) -> ParquetColumn.Kind {
        let name = element.name
        func refuse(_ what: String) -> ParquetError { ParquetError("column \(name): \(what) is not a type Ferry reads") }
        if let logical = element.logicalType {
            switch logical {
            case .string, .json, .enumeration, .uuid:
                if logical == .uuid, physical == .fixedLenByteArray { return .fixedBinary(width: typeLength ?? 16) }
                guard physical == .byteArray else { throw refuse("\(logical) on \(physical)") }
                return .string
            case .bson:
                guard physical == .byteArray else { throw refuse("BSON on \(physical)") }
                return .binary
            case .date:
                guard physical == .int32 else { throw refuse("DATE on \(physical)") }
                return .date
            case .timestamp(let utc, let unit):
                guard physical == .int64 else { throw refuse("TIMESTAMP on \(physical)") }
                return .timestamp(unit: unit, utc: utc)
            case .time(let utc, let unit):
                guard (unit == .millis && physical == .int32) || (unit != .millis && physical == .int64) else {
                    throw refuse("TIME on \(physical)")
                }
                return .time(unit: unit, utc: utc)
            case .integer(let bits, let signed):
                guard [8, 16, 32, 64].contains(Int(bits)), physical == (bits > 32 ? .int64 : .int32) else {
                    throw refuse("INTEGER(\(bits)) on \(physical)")
                }
                return .integer(bits: Int(bits), signed: signed)
            case .decimal(let scale, let precision):
                return try decimal(name: name, physical: physical, precision: Int(precision), scale: Int(scale), typeLength: typeLength)
            case .null:
                return try plain(physical, typeLength: typeLength, name: name)
            case .map, .list:
                throw ParquetError("column \(name) is nested (a list or map): Ferry reads flat columns only")
            case .float16:
                throw refuse("FLOAT16")
            case .unknown:
                // A logical type newer than this reader: the physical type still says how to read the values.
                break
            }
        }
        if let converted = element.convertedType {
            switch converted {
            case .utf8, .json, .enumeration:
                guard physical == .byteArray else { throw refuse("\(converted) on \(physical)") }
                return .string
            case .bson: return .binary
            case .date: return .date
            case .timestampMillis: return .timestamp(unit: .millis, utc: true)
            case .timestampMicros: return .timestamp(unit: .micros, utc: true)
            case .timeMillis: return .time(unit: .millis, utc: true)
            case .timeMicros: return .time(unit: .micros, utc: true)
            case .int8: return .integer(bits: 8, signed: true)
            case .int16: return .integer(bits: 16, signed: true)
            case .int32: return .integer(bits: 32, signed: true)
            case .int64: return .integer(bits: 64, signed: true)
            case .uint8: return .integer(bits: 8, signed: false)
            case .uint16: return .integer(bits: 16, signed: false)
            case .uint32: return .integer(bits: 32, signed: false)
            case .uint64: return .integer(bits: 64, signed: false)
            case .decimal:
                return try decimal(
                    name: name, physical: physical, precision: Int(element.precision ?? 0), scale: Int(element.scale ?? 0), typeLength: typeLength)
            case .map, .mapKeyValue, .list:
                throw ParquetError("column \(name) is nested (a list or map): Ferry reads flat columns only")
            default:
                throw refuse("\(converted)")
            }
        }
        return try plain(physical, typeLength: typeLength, name: name)
    }

    static func plain(_ physical: PhysicalType, typeLength: Int?, name: String) throws(ParquetError) -> ParquetColumn.Kind {
        switch physical {
        case .boolean: return .boolean
        case .int32: return .integer(bits: 32, signed: true)
        case .int64: return .integer(bits: 64, signed: true)
        case .int96: return .int96Timestamp
        case .float: return .float
        case .double: return .double
        case .byteArray: return .binary
        case .fixedLenByteArray: return .fixedBinary(width: typeLength ?? 0)
        default: throw ParquetError("column \(name): \(physical) is not a type Ferry reads")
        }
    }

    static func decimal(name: String, physical: PhysicalType, precision: Int, scale: Int, typeLength: Int?) throws(ParquetError)
        -> ParquetColumn.Kind
    {
        guard precision >= 1, scale >= 0, scale <= precision else {
            throw ParquetError("column \(name): DECIMAL(\(precision), \(scale)) is not a valid decimal")
        }
        let fits: Bool
        switch physical {
        case .int32: fits = precision <= 9
        case .int64: fits = precision <= 18
        case .fixedLenByteArray: fits = (typeLength ?? 0) <= 32 && precision <= 76
        case .byteArray: fits = precision <= 76
        default: fits = false
        }
        guard fits else { throw ParquetError("column \(name): DECIMAL(\(precision), \(scale)) on \(physical) is not a type Ferry reads") }
        return .decimal(precision: precision, scale: scale)
    }
}
