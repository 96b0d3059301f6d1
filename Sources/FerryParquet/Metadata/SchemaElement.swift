/// One node of a file's schema (parquet.thrift `SchemaElement`): the schema is a tree flattened depth-first, a
/// group (inner node) having `numChildren` and a leaf (column) having a physical `type`.
package struct SchemaElement: Sendable, Equatable {
    package var type: PhysicalType?
    /// The byte length of FIXED_LEN_BYTE_ARRAY values.
    package var typeLength: Int32?
    /// Absent only on the root.
    package var repetitionType: FieldRepetitionType?
    package var name: String
    package var numChildren: Int32?
    package var convertedType: ConvertedType?
    package var scale: Int32?
    package var precision: Int32?
    package var fieldID: Int32?
    package var logicalType: LogicalType?

    package init(
        type: PhysicalType? = nil,
        typeLength: Int32? = nil,
        repetitionType: FieldRepetitionType? = nil,
        name: String,
        numChildren: Int32? = nil,
        convertedType: ConvertedType? = nil,
        scale: Int32? = nil,
        precision: Int32? = nil,
        fieldID: Int32? = nil,
        logicalType: LogicalType? = nil
    ) {
        self.type = type
        self.typeLength = typeLength
        self.repetitionType = repetitionType
        self.name = name
        self.numChildren = numChildren
        self.convertedType = convertedType
        self.scale = scale
        self.precision = precision
        self.fieldID = fieldID
        self.logicalType = logicalType
    }
}

extension SchemaElement: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var name: String?
        self.init(name: "")
        try reader.beginStruct("SchemaElement")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: type = try reader.readEnum(field, "SchemaElement.type")
            case 2: typeLength = try reader.readI32(field, "SchemaElement.type_length")
            case 3: repetitionType = try reader.readEnum(field, "SchemaElement.repetition_type")
            case 4: name = try reader.readString(field, "SchemaElement.name")
            case 5: numChildren = try reader.readI32(field, "SchemaElement.num_children")
            case 6: convertedType = try reader.readEnum(field, "SchemaElement.converted_type")
            case 7: scale = try reader.readI32(field, "SchemaElement.scale")
            case 8: precision = try reader.readI32(field, "SchemaElement.precision")
            case 9: fieldID = try reader.readI32(field, "SchemaElement.field_id")
            case 10: logicalType = try reader.readStruct(field, "SchemaElement.logicalType")
            default: try reader.skip(field)
            }
        }
        self.name = try reader.require(name, "SchemaElement.name")
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        if let type { writer.writeEnumField(1, type) }
        if let typeLength { writer.writeI32Field(2, typeLength) }
        if let repetitionType { writer.writeEnumField(3, repetitionType) }
        writer.writeStringField(4, name)
        if let numChildren { writer.writeI32Field(5, numChildren) }
        if let convertedType { writer.writeEnumField(6, convertedType) }
        if let scale { writer.writeI32Field(7, scale) }
        if let precision { writer.writeI32Field(8, precision) }
        if let fieldID { writer.writeI32Field(9, fieldID) }
        if let logicalType { writer.writeStructField(10, logicalType) }
        writer.endStruct()
    }
}
