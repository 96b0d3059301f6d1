/// One column's values on their way into the file: the current page's levels and values (dictionary indices, or
/// PLAIN bytes once the dictionary outgrows its limit), and the row group's finished pages, compressed.
///
/// A class, so `writer.columns[i].append(…)` in the hot loop mutates in place.
package final class ParquetColumnWriter {
    package let column: ParquetColumn
    let options: ParquetWriterOptions

    // The current page.
    private var levels: [UInt8] = []
    private var pageValues = 0
    private var plain: [UInt8] = []
    private var booleans: [Bool] = []
    private var indices: [UInt32] = []

    // The current row group's chunk.
    private var dictionary: WriterDictionary?
    private var dictionaryActive: Bool
    private var pages: [UInt8] = []
    private var pagesUncompressed = 0
    private var statistics: ColumnStatistics
    private(set) var chunkValues = 0
    private var usedPlain = false
    private var usedDictionary = false
    private var dataPages: [Encoding: Int32] = [:]

    init(column: ParquetColumn, options: ParquetWriterOptions) {
        self.column = column
        self.options = options
        let dictionaryAllowed = options.dictionary && column.physicalType != .boolean
        dictionaryActive = dictionaryAllowed
        dictionary = dictionaryAllowed ? WriterDictionary(type: column.physicalType, width: column.typeLength ?? 0) : nil
        statistics = ColumnStatistics(column: column, maxBytes: options.statisticsMaxBytes)
        levels.reserveCapacity(1024)
    }

    /// Compressed bytes held for the row group so far, with the current page's raw size.
    var bufferedBytes: Int { pages.count + plain.count + indices.count + booleans.count / 8 }

    // MARK: Values

    /// A null; a required column refuses it.
    package func appendNull() throws(ParquetError) {
        guard column.nullable else { throw ParquetError("column \(column.name) is required: it cannot hold a null") }
        levels.append(0)
        pageValues += 1
        statistics.addNull()
        checkPage()
    }

    package func append(_ value: Bool) {
        present()
        statistics.add(value)
        booleans.append(value)
        checkPage()
    }

    package func append(_ value: Int32) {
        present()
        statistics.add(value)
        if dictionaryActive, let index = dictionary?.index(int32: value) {
            indices.append(index)
            checkDictionary()
        } else {
            Self.appendLittleEndian(UInt32(bitPattern: value), to: &plain)
        }
        checkPage()
    }

    package func append(_ value: Int64) {
        present()
        statistics.add(value)
        if dictionaryActive, let index = dictionary?.index(int64: value) {
            indices.append(index)
            checkDictionary()
        } else {
            Self.appendLittleEndian(UInt64(bitPattern: value), to: &plain)
        }
        checkPage()
    }

    package func append(_ value: Float) {
        present()
        statistics.add(Double(value))
        if dictionaryActive, let index = dictionary?.index(float: value) {
            indices.append(index)
            checkDictionary()
        } else {
            Self.appendLittleEndian(value.bitPattern, to: &plain)
        }
        checkPage()
    }

    package func append(_ value: Double) {
        present()
        statistics.add(value)
        if dictionaryActive, let index = dictionary?.index(double: value) {
            indices.append(index)
            checkDictionary()
        } else {
            Self.appendLittleEndian(value.bitPattern, to: &plain)
        }
        checkPage()
    }

    /// A BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY value (a fixed one must be exactly the column's width).
    package func append(bytes: UnsafeRawBufferPointer) throws(ParquetError) {
        if column.physicalType == .fixedLenByteArray, bytes.count != column.typeLength {
            throw ParquetError("column \(column.name) holds \(column.typeLength ?? 0)-byte values, not \(bytes.count)")
        }
        guard bytes.count <= Int(Int32.max) else { throw ParquetError("column \(column.name): a value of \(bytes.count) bytes") }
        present()
        statistics.add(bytes)
        if dictionaryActive, let index = dictionary?.index(bytes: bytes) {
            indices.append(index)
            checkDictionary()
        } else {
            if column.physicalType == .byteArray { Self.appendLittleEndian(UInt32(bytes.count), to: &plain) }
            plain.append(contentsOf: bytes)
        }
        checkPage()
    }

    package func append(bytes: [UInt8]) throws(ParquetError) {
        var failure: ParquetError?
        bytes.withUnsafeBytes { raw in
            do throws(ParquetError) { try append(bytes: raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    package func append(_ text: String) throws(ParquetError) {
        var text = text
        var failure: ParquetError?
        text.withUTF8 { utf8 in
            do throws(ParquetError) { try append(bytes: UnsafeRawBufferPointer(utf8)) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    @inline(__always) private func present() {
        if column.nullable { levels.append(1) }
        pageValues += 1
    }

    @inline(__always) static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A dictionary past its limit ends the page it encodes; the chunk's later values are PLAIN (as pyarrow does).
    @inline(__always) private func checkDictionary() {
        guard let dictionary, dictionary.plainEncodedSize > options.dictionaryPageBytes else { return }
        flushPage()
        dictionaryActive = false
    }

    @inline(__always) private func checkPage() {
        guard pageValues & 127 == 0 else { return }
        let estimate = dictionaryActive ? indices.count * RLEHybrid.bitWidth(forMaximum: UInt32(max(1, dictionary?.count ?? 1))) / 8 : plain.count
        if estimate + booleans.count / 8 >= options.pageBytes { flushPage() }
    }

    // MARK: Pages

    /// Encodes and compresses the current page (data page v1) into the row group's pages.
    func flushPage() {
        guard pageValues > 0 else { return }
        var body: [UInt8] = []
        if column.nullable { body = RLEHybrid.encodeLevelsV1(levels, maxLevel: 1) }
        let encoding: Encoding
        if column.physicalType == .boolean {
            PlainEncoding.encode(booleans: booleans, into: &body)
            encoding = .plain
        } else if !indices.isEmpty || (dictionaryActive && plain.isEmpty) {
            // At least 1 bit: some readers mishandle a bit width of 0 for a one-entry dictionary.
            let width = max(1, RLEHybrid.bitWidth(forMaximum: UInt32(max(1, dictionary?.count ?? 1) - 1)))
            body.append(UInt8(width))
            body.append(contentsOf: RLEHybrid.encode(indices, bitWidth: width))
            encoding = .rleDictionary
            usedDictionary = true
        } else {
            body.append(contentsOf: plain)
            encoding = .plain
            usedPlain = true
        }
        let compressed = compress(body)
        var header = PageHeader(type: .dataPage, uncompressedPageSize: Int32(body.count), compressedPageSize: Int32(compressed.count))
        header.dataPageHeader = DataPageHeader(
            numValues: Int32(pageValues), encoding: encoding, definitionLevelEncoding: .rle, repetitionLevelEncoding: .rle)
        let headerBytes = header.encoded()
        pages.append(contentsOf: headerBytes)
        pages.append(contentsOf: compressed)
        pagesUncompressed += headerBytes.count + body.count
        dataPages[encoding, default: 0] += 1
        chunkValues += pageValues
        pageValues = 0
        levels.removeAll(keepingCapacity: true)
        plain.removeAll(keepingCapacity: true)
        booleans.removeAll(keepingCapacity: true)
        indices.removeAll(keepingCapacity: true)
    }

    private func compress(_ body: [UInt8]) -> [UInt8] {
        guard options.compression != .none else { return body }
        // Compressing bytes in memory fails only on an allocation failure; the page is then stored uncompressed…
        // which the header could not say. So a failure here is a programming error, kept loud.
        do {
            return try ParquetCompression.compress(options.compression, body, level: options.compressionLevel)
        } catch {
            preconditionFailure("compressing a page failed: \(error)")
        }
    }

    /// The row group's chunk for this column, written at `offset`: the dictionary page (if any), then the data pages.
    /// Resets the column for the next row group.
    func finishChunk(at offset: Int64) -> (chunk: ColumnChunk, bytes: [UInt8]) {
        flushPage()
        var bytes: [UInt8] = []
        var uncompressed = pagesUncompressed
        var dictionaryOffset: Int64?
        var encodings: [Encoding] = []
        var stats: [PageEncodingStats] = []
        if usedDictionary, let dictionary {
            var plainDictionary: [UInt8] = []
            dictionary.encodePlain(into: &plainDictionary)
            let compressed = compress(plainDictionary)
            var header = PageHeader(
                type: .dictionaryPage, uncompressedPageSize: Int32(plainDictionary.count), compressedPageSize: Int32(compressed.count))
            header.dictionaryPageHeader = DictionaryPageHeader(numValues: Int32(dictionary.count), encoding: .plain)
            let headerBytes = header.encoded()
            bytes.reserveCapacity(headerBytes.count + compressed.count + pages.count)
            bytes.append(contentsOf: headerBytes)
            bytes.append(contentsOf: compressed)
            uncompressed += headerBytes.count + plainDictionary.count
            dictionaryOffset = offset
            encodings.append(.plain)
            stats.append(PageEncodingStats(pageType: .dictionaryPage, encoding: .plain, count: 1))
        }
        let dataOffset = offset + Int64(bytes.count)
        bytes.append(contentsOf: pages)
        if usedPlain || column.physicalType == .boolean, !encodings.contains(.plain) { encodings.append(.plain) }
        encodings.append(.rle)
        if usedDictionary { encodings.append(.rleDictionary) }
        for (encoding, count) in dataPages.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            stats.append(PageEncodingStats(pageType: .dataPage, encoding: encoding, count: count))
        }
        var meta = ColumnMetaData(
            type: column.physicalType, encodings: encodings, pathInSchema: [column.name], codec: options.compression.thrift,
            numValues: Int64(chunkValues), totalUncompressedSize: Int64(uncompressed), totalCompressedSize: Int64(bytes.count),
            dataPageOffset: dataOffset)
        meta.dictionaryPageOffset = dictionaryOffset
        if options.statistics { meta.statistics = statistics.statistics(physicalType: column.physicalType) }
        meta.encodingStats = stats
        reset()
        return (ColumnChunk(fileOffset: offset, metaData: meta), bytes)
    }

    private func reset() {
        pages = []
        pagesUncompressed = 0
        chunkValues = 0
        usedPlain = false
        usedDictionary = false
        dataPages = [:]
        statistics = ColumnStatistics(column: column, maxBytes: options.statisticsMaxBytes)
        if options.dictionary && column.physicalType != .boolean {
            dictionary = WriterDictionary(type: column.physicalType, width: column.typeLength ?? 0)
            dictionaryActive = true
        }
    }

    /// Values appended in this row group (nulls included), flushed or not.
    var valueCount: Int { chunkValues + pageValues }
}

extension ParquetCodec {
    var thrift: CompressionCodec {
        switch self {
        case .none: .uncompressed
        case .snappy: .snappy
        case .gzip: .gzip
        case .zstd: .zstd
        }
    }
}
