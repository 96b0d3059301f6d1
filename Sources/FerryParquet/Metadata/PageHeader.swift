/// The header before every page of a column chunk (parquet.thrift `PageHeader`): the page's kind, its sizes
/// (not counting the header), an optional CRC, and the header of its kind. `index_page_header` (6) is skipped.
package struct PageHeader: Sendable, Equatable {
    package var type: PageType
    package var uncompressedPageSize: Int32
    package var compressedPageSize: Int32
    /// CRC-32 of the page's bytes as stored (after compression).
    package var crc: Int32?
    package var dataPageHeader: DataPageHeader?
    package var dictionaryPageHeader: DictionaryPageHeader?
    package var dataPageHeaderV2: DataPageHeaderV2?

    package init(
        type: PageType,
        uncompressedPageSize: Int32,
        compressedPageSize: Int32,
        crc: Int32? = nil,
        dataPageHeader: DataPageHeader? = nil,
        dictionaryPageHeader: DictionaryPageHeader? = nil,
        dataPageHeaderV2: DataPageHeaderV2? = nil
    ) {
        self.type = type
        self.uncompressedPageSize = uncompressedPageSize
        self.compressedPageSize = compressedPageSize
        self.crc = crc
        self.dataPageHeader = dataPageHeader
        self.dictionaryPageHeader = dictionaryPageHeader
        self.dataPageHeaderV2 = dataPageHeaderV2
    }
}

extension PageHeader: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var type: PageType?
        var uncompressedPageSize: Int32?
        var compressedPageSize: Int32?
        var header = PageHeader(type: .dataPage, uncompressedPageSize: 0, compressedPageSize: 0)
        try reader.beginStruct("PageHeader")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: type = try reader.readEnum(field, "PageHeader.type")
            case 2: uncompressedPageSize = try reader.readI32(field, "PageHeader.uncompressed_page_size")
            case 3: compressedPageSize = try reader.readI32(field, "PageHeader.compressed_page_size")
            case 4: header.crc = try reader.readI32(field, "PageHeader.crc")
            case 5: header.dataPageHeader = try reader.readStruct(field, "PageHeader.data_page_header")
            case 7: header.dictionaryPageHeader = try reader.readStruct(field, "PageHeader.dictionary_page_header")
            case 8: header.dataPageHeaderV2 = try reader.readStruct(field, "PageHeader.data_page_header_v2")
            default: try reader.skip(field)
            }
        }
        header.type = try reader.require(type, "PageHeader.type")
        header.uncompressedPageSize = try reader.require(uncompressedPageSize, "PageHeader.uncompressed_page_size")
        header.compressedPageSize = try reader.require(compressedPageSize, "PageHeader.compressed_page_size")
        self = header
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeEnumField(1, type)
        writer.writeI32Field(2, uncompressedPageSize)
        writer.writeI32Field(3, compressedPageSize)
        if let crc { writer.writeI32Field(4, crc) }
        if let dataPageHeader { writer.writeStructField(5, dataPageHeader) }
        if let dictionaryPageHeader { writer.writeStructField(7, dictionaryPageHeader) }
        if let dataPageHeaderV2 { writer.writeStructField(8, dataPageHeaderV2) }
        writer.endStruct()
    }
}

extension PageHeader {
    /// Reads the page header at the start of `bytes` (which may go on with the page and anything after it), and
    /// how many bytes the header took.
    package static func decode(_ bytes: ArraySlice<UInt8>) throws(ParquetError) -> (header: PageHeader, length: Int) {
        var reader = ThriftCompactReader(bytes, context: "page header")
        let header = try PageHeader(from: &reader)
        return (header, reader.bytesRead)
    }

    /// The header in the compact protocol.
    package func encoded() -> [UInt8] {
        var writer = ThriftCompactWriter()
        encode(into: &writer)
        return writer.bytes
    }
}

/// The header of a version 1 data page (parquet.thrift `DataPageHeader`): repetition levels, definition levels
/// and values follow, all compressed together.
package struct DataPageHeader: Sendable, Equatable {
    /// Values in the page, nulls included.
    package var numValues: Int32
    package var encoding: Encoding
    package var definitionLevelEncoding: Encoding
    package var repetitionLevelEncoding: Encoding
    package var statistics: Statistics?

    package init(
        numValues: Int32,
        encoding: Encoding,
        definitionLevelEncoding: Encoding,
        repetitionLevelEncoding: Encoding,
        statistics: Statistics? = nil
    ) {
        self.numValues = numValues
        self.encoding = encoding
        self.definitionLevelEncoding = definitionLevelEncoding
        self.repetitionLevelEncoding = repetitionLevelEncoding
        self.statistics = statistics
    }
}

extension DataPageHeader: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var numValues: Int32?
        var encoding: Encoding?
        var definitionLevelEncoding: Encoding?
        var repetitionLevelEncoding: Encoding?
        var statistics: Statistics?
        try reader.beginStruct("DataPageHeader")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: numValues = try reader.readI32(field, "DataPageHeader.num_values")
            case 2: encoding = try reader.readEnum(field, "DataPageHeader.encoding")
            case 3: definitionLevelEncoding = try reader.readEnum(field, "DataPageHeader.definition_level_encoding")
            case 4: repetitionLevelEncoding = try reader.readEnum(field, "DataPageHeader.repetition_level_encoding")
            case 5: statistics = try reader.readStruct(field, "DataPageHeader.statistics")
            default: try reader.skip(field)
            }
        }
        self.init(
            numValues: try reader.require(numValues, "DataPageHeader.num_values"),
            encoding: try reader.require(encoding, "DataPageHeader.encoding"),
            definitionLevelEncoding: try reader.require(definitionLevelEncoding, "DataPageHeader.definition_level_encoding"),
            repetitionLevelEncoding: try reader.require(repetitionLevelEncoding, "DataPageHeader.repetition_level_encoding"),
            statistics: statistics
        )
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeI32Field(1, numValues)
        writer.writeEnumField(2, encoding)
        writer.writeEnumField(3, definitionLevelEncoding)
        writer.writeEnumField(4, repetitionLevelEncoding)
        if let statistics { writer.writeStructField(5, statistics) }
        writer.endStruct()
    }
}

/// The header of a dictionary page (parquet.thrift `DictionaryPageHeader`): the column chunk's dictionary, the
/// first page of the chunk when present.
package struct DictionaryPageHeader: Sendable, Equatable {
    package var numValues: Int32
    package var encoding: Encoding
    package var isSorted: Bool?

    package init(numValues: Int32, encoding: Encoding, isSorted: Bool? = nil) {
        self.numValues = numValues
        self.encoding = encoding
        self.isSorted = isSorted
    }
}

extension DictionaryPageHeader: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var numValues: Int32?
        var encoding: Encoding?
        var isSorted: Bool?
        try reader.beginStruct("DictionaryPageHeader")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: numValues = try reader.readI32(field, "DictionaryPageHeader.num_values")
            case 2: encoding = try reader.readEnum(field, "DictionaryPageHeader.encoding")
            case 3: isSorted = try reader.readBool(field, "DictionaryPageHeader.is_sorted")
            default: try reader.skip(field)
            }
        }
        self.init(
            numValues: try reader.require(numValues, "DictionaryPageHeader.num_values"),
            encoding: try reader.require(encoding, "DictionaryPageHeader.encoding"),
            isSorted: isSorted
        )
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeI32Field(1, numValues)
        writer.writeEnumField(2, encoding)
        if let isSorted { writer.writeBoolField(3, isSorted) }
        writer.endStruct()
    }
}

/// The header of a version 2 data page (parquet.thrift `DataPageHeaderV2`): repetition and definition levels
/// (RLE, never compressed, lengths given here) then the values, compressed when `isCompressed`.
package struct DataPageHeaderV2: Sendable, Equatable {
    /// Values in the page, nulls included.
    package var numValues: Int32
    package var numNulls: Int32
    package var numRows: Int32
    package var encoding: Encoding
    package var definitionLevelsByteLength: Int32
    package var repetitionLevelsByteLength: Int32
    /// Whether the values section is compressed; true when the field is absent, as the specification says.
    package var isCompressed: Bool
    package var statistics: Statistics?

    package init(
        numValues: Int32,
        numNulls: Int32,
        numRows: Int32,
        encoding: Encoding,
        definitionLevelsByteLength: Int32,
        repetitionLevelsByteLength: Int32,
        isCompressed: Bool = true,
        statistics: Statistics? = nil
    ) {
        self.numValues = numValues
        self.numNulls = numNulls
        self.numRows = numRows
        self.encoding = encoding
        self.definitionLevelsByteLength = definitionLevelsByteLength
        self.repetitionLevelsByteLength = repetitionLevelsByteLength
        self.isCompressed = isCompressed
        self.statistics = statistics
    }
}

extension DataPageHeaderV2: ThriftStruct {
    package init(from reader: inout ThriftCompactReader) throws(ParquetError) {
        var numValues: Int32?
        var numNulls: Int32?
        var numRows: Int32?
        var encoding: Encoding?
        var definitionLength: Int32?
        var repetitionLength: Int32?
        var isCompressed = true
        var statistics: Statistics?
        try reader.beginStruct("DataPageHeaderV2")
        while let field = try reader.nextField() {
            switch field.id {
            case 1: numValues = try reader.readI32(field, "DataPageHeaderV2.num_values")
            case 2: numNulls = try reader.readI32(field, "DataPageHeaderV2.num_nulls")
            case 3: numRows = try reader.readI32(field, "DataPageHeaderV2.num_rows")
            case 4: encoding = try reader.readEnum(field, "DataPageHeaderV2.encoding")
            case 5: definitionLength = try reader.readI32(field, "DataPageHeaderV2.definition_levels_byte_length")
            case 6: repetitionLength = try reader.readI32(field, "DataPageHeaderV2.repetition_levels_byte_length")
            case 7: isCompressed = try reader.readBool(field, "DataPageHeaderV2.is_compressed")
            case 8: statistics = try reader.readStruct(field, "DataPageHeaderV2.statistics")
            default: try reader.skip(field)
            }
        }
        self.init(
            numValues: try reader.require(numValues, "DataPageHeaderV2.num_values"),
            numNulls: try reader.require(numNulls, "DataPageHeaderV2.num_nulls"),
            numRows: try reader.require(numRows, "DataPageHeaderV2.num_rows"),
            encoding: try reader.require(encoding, "DataPageHeaderV2.encoding"),
            definitionLevelsByteLength: try reader.require(definitionLength, "DataPageHeaderV2.definition_levels_byte_length"),
            repetitionLevelsByteLength: try reader.require(repetitionLength, "DataPageHeaderV2.repetition_levels_byte_length"),
            isCompressed: isCompressed,
            statistics: statistics
        )
    }

    package func encode(into writer: inout ThriftCompactWriter) {
        writer.beginStruct()
        writer.writeI32Field(1, numValues)
        writer.writeI32Field(2, numNulls)
        writer.writeI32Field(3, numRows)
        writer.writeEnumField(4, encoding)
        writer.writeI32Field(5, definitionLevelsByteLength)
        writer.writeI32Field(6, repetitionLevelsByteLength)
        writer.writeBoolField(7, isCompressed)
        if let statistics { writer.writeStructField(8, statistics) }
        writer.endStruct()
    }
}
