/// Writes a flat Parquet file as rows arrive, holding at most one row group's compressed pages: append each row's
/// values to the columns, `endRow()`, take the bytes produced with `takeOutput()` whenever convenient (to a file, an
/// upload), and `finish()` for the rest and the footer. No I/O inside.
///
/// ```swift
/// var writer = try ParquetWriter(schema: ParquetSchema([ParquetColumn(name: "id", kind: .integer(bits: 64, signed: true))]))
/// writer.columns[0].append(Int64(42))
/// try writer.endRow()
/// let bytes = try writer.finish()
/// ```
package struct ParquetWriter {
    package let schema: ParquetSchema
    package let options: ParquetWriterOptions
    package let columns: [ParquetColumnWriter]
    private var output: [UInt8] = Array("PAR1".utf8)
    /// The file offset of `output`'s first byte.
    private var written: Int64 = 0
    private var rowGroups: [RowGroup] = []
    private var rowsInGroup = 0
    private var rows: Int64 = 0
    private var finished = false

    package init(schema: ParquetSchema, options: ParquetWriterOptions = ParquetWriterOptions()) throws(ParquetError) {
        try Self.check(schema, options)
        self.schema = schema
        self.options = options
        columns = schema.columns.map { ParquetColumnWriter(column: $0, options: options) }
    }

    static func check(_ schema: ParquetSchema, _ options: ParquetWriterOptions) throws(ParquetError) {
        var names: Set<String> = []
        for column in schema.columns {
            guard !column.name.isEmpty else { throw ParquetError("a column has no name") }
            guard names.insert(column.name).inserted else { throw ParquetError("two columns are named \(column.name)") }
            switch column.kind {
            case .decimal(let precision, let scale):
                guard (1...ParquetColumn.maximumDecimalPrecision).contains(precision), (0...precision).contains(scale) else {
                    throw ParquetError("column \(column.name): DECIMAL(\(precision), \(scale)) cannot be written (precision 1 to 38)")
                }
            case .int96Timestamp:
                throw ParquetError("column \(column.name): INT96 timestamps are read, never written (use a TIMESTAMP column)")
            case .integer(let bits, _):
                guard [8, 16, 32, 64].contains(bits) else { throw ParquetError("column \(column.name): INT\(bits) is not an integer width") }
            case .fixedBinary(let width):
                guard width > 0 else { throw ParquetError("column \(column.name): a fixed width of \(width)") }
            default:
                break
            }
        }
        guard options.rowGroupRows > 0, options.pageBytes > 0, options.rowGroupBytes > 0, options.dictionaryPageBytes > 0 else {
            throw ParquetError("row group and page sizes must be positive")
        }
    }

    /// Rows written so far, the current row group's included.
    package var rowCount: Int64 { rows }

    /// Ends the current row: every column must have had one value (or null) appended for it.
    package mutating func endRow() throws(ParquetError) {
        rowsInGroup += 1
        rows += 1
        if rowsInGroup >= options.rowGroupRows || (rowsInGroup & 1023 == 0 && bufferedBytes >= options.rowGroupBytes) {
            try flushRowGroup()
        }
    }

    /// Ends `count` rows at once, after their values were appended column by column.
    package mutating func endRows(_ count: Int) throws(ParquetError) {
        rowsInGroup += count
        rows += Int64(count)
        if rowsInGroup >= options.rowGroupRows || bufferedBytes >= options.rowGroupBytes { try flushRowGroup() }
    }

    /// What the columns hold for the current row group.
    package var bufferedBytes: Int { columns.reduce(0) { $0 + $1.bufferedBytes } }

    /// Bytes produced and not yet taken (a row group's chunks, once it is flushed).
    package var pendingOutputBytes: Int { output.count }

    /// The bytes produced since the last call (the file's next part).
    package mutating func takeOutput() -> [UInt8] {
        let bytes = output
        written += Int64(bytes.count)
        output = []
        return bytes
    }

    /// Ends the current row group (if it has rows) and appends its column chunks to the output.
    package mutating func flushRowGroup() throws(ParquetError) {
        guard rowsInGroup > 0 else { return }
        for column in columns where column.valueCount != rowsInGroup {
            throw ParquetError("column \(column.column.name) has \(column.valueCount) values for \(rowsInGroup) rows")
        }
        var chunks: [ColumnChunk] = []
        let start = written + Int64(output.count)
        var uncompressed: Int64 = 0
        for column in columns {
            let (chunk, bytes) = column.finishChunk(at: written + Int64(output.count))
            output.append(contentsOf: bytes)
            uncompressed += chunk.metaData?.totalUncompressedSize ?? 0
            chunks.append(chunk)
        }
        var group = RowGroup(columns: chunks, totalByteSize: uncompressed, numRows: Int64(rowsInGroup))
        group.fileOffset = start
        group.totalCompressedSize = written + Int64(output.count) - start
        group.ordinal = Int16(truncatingIfNeeded: rowGroups.count)
        rowGroups.append(group)
        rowsInGroup = 0
    }

    /// Writes the last row group and the footer; returns the output not yet taken, which ends the file.
    package mutating func finish() throws(ParquetError) -> [UInt8] {
        guard !finished else { throw ParquetError("the file is already finished") }
        try flushRowGroup()
        finished = true
        var metadata = FileMetaData(version: 2, schema: schema.elements(), numRows: rows, rowGroups: rowGroups)
        metadata.createdBy = options.createdBy
        metadata.columnOrders = Array(repeating: .typeDefined, count: schema.columns.count)
        if !options.metadata.isEmpty { metadata.keyValueMetadata = options.metadata.map { KeyValue(key: $0.key, value: $0.value) } }
        let footer = metadata.encoded()
        output.append(contentsOf: footer)
        ParquetColumnWriter.appendLittleEndian(UInt32(footer.count), to: &output)
        output.append(contentsOf: Array("PAR1".utf8))
        return takeOutput()
    }
}
