/// Where a reader gets a file's bytes: random access by offset (a file, an object store's ranged GET, memory).
package protocol ParquetSource {
    var size: Int { get }
    func read(offset: Int, count: Int) throws(ParquetError) -> [UInt8]
}

/// A file held in memory.
package struct ParquetBytes: ParquetSource {
    package let bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var size: Int { bytes.count }

    package func read(offset: Int, count: Int) throws(ParquetError) -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else {
            throw ParquetError("a read of \(count) bytes at \(offset) is past the file's \(bytes.count) bytes")
        }
        return Array(bytes[offset..<(offset + count)])
    }
}

/// A Parquet file read row group by row group: the footer once, then each row group's column chunks on demand, so
/// memory holds one row group at a time. Anything Ferry does not read (nested columns, encryption, DELTA_* and
/// BYTE_STREAM_SPLIT encodings, LZ4, LZO, BROTLI) is refused by name; a damaged file is an error naming the row
/// group, column and what was wrong, never a trap.
package struct ParquetFileReader<Source: ParquetSource> {
    package let source: Source
    package let metadata: FileMetaData
    package let schema: ParquetSchema
    /// Where the footer starts: no column chunk may reach into it.
    let dataEnd: Int

    /// The largest footer read (pyarrow's files with thousands of columns stay far below).
    static var maximumFooterBytes: Int { 64 << 20 }

    package init(_ source: Source) throws(ParquetError) {
        self.source = source
        let size = source.size
        guard size >= 12 else { throw ParquetError("not a Parquet file: \(size) bytes is too short") }
        let head = try source.read(offset: 0, count: 4)
        let tail = try source.read(offset: size - 8, count: 8)
        if tail.suffix(4) == Array("PARE".utf8) {
            throw ParquetError("the file is encrypted (its footer is): Ferry does not read encrypted Parquet files")
        }
        guard head == Array("PAR1".utf8), tail.suffix(4) == Array("PAR1".utf8) else {
            throw ParquetError("not a Parquet file: it does not start and end with PAR1")
        }
        let length = Int(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard length > 0, length <= size - 12, length <= Self.maximumFooterBytes else {
            throw ParquetError("footer: a length of \(length) bytes does not fit the file's \(size)")
        }
        dataEnd = size - 8 - length
        let footer = try source.read(offset: dataEnd, count: length)
        let metadata = try FileMetaData.decode(footer[...])
        if metadata.hasEncryptionAlgorithm {
            throw ParquetError("the file's columns are encrypted: Ferry does not read encrypted Parquet files")
        }
        self.metadata = metadata
        schema = try ParquetSchema(elements: metadata.schema)
        guard metadata.numRows >= 0 else { throw ParquetError("footer: \(metadata.numRows) rows") }
        for (index, group) in metadata.rowGroups.enumerated() {
            guard group.columns.count == schema.columns.count else {
                throw ParquetError("row group \(index) has \(group.columns.count) columns, the schema \(schema.columns.count)")
            }
            guard group.numRows >= 0, group.numRows <= Int64(Int32.max) else {
                throw ParquetError("row group \(index): \(group.numRows) rows")
            }
        }
    }

    package var rowCount: Int64 { metadata.numRows }
    package var rowGroupCount: Int { metadata.rowGroups.count }

    /// Every column of row group `index`.
    package func readRowGroup(_ index: Int) throws(ParquetError) -> [ParquetColumnData] {
        guard metadata.rowGroups.indices.contains(index) else { throw ParquetError("no row group \(index)") }
        let group = metadata.rowGroups[index]
        var columns: [ParquetColumnData] = []
        columns.reserveCapacity(schema.columns.count)
        for (position, column) in schema.columns.enumerated() {
            columns.append(try readColumn(position, column: column, group: group, groupIndex: index))
        }
        return columns
    }

    func readColumn(_ position: Int, column: ParquetColumn, group: RowGroup, groupIndex: Int) throws(ParquetError) -> ParquetColumnData {
        let place = "row group \(groupIndex), column \(column.name)"
        let chunk = group.columns[position]
        if chunk.hasCryptoMetadata { throw ParquetError("\(place) is encrypted: Ferry does not read encrypted Parquet files") }
        if let path = chunk.filePath { throw ParquetError("\(place) lives in another file (\(path)): Ferry reads single files") }
        guard let meta = chunk.metaData else { throw ParquetError("\(place): the column chunk has no metadata") }
        guard meta.type == column.physicalType else {
            throw ParquetError("\(place): the chunk holds \(meta.type), the schema says \(column.physicalType)")
        }
        let codec = try Self.codec(meta.codec, place: place)
        // An empty row group's chunks may have no pages at all (pyarrow writes them at offset 0).
        guard group.numRows > 0 else {
            return ParquetColumnData(column: column, present: nil, values: ValuesBuilder(type: column.physicalType, width: 0).finish(), rowCount: 0)
        }
        var start = meta.dataPageOffset
        if let dictionary = meta.dictionaryPageOffset, dictionary > 0, dictionary < start { start = dictionary }
        let length = meta.totalCompressedSize
        guard start >= 4, length >= 0, start < Int64(dataEnd), length <= Int64(dataEnd) - start else {
            throw ParquetError("\(place): the chunk (\(length) bytes at \(start)) is not within the file's data")
        }
        let bytes = try source.read(offset: Int(start), count: Int(length))
        var reader = ColumnChunkReader(column: column, codec: codec, rowCount: Int(group.numRows), place: place)
        return try reader.read(bytes[...])
    }

    static func codec(_ codec: CompressionCodec, place: String) throws(ParquetError) -> ParquetCodec {
        switch codec {
        case .uncompressed: return .none
        case .snappy: return .snappy
        case .gzip: return .gzip
        case .zstd: return .zstd
        default: throw ParquetError("\(place): \(codec) compression is not read (Ferry reads SNAPPY, ZSTD, GZIP and uncompressed)")
        }
    }
}
