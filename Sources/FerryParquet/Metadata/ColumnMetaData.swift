/// One entry of key-value metadata (parquet.thrift `KeyValue`), on the file or on a column chunk.
package struct KeyValue: Sendable, Equatable {
    package var key: String
    package var value: String?

    package init(key: String, value: String? = nil) {
        self.key = key
        self.value = value
    }
}

extension KeyValue: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var key: String?
        var value: String?
        try reader.beginStruct("KeyValue")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: key = try reader.readString(field, "KeyValue.key")
            case 2: value = try reader.readString(field, "KeyValue.value")
            default: try reader.skip(field)
            }
        }
        self.init(key: try reader.require(key, "KeyValue.key"), value: value)
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeStringField(1, key)
        if let value { writer.writeStringField(2, value) }
        writer.endStruct()
    }
}

/// How many pages of a column chunk have a given kind and encoding (parquet.thrift `PageEncodingStats`).
package struct PageEncodingStats: Sendable, Equatable {
    package var pageType: PageType
    package var encoding: Encoding
    package var count: Int32

    package init(pageType: PageType, encoding: Encoding, count: Int32) {
        self.pageType = pageType
        self.encoding = encoding
        self.count = count
    }
}

extension PageEncodingStats: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var pageType: PageType?
        var encoding: Encoding?
        var count: Int32?
        try reader.beginStruct("PageEncodingStats")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: pageType = try reader.readEnum(field, "PageEncodingStats.page_type")
            case 2: encoding = try reader.readEnum(field, "PageEncodingStats.encoding")
            case 3: count = try reader.readI32(field, "PageEncodingStats.count")
            default: try reader.skip(field)
            }
        }
        self.init(
            pageType: try reader.require(pageType, "PageEncodingStats.page_type"),
            encoding: try reader.require(encoding, "PageEncodingStats.encoding"),
            count: try reader.require(count, "PageEncodingStats.count")
        )
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeEnumField(1, pageType)
        writer.writeEnumField(2, encoding)
        writer.writeI32Field(3, count)
        writer.endStruct()
    }
}

/// Where a column chunk's pages are and how they are stored (parquet.thrift `ColumnMetaData`). Fields after
/// `encoding_stats` (13) — Bloom filter, size and geospatial statistics — are skipped.
package struct ColumnMetaData: Sendable, Equatable {
    package var type: PhysicalType
    /// Every encoding used by the chunk's pages (values and levels).
    package var encodings: [Encoding]
    /// The column's path from the schema root (root excluded).
    package var pathInSchema: [String]
    package var codec: CompressionCodec
    package var numValues: Int64
    /// Bytes of all pages uncompressed, headers included.
    package var totalUncompressedSize: Int64
    /// Bytes of all pages as stored, headers included.
    package var totalCompressedSize: Int64
    package var keyValueMetadata: [KeyValue]?
    /// File offset of the first data page.
    package var dataPageOffset: Int64
    package var indexPageOffset: Int64?
    /// File offset of the dictionary page, when there is one.
    package var dictionaryPageOffset: Int64?
    package var statistics: Statistics?
    package var encodingStats: [PageEncodingStats]?

    package init(
        type: PhysicalType,
        encodings: [Encoding],
        pathInSchema: [String],
        codec: CompressionCodec,
        numValues: Int64,
        totalUncompressedSize: Int64,
        totalCompressedSize: Int64,
        keyValueMetadata: [KeyValue]? = nil,
        dataPageOffset: Int64,
        indexPageOffset: Int64? = nil,
        dictionaryPageOffset: Int64? = nil,
        statistics: Statistics? = nil,
        encodingStats: [PageEncodingStats]? = nil
    ) {
        self.type = type
        self.encodings = encodings
        self.pathInSchema = pathInSchema
        self.codec = codec
        self.numValues = numValues
        self.totalUncompressedSize = totalUncompressedSize
        self.totalCompressedSize = totalCompressedSize
        self.keyValueMetadata = keyValueMetadata
        self.dataPageOffset = dataPageOffset
        self.indexPageOffset = indexPageOffset
        self.dictionaryPageOffset = dictionaryPageOffset
        self.statistics = statistics
        self.encodingStats = encodingStats
    }
}

extension ColumnMetaData: ThriftStruct {
    /// The required fields while they are being read.
    private struct Required {
        var type: PhysicalType?
        var encodings: [Encoding]?
        var pathInSchema: [String]?
        var codec: CompressionCodec?
        var numValues: Int64?
        var totalUncompressedSize: Int64?
        var totalCompressedSize: Int64?
        var dataPageOffset: Int64?
    }

    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var required = Required()
        self.init(
            type: .boolean, encodings: [], pathInSchema: [], codec: .uncompressed, numValues: 0, totalUncompressedSize: 0,
            totalCompressedSize: 0, dataPageOffset: 0)
        try reader.beginStruct("ColumnMetaData")
        while let field = try reader.nextField() {
            try readField(field, &reader, &required)
        }
        type = try reader.require(required.type, "ColumnMetaData.type")
        encodings = try reader.require(required.encodings, "ColumnMetaData.encodings")
        pathInSchema = try reader.require(required.pathInSchema, "ColumnMetaData.path_in_schema")
        codec = try reader.require(required.codec, "ColumnMetaData.codec")
        numValues = try reader.require(required.numValues, "ColumnMetaData.num_values")
        totalUncompressedSize = try reader.require(required.totalUncompressedSize, "ColumnMetaData.total_uncompressed_size")
        totalCompressedSize = try reader.require(required.totalCompressedSize, "ColumnMetaData.total_compressed_size")
        dataPageOffset = try reader.require(required.dataPageOffset, "ColumnMetaData.data_page_offset")
    }

    private mutating func readField(
        _ field: ThriftField,
        _ reader: inout ThriftCompactReader,
        _ required: inout Required
    ) throws(ParquetError) {
        switch field.id {
        case 1: required.type = try reader.readEnum(field, "ColumnMetaData.type")
        case 2: required.encodings = try reader.readEnumList(field, "ColumnMetaData.encodings")
        case 3: required.pathInSchema = try reader.readStringList(field, "ColumnMetaData.path_in_schema")
        case 4: required.codec = try reader.readEnum(field, "ColumnMetaData.codec")
        case 5: required.numValues = try reader.readI64(field, "ColumnMetaData.num_values")
        case 6: required.totalUncompressedSize = try reader.readI64(field, "ColumnMetaData.total_uncompressed_size")
        case 7: required.totalCompressedSize = try reader.readI64(field, "ColumnMetaData.total_compressed_size")
        case 8: keyValueMetadata = try reader.readStructList(field, "ColumnMetaData.key_value_metadata")
        case 9: required.dataPageOffset = try reader.readI64(field, "ColumnMetaData.data_page_offset")
        case 10: indexPageOffset = try reader.readI64(field, "ColumnMetaData.index_page_offset")
        case 11: dictionaryPageOffset = try reader.readI64(field, "ColumnMetaData.dictionary_page_offset")
        case 12: statistics = try reader.readStruct(field, "ColumnMetaData.statistics")
        case 13: encodingStats = try reader.readStructList(field, "ColumnMetaData.encoding_stats")
        default: try reader.skip(field)
        }
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeEnumField(1, type)
        writer.writeEnumListField(2, encodings)
        writer.writeStringListField(3, pathInSchema)
        writer.writeEnumField(4, codec)
        writer.writeI64Field(5, numValues)
        writer.writeI64Field(6, totalUncompressedSize)
        writer.writeI64Field(7, totalCompressedSize)
        if let keyValueMetadata { writer.writeStructListField(8, keyValueMetadata) }
        writer.writeI64Field(9, dataPageOffset)
        if let indexPageOffset { writer.writeI64Field(10, indexPageOffset) }
        if let dictionaryPageOffset { writer.writeI64Field(11, dictionaryPageOffset) }
        if let statistics { writer.writeStructField(12, statistics) }
        if let encodingStats { writer.writeStructListField(13, encodingStats) }
        writer.endStruct()
    }
}

/// One column's chunk in a row group (parquet.thrift `ColumnChunk`). The page index fields (4 to 7) are skipped;
/// of the encryption fields only their presence is kept, in `hasCryptoMetadata`.
package struct ColumnChunk: Sendable, Equatable {
    /// A file other than this one holding the chunk (summary files only; not supported by readers).
    package var filePath: String?
    /// Deprecated; writers set 0.
    package var fileOffset: Int64
    package var metaData: ColumnMetaData?
    /// Whether `crypto_metadata` (8) or `encrypted_column_metadata` (9) is present: the column is encrypted.
    /// Written back as an empty `ENCRYPTION_WITH_FOOTER_KEY` crypto metadata.
    package var hasCryptoMetadata: Bool

    package init(filePath: String? = nil, fileOffset: Int64 = 0, metaData: ColumnMetaData? = nil, hasCryptoMetadata: Bool = false) {
        self.filePath = filePath
        self.fileOffset = fileOffset
        self.metaData = metaData
        self.hasCryptoMetadata = hasCryptoMetadata
    }
}

extension ColumnChunk: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var fileOffset: Int64?
        self.init()
        try reader.beginStruct("ColumnChunk")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: filePath = try reader.readString(field, "ColumnChunk.file_path")
            case 2: fileOffset = try reader.readI64(field, "ColumnChunk.file_offset")
            case 3: metaData = try reader.readStruct(field, "ColumnChunk.meta_data")
            case 8, 9:
                hasCryptoMetadata = true
                try reader.skip(field)
            default: try reader.skip(field)
            }
        }
        self.fileOffset = try reader.require(fileOffset, "ColumnChunk.file_offset")
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        if let filePath { writer.writeStringField(1, filePath) }
        writer.writeI64Field(2, fileOffset)
        if let metaData { writer.writeStructField(3, metaData) }
        if hasCryptoMetadata {
            writer.writeStructField(8) { writer in writer.writeEmptyStructField(1) }
        }
        writer.endStruct()
    }
}
