/// Decodes one column chunk's pages (an optional dictionary page, then data pages v1 or v2) into its values. Every
/// size, count and offset in the pages is checked against the bytes at hand before it is used.
struct ColumnChunkReader {
    let column: ParquetColumn
    let codec: ParquetCodec
    let rowCount: Int
    /// "row group 0, column price": where errors happen.
    let place: String

    /// The largest page Ferry decompresses: a page claiming more is refused, not allocated.
    static let maximumPageBytes = 256 << 20

    private var present: [Bool] = []
    private var anyNull = false
    private var builder: ValuesBuilder
    private var dictionary: ParquetValues?

    init(column: ParquetColumn, codec: ParquetCodec, rowCount: Int, place: String) {
        self.column = column
        self.codec = codec
        self.rowCount = rowCount
        self.place = place
        builder = ValuesBuilder(type: column.physicalType, width: column.typeLength ?? 0)
    }

    /// The chunk's values from its bytes (from its first page to its end).
    mutating func read(_ chunk: ArraySlice<UInt8>) throws(ParquetError) -> ParquetColumnData {
        var position = chunk.startIndex
        var rowsRead = 0
        if column.nullable { present.reserveCapacity(rowCount) }
        while rowsRead < rowCount {
            guard position < chunk.endIndex else {
                throw ParquetError("\(place): the chunk ends after \(rowsRead) of its \(rowCount) values")
            }
            let (header, headerLength) = try PageHeader.decode(chunk[position...])
            position += headerLength
            let compressed = Int(header.compressedPageSize)
            let uncompressed = Int(header.uncompressedPageSize)
            guard compressed >= 0, compressed <= chunk.endIndex - position else {
                throw ParquetError("\(place): a page of \(header.compressedPageSize) bytes runs past the chunk's end")
            }
            guard uncompressed >= 0, uncompressed <= Self.maximumPageBytes else {
                throw ParquetError("\(place): a page claims \(header.uncompressedPageSize) bytes uncompressed (at most 256 MiB is read)")
            }
            let body = chunk[position..<(position + compressed)]
            position += compressed
            switch header.type {
            case .dictionaryPage:
                guard let dictionaryHeader = header.dictionaryPageHeader else { throw ParquetError("\(place): a dictionary page without its header") }
                guard dictionary == nil, rowsRead == 0 else { throw ParquetError("\(place): a second dictionary page") }
                let bytes = try decompress(body, size: uncompressed)
                dictionary = try readDictionary(bytes[...], header: dictionaryHeader)
            case .dataPage:
                guard let dataHeader = header.dataPageHeader else { throw ParquetError("\(place): a data page without its header") }
                rowsRead += try readPageV1(try decompress(body, size: uncompressed)[...], header: dataHeader, rowsLeft: rowCount - rowsRead)
            case .dataPageV2:
                guard let dataHeader = header.dataPageHeaderV2 else { throw ParquetError("\(place): a data page v2 without its header") }
                rowsRead += try readPageV2(body, uncompressedSize: uncompressed, header: dataHeader, rowsLeft: rowCount - rowsRead)
            default:
                // Index pages and page types newer than this reader carry no values.
                continue
            }
        }
        return ParquetColumnData(column: column, present: anyNull ? present : nil, values: builder.finish(), rowCount: rowCount)
    }

    private func decompress(_ body: ArraySlice<UInt8>, size: Int) throws(ParquetError) -> [UInt8] {
        if codec == .none {
            guard body.count == size else {
                throw ParquetError("\(place): an uncompressed page of \(body.count) bytes says it has \(size)")
            }
            return Array(body)
        }
        do {
            return try ParquetCompression.decompress(codec, body, uncompressedSize: size)
        } catch {
            throw ParquetError("\(place): \(error.message)")
        }
    }

    private mutating func readDictionary(_ bytes: ArraySlice<UInt8>, header: DictionaryPageHeader) throws(ParquetError) -> ParquetValues {
        guard header.encoding == .plain || header.encoding == .plainDictionary else {
            throw ParquetError("\(place): a dictionary page in \(header.encoding) encoding is not read (Ferry reads PLAIN dictionaries)")
        }
        let count = Int(header.numValues)
        guard count >= 0 else { throw ParquetError("\(place): a dictionary of \(header.numValues) values") }
        var dictionaryBuilder = ValuesBuilder(type: column.physicalType, width: column.typeLength ?? 0)
        try dictionaryBuilder.appendPlain(bytes, count: count, place: place)
        return dictionaryBuilder.finish()
    }

    /// v1: repetition levels (none: flat), definition levels with a 4-byte length, values; all compressed together.
    private mutating func readPageV1(_ bytes: ArraySlice<UInt8>, header: DataPageHeader, rowsLeft: Int) throws(ParquetError) -> Int {
        let count = Int(header.numValues)
        guard count >= 0, count <= rowsLeft else {
            throw ParquetError("\(place): a page of \(header.numValues) values where \(rowsLeft) are left")
        }
        var position = bytes.startIndex
        var nonNull = count
        if column.nullable {
            guard header.definitionLevelEncoding == .rle else {
                throw ParquetError("\(place): definition levels in \(header.definitionLevelEncoding) encoding are not read (Ferry reads RLE levels)")
            }
            let (levels, consumed) = try Self.located(place) { () throws(ParquetError) in
                try RLEHybrid.decodeLevelsV1(bytes, count: count, maxLevel: 1)
            }
            position += consumed
            nonNull = record(levels)
        }
        try readValues(bytes[position...], encoding: header.encoding, count: nonNull)
        return count
    }

    /// v2: levels uncompressed and unprefixed before the values, which alone may be compressed.
    private mutating func readPageV2(
        _ body: ArraySlice<UInt8>, uncompressedSize: Int, header: DataPageHeaderV2, rowsLeft: Int
    ) throws(ParquetError) -> Int {
        let count = Int(header.numValues)
        let repetitionBytes = Int(header.repetitionLevelsByteLength)
        let definitionBytes = Int(header.definitionLevelsByteLength)
        guard count >= 0, count <= rowsLeft else {
            throw ParquetError("\(place): a page of \(header.numValues) values where \(rowsLeft) are left")
        }
        guard repetitionBytes >= 0, definitionBytes >= 0, repetitionBytes + definitionBytes <= body.count,
            repetitionBytes + definitionBytes <= uncompressedSize
        else {
            throw ParquetError("\(place): a data page v2's levels (\(repetitionBytes) + \(definitionBytes) bytes) exceed the page")
        }
        var nonNull = count
        let levelsStart = body.startIndex + repetitionBytes
        if column.nullable {
            let levels = try Self.located(place) { () throws(ParquetError) in
                try RLEHybrid.decodeLevelsV2(body[levelsStart..<(levelsStart + definitionBytes)], count: count, maxLevel: 1)
            }
            nonNull = record(levels)
        } else {
            guard definitionBytes == 0 || header.numNulls == 0 else { throw ParquetError("\(place): nulls in a required column") }
        }
        let values = body[(levelsStart + definitionBytes)...]
        let valuesSize = uncompressedSize - repetitionBytes - definitionBytes
        if header.isCompressed && codec != .none {
            try readValues(try decompress(values, size: valuesSize)[...], encoding: header.encoding, count: nonNull)
        } else {
            try readValues(values, encoding: header.encoding, count: nonNull)
        }
        return count
    }

    /// `body`, its error prefixed with the chunk's place.
    static func located<T>(_ place: String, _ body: () throws(ParquetError) -> T) throws(ParquetError) -> T {
        do {
            return try body()
        } catch {
            throw ParquetError("\(place): \(error.message)")
        }
    }

    /// Notes which rows hold a value (level 1); returns how many do.
    private mutating func record(_ levels: [UInt8]) -> Int {
        var nonNull = 0
        for level in levels {
            let isPresent = level != 0
            present.append(isPresent)
            if isPresent { nonNull += 1 } else { anyNull = true }
        }
        return nonNull
    }

    private mutating func readValues(_ bytes: ArraySlice<UInt8>, encoding: Encoding, count: Int) throws(ParquetError) {
        switch encoding {
        case .plain:
            try builder.appendPlain(bytes, count: count, place: place)
        case .plainDictionary, .rleDictionary:
            guard let dictionary else { throw ParquetError("\(place): a dictionary-encoded page without a dictionary page") }
            let indices = try Self.located(place) { () throws(ParquetError) in
                try RLEHybrid.decodeIndices(bytes, count: count, dictionarySize: dictionary.count)
            }
            builder.gather(dictionary, indices)
        case .rle where column.physicalType == .boolean:
            let (values, _) = try Self.located(place) { () throws(ParquetError) in
                try RLEHybrid.decodeLengthPrefixed(bytes, count: count, bitWidth: 1)
            }
            builder.appendBooleans(values)
        default:
            throw ParquetError("\(place): values in \(encoding) encoding are not read (Ferry reads PLAIN and dictionary encodings)")
        }
    }
}

/// Accumulates a chunk's values page by page in typed arrays (no copy per page).
struct ValuesBuilder {
    let type: PhysicalType
    let width: Int
    private var booleans: [Bool] = []
    private var int32s: [Int32] = []
    private var int64s: [Int64] = []
    private var floats: [Float] = []
    private var doubles: [Double] = []
    private var arrays = ByteArrays()

    init(type: PhysicalType, width: Int) {
        self.type = type
        self.width = width
    }

    /// PLAIN values.
    mutating func appendPlain(_ bytes: ArraySlice<UInt8>, count: Int, place: String) throws(ParquetError) {
        do {
            switch type {
            case .boolean: booleans.append(contentsOf: try PlainEncoding.decodeBooleans(bytes, count: count))
            case .int32: int32s.append(contentsOf: try PlainEncoding.decodeInt32s(bytes, count: count))
            case .int64: int64s.append(contentsOf: try PlainEncoding.decodeInt64s(bytes, count: count))
            case .float: floats.append(contentsOf: try PlainEncoding.decodeFloats(bytes, count: count))
            case .double: doubles.append(contentsOf: try PlainEncoding.decodeDoubles(bytes, count: count))
            case .int96: arrays.appendAll(ByteArrays(fixed: try PlainEncoding.decodeFixed(bytes, count: count, width: 12), width: 12))
            case .fixedLenByteArray:
                arrays.appendAll(ByteArrays(fixed: try PlainEncoding.decodeFixed(bytes, count: count, width: width), width: width))
            default:
                let decoded = try PlainEncoding.decodeByteArrays(bytes, count: count)
                arrays.appendAll(ByteArrays(bytes: decoded.bytes, offsets: decoded.offsets))
            }
        } catch {
            throw ParquetError("\(place): \(error.message)")
        }
    }

    mutating func appendBooleans(_ values: [UInt32]) {
        booleans.append(contentsOf: values.map { $0 != 0 })
    }

    /// `dictionary[index]` for every index (already checked to be in range).
    mutating func gather(_ dictionary: ParquetValues, _ indices: [UInt32]) {
        switch dictionary {
        case .boolean(let values): booleans.append(contentsOf: indices.map { values[Int($0)] })
        case .int32(let values): int32s.append(contentsOf: indices.map { values[Int($0)] })
        case .int64(let values): int64s.append(contentsOf: indices.map { values[Int($0)] })
        case .float(let values): floats.append(contentsOf: indices.map { values[Int($0)] })
        case .double(let values): doubles.append(contentsOf: indices.map { values[Int($0)] })
        case .int96(let values), .byteArrays(let values), .fixed(let values):
            for index in indices { arrays.append(values[Int(index)]) }
        }
    }

    func finish() -> ParquetValues {
        switch type {
        case .boolean: .boolean(booleans)
        case .int32: .int32(int32s)
        case .int64: .int64(int64s)
        case .float: .float(floats)
        case .double: .double(doubles)
        case .int96: .int96(arrays)
        case .fixedLenByteArray: .fixed(arrays)
        default: .byteArrays(arrays)
        }
    }
}
