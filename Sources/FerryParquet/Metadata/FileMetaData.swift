/// A column a row group is sorted by (parquet.thrift `SortingColumn`).
package struct SortingColumn: Sendable, Equatable {
    /// The column's index among the row group's columns.
    package var columnIdx: Int32
    package var descending: Bool
    package var nullsFirst: Bool

    package init(columnIdx: Int32, descending: Bool, nullsFirst: Bool) {
        self.columnIdx = columnIdx
        self.descending = descending
        self.nullsFirst = nullsFirst
    }
}

extension SortingColumn: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var columnIdx: Int32?
        var descending: Bool?
        var nullsFirst: Bool?
        try reader.beginStruct("SortingColumn")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: columnIdx = try reader.readI32(field, "SortingColumn.column_idx")
            case 2: descending = try reader.readBool(field, "SortingColumn.descending")
            case 3: nullsFirst = try reader.readBool(field, "SortingColumn.nulls_first")
            default: try reader.skip(field)
            }
        }
        self.init(
            columnIdx: try reader.require(columnIdx, "SortingColumn.column_idx"),
            descending: try reader.require(descending, "SortingColumn.descending"),
            nullsFirst: try reader.require(nullsFirst, "SortingColumn.nulls_first")
        )
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeI32Field(1, columnIdx)
        writer.writeBoolField(2, descending)
        writer.writeBoolField(3, nullsFirst)
        writer.endStruct()
    }
}

/// A horizontal slice of the file: one chunk per leaf column, in schema order (parquet.thrift `RowGroup`).
package struct RowGroup: Sendable, Equatable {
    package var columns: [ColumnChunk]
    /// Bytes of the uncompressed column data.
    package var totalByteSize: Int64
    package var numRows: Int64
    package var sortingColumns: [SortingColumn]?
    /// File offset of the row group's first page.
    package var fileOffset: Int64?
    package var totalCompressedSize: Int64?
    package var ordinal: Int16?

    package init(
        columns: [ColumnChunk],
        totalByteSize: Int64,
        numRows: Int64,
        sortingColumns: [SortingColumn]? = nil,
        fileOffset: Int64? = nil,
        totalCompressedSize: Int64? = nil,
        ordinal: Int16? = nil
    ) {
        self.columns = columns
        self.totalByteSize = totalByteSize
        self.numRows = numRows
        self.sortingColumns = sortingColumns
        self.fileOffset = fileOffset
        self.totalCompressedSize = totalCompressedSize
        self.ordinal = ordinal
    }
}

extension RowGroup: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var columns: [ColumnChunk]?
        var totalByteSize: Int64?
        var numRows: Int64?
        self.init(columns: [], totalByteSize: 0, numRows: 0)
        try reader.beginStruct("RowGroup")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: columns = try reader.readStructList(field, "RowGroup.columns")
            case 2: totalByteSize = try reader.readI64(field, "RowGroup.total_byte_size")
            case 3: numRows = try reader.readI64(field, "RowGroup.num_rows")
            case 4: sortingColumns = try reader.readStructList(field, "RowGroup.sorting_columns")
            case 5: fileOffset = try reader.readI64(field, "RowGroup.file_offset")
            case 6: totalCompressedSize = try reader.readI64(field, "RowGroup.total_compressed_size")
            case 7: ordinal = try reader.readI16(field, "RowGroup.ordinal")
            default: try reader.skip(field)
            }
        }
        self.columns = try reader.require(columns, "RowGroup.columns")
        self.totalByteSize = try reader.require(totalByteSize, "RowGroup.total_byte_size")
        self.numRows = try reader.require(numRows, "RowGroup.num_rows")
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeStructListField(1, columns)
        writer.writeI64Field(2, totalByteSize)
        writer.writeI64Field(3, numRows)
        if let sortingColumns { writer.writeStructListField(4, sortingColumns) }
        if let fileOffset { writer.writeI64Field(5, fileOffset) }
        if let totalCompressedSize { writer.writeI64Field(6, totalCompressedSize) }
        if let ordinal { writer.writeI16Field(7, ordinal) }
        writer.endStruct()
    }
}

/// A Parquet file's footer (parquet.thrift `FileMetaData`): the schema, the row groups and where their column
/// chunks are. Of the encryption fields only the presence of `encryption_algorithm` is kept;
/// `footer_signing_key_metadata` (9) is skipped.
package struct FileMetaData: Sendable, Equatable {
    package var version: Int32
    /// The schema flattened depth-first, the root first.
    package var schema: [SchemaElement]
    package var numRows: Int64
    package var rowGroups: [RowGroup]
    package var keyValueMetadata: [KeyValue]?
    /// The writing application ("parquet-cpp-arrow version 20.0.0").
    package var createdBy: String?
    /// The order of each leaf column's statistics, in leaf order.
    package var columnOrders: [ColumnOrder]?
    /// Whether `encryption_algorithm` (8) is present: an encrypted file with a plaintext footer. Written back as
    /// an empty `AES_GCM_V1` algorithm.
    package var hasEncryptionAlgorithm: Bool

    package init(
        version: Int32,
        schema: [SchemaElement],
        numRows: Int64,
        rowGroups: [RowGroup],
        keyValueMetadata: [KeyValue]? = nil,
        createdBy: String? = nil,
        columnOrders: [ColumnOrder]? = nil,
        hasEncryptionAlgorithm: Bool = false
    ) {
        self.version = version
        self.schema = schema
        self.numRows = numRows
        self.rowGroups = rowGroups
        self.keyValueMetadata = keyValueMetadata
        self.createdBy = createdBy
        self.columnOrders = columnOrders
        self.hasEncryptionAlgorithm = hasEncryptionAlgorithm
    }
}

extension FileMetaData: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var version: Int32?
        var schema: [SchemaElement]?
        var numRows: Int64?
        var rowGroups: [RowGroup]?
        self.init(version: 0, schema: [], numRows: 0, rowGroups: [])
        try reader.beginStruct("FileMetaData")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: version = try reader.readI32(field, "FileMetaData.version")
            case 2: schema = try reader.readStructList(field, "FileMetaData.schema")
            case 3: numRows = try reader.readI64(field, "FileMetaData.num_rows")
            case 4: rowGroups = try reader.readStructList(field, "FileMetaData.row_groups")
            case 5: keyValueMetadata = try reader.readStructList(field, "FileMetaData.key_value_metadata")
            case 6: createdBy = try reader.readString(field, "FileMetaData.created_by")
            case 7: columnOrders = try reader.readStructList(field, "FileMetaData.column_orders")
            case 8:
                hasEncryptionAlgorithm = true
                try reader.skip(field)
            default: try reader.skip(field)
            }
        }
        self.version = try reader.require(version, "FileMetaData.version")
        self.schema = try reader.require(schema, "FileMetaData.schema")
        self.numRows = try reader.require(numRows, "FileMetaData.num_rows")
        self.rowGroups = try reader.require(rowGroups, "FileMetaData.row_groups")
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeI32Field(1, version)
        writer.writeStructListField(2, schema)
        writer.writeI64Field(3, numRows)
        writer.writeStructListField(4, rowGroups)
        if let keyValueMetadata { writer.writeStructListField(5, keyValueMetadata) }
        if let createdBy { writer.writeStringField(6, createdBy) }
        if let columnOrders { writer.writeStructListField(7, columnOrders) }
        if hasEncryptionAlgorithm {
            writer.writeStructField(8) { writer in writer.writeEmptyStructField(1) }
        }
        writer.endStruct()
    }
}

extension FileMetaData {
    /// Reads a footer: `bytes` are the metadata before the file's last 8 bytes (length and "PAR1").
    package static func decode(_ bytes: ArraySlice<UInt8>) throws(ParquetError) -> FileMetaData {
        var reader = ThriftCompactReader(bytes, context: "footer")
        return try FileMetaData(from: &reader)
    }

    /// The footer in the compact protocol.
    package func encoded() -> [UInt8] {
        var writer = ThriftCompactWriter()
        encode(into: &writer)
        return writer.bytes
    }
}
