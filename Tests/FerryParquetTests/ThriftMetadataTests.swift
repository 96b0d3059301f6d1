import Foundation
import Testing

@testable import FerryParquet

// MARK: - Helpers

/// Encodes a struct alone.
private func encode(_ value: some ThriftStruct) -> [UInt8] {
    var writer = ThriftCompactWriter()
    value.encode(into: &writer)
    return writer.bytes
}

/// Decodes a `T` from `bytes`, checking that it took all of them.
private func decode<T: ThriftStruct>(_ type: T.Type, _ bytes: [UInt8]) throws(ParquetError) -> T {
    var reader = ThriftCompactReader(bytes, context: "test")
    let value = try T(from: &reader)
    guard reader.bytesLeft == 0 else { throw ParquetError("test: \(reader.bytesLeft) bytes left after \(T.self)") }
    return value
}

/// The message of the error decoding a `T` from `bytes` throws, or nil when it decodes.
private func decodeError<T: ThriftStruct>(_ type: T.Type, _ bytes: [UInt8]) -> String? {
    do {
        _ = try decode(type, bytes)
        return nil
    } catch {
        return error.message
    }
}

/// Writes one struct with `body` and returns its bytes.
private func structBytes(_ body: (inout ThriftCompactWriter) -> Void) -> [UInt8] {
    var writer = ThriftCompactWriter()
    writer.beginStruct()
    body(&writer)
    writer.endStruct()
    return writer.bytes
}

/// A deterministic pseudo-random generator (SplitMix64), so the mutation test is the same on every run.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

// MARK: - Sample metadata

private enum Sample {
    static let fullStatistics = Statistics(
        max: [9, 0, 0, 0], min: [1, 0, 0, 0], nullCount: 3, distinctCount: 7, maxValue: [0xFF, 0x7F],
        minValue: [0x80], isMaxValueExact: true, isMinValueExact: false)

    static let fullColumnMetaData = ColumnMetaData(
        type: .byteArray, encodings: [.plain, .rle, .rleDictionary, Encoding(rawValue: 42)], pathInSchema: ["a", "b", "c"],
        codec: .zstd, numValues: 1 << 40, totalUncompressedSize: 123_456_789_012, totalCompressedSize: -5,
        keyValueMetadata: [KeyValue(key: "k", value: "v"), KeyValue(key: "only key")], dataPageOffset: 4,
        indexPageOffset: 99, dictionaryPageOffset: 100, statistics: fullStatistics,
        encodingStats: [
            PageEncodingStats(pageType: .dictionaryPage, encoding: .plain, count: 1),
            PageEncodingStats(pageType: .dataPage, encoding: .rleDictionary, count: 20),
        ])

    static let minimalColumnMetaData = ColumnMetaData(
        type: .int32, encodings: [], pathInSchema: ["x"], codec: .uncompressed, numValues: 0, totalUncompressedSize: 0,
        totalCompressedSize: 0, dataPageOffset: 0)

    static let logicalTypes: [LogicalType] = [
        .string, .map, .list, .enumeration, .decimal(scale: 2, precision: 38), .date,
        .time(isAdjustedToUTC: true, unit: .millis), .time(isAdjustedToUTC: false, unit: .nanos),
        .timestamp(isAdjustedToUTC: true, unit: .micros), .timestamp(isAdjustedToUTC: false, unit: .nanos),
        .integer(bitWidth: 8, isSigned: false), .integer(bitWidth: 64, isSigned: true), .null, .json, .bson, .uuid,
        .float16, .unknown(fieldID: 16), .unknown(fieldID: 0),
    ]

    static let schema: [SchemaElement] =
        [SchemaElement(name: "schema", numChildren: Int32(logicalTypes.count + 1))]
        + [
            SchemaElement(
                type: .fixedLenByteArray, typeLength: 16, repetitionType: .required, name: "all fields", numChildren: nil,
                convertedType: .decimal, scale: 2, precision: 38, fieldID: -1, logicalType: .decimal(scale: 2, precision: 38))
        ]
        + logicalTypes.enumerated().map { index, logicalType in
            SchemaElement(type: .byteArray, repetitionType: .optional, name: "column \(index) ✓", logicalType: logicalType)
        }

    static let fullRowGroup = RowGroup(
        columns: [
            ColumnChunk(filePath: "other.parquet", fileOffset: 77, metaData: fullColumnMetaData, hasCryptoMetadata: true),
            ColumnChunk(metaData: minimalColumnMetaData),
            ColumnChunk(),
        ],
        totalByteSize: 1000, numRows: 10,
        sortingColumns: [
            SortingColumn(columnIdx: 0, descending: true, nullsFirst: false),
            SortingColumn(columnIdx: 2, descending: false, nullsFirst: true),
        ],
        fileOffset: 4, totalCompressedSize: 900, ordinal: -3)

    static let fullFileMetaData = FileMetaData(
        version: 2, schema: schema, numRows: 10,
        rowGroups: [fullRowGroup, RowGroup(columns: [], totalByteSize: 0, numRows: 0)],
        keyValueMetadata: [KeyValue(key: "ARROW:schema", value: "/////"), KeyValue(key: "empty", value: "")],
        createdBy: "ferry test", columnOrders: [.typeDefined, .unknown, .typeDefined], hasEncryptionAlgorithm: true)

    static let minimalFileMetaData = FileMetaData(version: 1, schema: [SchemaElement(name: "root")], numRows: 0, rowGroups: [])

    /// Twenty columns so the lists take the long form.
    static let wideFileMetaData = FileMetaData(
        version: 1,
        schema: [SchemaElement(name: "root", numChildren: 20)]
            + (0..<20).map { SchemaElement(type: .int64, repetitionType: .required, name: "c\($0)") },
        numRows: 1,
        rowGroups: [
            RowGroup(
                columns: (0..<20).map { index in
                    ColumnChunk(
                        metaData: ColumnMetaData(
                            type: .int64, encodings: [.plain], pathInSchema: ["c\(index)"], codec: .snappy, numValues: 1,
                            totalUncompressedSize: 20, totalCompressedSize: 22, dataPageOffset: Int64(4 + index * 22)))
                }, totalByteSize: 400, numRows: 1)
        ],
        createdBy: "wide")
}

/// The Thrift compact protocol reader and writer and Parquet's metadata structs. `--filter ThriftMetadataTests`
/// runs all the suites below.
@Suite struct ThriftMetadataTests {}

// MARK: - Compact protocol bytes

extension ThriftMetadataTests {
    /// The compact protocol's bytes: field headers, varints, lists, maps, skipping.
    @Suite struct CompactProtocol {
        @Test func smallI32FieldIsThreeBytes() {
            #expect(structBytes { $0.writeI32Field(1, 1) } == [0x15, 0x02, 0x00])
        }

        @Test func fieldDeltaAbove15UsesTheLongForm() {
            let bytes = structBytes { writer in
                writer.writeI32Field(1, 0)
                writer.writeI32Field(20, 1)
            }
            #expect(bytes == [0x15, 0x00, 0x05, 0x28, 0x02, 0x00])
            let exactly15 = structBytes { writer in writer.writeI32Field(15, 0) }
            #expect(exactly15 == [0xF5, 0x00, 0x00])
        }

        @Test func decreasingAndZeroFieldIDsUseTheLongForm() {
            let bytes = structBytes { writer in
                writer.writeI32Field(5, 1)
                writer.writeI32Field(2, 1)
                writer.writeI32Field(-1, 1)
            }
            #expect(bytes == [0x55, 0x02, 0x05, 0x04, 0x02, 0x05, 0x01, 0x02, 0x00])
        }

        @Test func nestedStructsKeepTheirOwnFieldIDs() {
            let bytes = structBytes { writer in
                writer.writeStructField(1) { writer in writer.writeI32Field(5, 7) }
                writer.writeI32Field(2, 3)
            }
            #expect(bytes == [0x1C, 0x55, 0x0E, 0x00, 0x15, 0x06, 0x00])
        }

        @Test func boolFieldsCarryTheValueInTheTypeNibble() {
            let bytes = structBytes { writer in
                writer.writeBoolField(1, true)
                writer.writeBoolField(2, false)
            }
            #expect(bytes == [0x11, 0x12, 0x00])
        }

        @Test func scalarFieldEncodings() {
            #expect(structBytes { $0.writeI8Field(1, -1) } == [0x13, 0xFF, 0x00])
            #expect(structBytes { $0.writeI16Field(1, 300) } == [0x14, 0xD8, 0x04, 0x00])
            #expect(structBytes { $0.writeI64Field(1, -2) } == [0x16, 0x03, 0x00])
            #expect(structBytes { $0.writeDoubleField(1, 1.0) } == [0x17, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x00])
            #expect(structBytes { $0.writeStringField(1, "hi") } == [0x18, 0x02, 0x68, 0x69, 0x00])
            #expect(structBytes { $0.writeBinaryField(1, []) } == [0x18, 0x00, 0x00])
            #expect(structBytes { $0.writeEmptyStructField(1) } == [0x1C, 0x00, 0x00])
        }

        @Test func varintsAndZigzag() {
            var writer = ThriftCompactWriter()
            writer.writeVarint(50399)
            #expect(writer.bytes == [0xDF, 0x89, 0x03])

            writer = ThriftCompactWriter()
            writer.writeI32(0)
            writer.writeI32(-1)
            writer.writeI32(1)
            writer.writeI32(-2)
            writer.writeI32(Int32.min)
            #expect(writer.bytes == [0x00, 0x01, 0x02, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])

            writer = ThriftCompactWriter()
            writer.writeI64(Int64.min)
            #expect(writer.bytes == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        }

        @Test func listHeadersShortAndLongForm() {
            var writer = ThriftCompactWriter()
            writer.writeListBegin(.i32, count: 14)
            #expect(writer.bytes == [0xE5])

            writer = ThriftCompactWriter()
            writer.writeListBegin(.i32, count: 15)
            #expect(writer.bytes == [0xF5, 0x0F])

            writer = ThriftCompactWriter()
            writer.writeListBegin(.structure, count: 300)
            #expect(writer.bytes == [0xFC, 0xAC, 0x02])

            writer = ThriftCompactWriter()
            writer.writeListBegin(.bool, count: 0)
            #expect(writer.bytes == [0x02])

            let field = structBytes { writer in writer.writeListField(1, of: .i32, Array(repeating: Int32(1), count: 15)) { $0.writeI32($1) } }
            #expect(field == [0x19, 0xF5, 0x0F] + Array(repeating: 0x02, count: 15) + [0x00])
        }

        @Test func mapHeaders() {
            var writer = ThriftCompactWriter()
            writer.writeMapBegin(keyType: .binary, valueType: .i32, count: 0)
            #expect(writer.bytes == [0x00])
            writer = ThriftCompactWriter()
            writer.writeMapBegin(keyType: .binary, valueType: .i32, count: 3)
            #expect(writer.bytes == [0x03, 0x85])
        }

        @Test func readerReadsBackEveryValueType() throws {
            var writer = ThriftCompactWriter()
            writer.beginStruct()
            writer.writeBoolField(1, true)
            writer.writeBoolField(2, false)
            writer.writeI8Field(3, Int8.min)
            writer.writeI16Field(4, Int16.min)
            writer.writeI32Field(5, Int32.max)
            writer.writeI64Field(6, Int64.min)
            writer.writeDoubleField(7, -0.5)
            writer.writeBinaryField(8, [0, 1, 255])
            writer.writeStringField(40, "é")
            writer.writeListField(9, of: .bool, [true, false, true]) { $0.writeBool($1) }
            writer.writeListField(10, of: .i64, Array(0..<20)) { $0.writeI64(Int64($1) - 10) }
            writer.writeStructField(11) { writer in writer.writeI32Field(1, 42) }
            writer.writeFieldBegin(12, .uuid)
            writer.writeUUID(Array(0..<16))
            writer.endStruct()

            var reader = ThriftCompactReader(writer.bytes)
            try reader.beginStruct("Test")
            var seen: [Int16] = []
            while let field = try reader.nextField() {
                seen.append(field.id)
                switch field.id {
                case 1: #expect(try reader.readBool(field, "Test.1") == true)
                case 2: #expect(try reader.readBool(field, "Test.2") == false)
                case 3: #expect(try reader.readI8(field, "Test.3") == Int8.min)
                case 4: #expect(try reader.readI16(field, "Test.4") == Int16.min)
                case 5: #expect(try reader.readI32(field, "Test.5") == Int32.max)
                case 6: #expect(try reader.readI64(field, "Test.6") == Int64.min)
                case 7: #expect(try reader.readDouble(field, "Test.7") == -0.5)
                case 8: #expect(try reader.readBinary(field, "Test.8") == [0, 1, 255])
                case 40: #expect(try reader.readString(field, "Test.40") == "é")
                case 9:
                    let bools = try reader.readList(field, "Test.9", of: .bool) { (reader: inout ThriftCompactReader) throws(ParquetError) in
                        try reader.readBool("Test.9")
                    }
                    #expect(bools == [true, false, true])
                case 10:
                    let numbers = try reader.readList(field, "Test.10", of: .i64) { (reader: inout ThriftCompactReader) throws(ParquetError) in
                        try reader.readI64("Test.10")
                    }
                    #expect(numbers == (0..<20).map { Int64($0) - 10 })
                case 11:
                    try reader.beginStruct("Inner")
                    let inner = try #require(try reader.nextField())
                    #expect(try reader.readI32(inner, "Inner.1") == 42)
                    #expect(try reader.nextField() == nil)
                case 12:
                    try reader.expect(field, .uuid, "Test.12")
                    #expect(try reader.readUUID("Test.12") == Array(0..<16))
                default: Issue.record("unexpected field \(field.id)")
                }
            }
            #expect(seen == [1, 2, 3, 4, 5, 6, 7, 8, 40, 9, 10, 11, 12])
            #expect(reader.bytesLeft == 0)
        }

        @Test func skipsUnknownFieldsOfEveryType() throws {
            let bytes = structBytes { writer in
                writer.writeBoolField(3, true)
                writer.writeBoolField(4, false)
                writer.writeI8Field(5, -3)
                writer.writeI16Field(6, -300)
                writer.writeI32Field(7, 123_456)
                writer.writeI64Field(8, Int64.min)
                writer.writeDoubleField(9, 3.5)
                writer.writeBinaryField(10, [1, 2, 3])
                writer.writeFieldBegin(11, .uuid)
                writer.writeUUID(Array(repeating: 7, count: 16))
                writer.writeListField(12, of: .i32, Array(0..<20)) { $0.writeI32(Int32($1)) }
                writer.writeFieldBegin(13, .set)
                writer.writeListBegin(.binary, count: 2)
                writer.writeString("a")
                writer.writeString("bc")
                writer.writeFieldBegin(14, .map)
                writer.writeMapBegin(keyType: .binary, valueType: .i64, count: 2)
                writer.writeString("one")
                writer.writeI64(1)
                writer.writeString("two")
                writer.writeI64(2)
                writer.writeFieldBegin(15, .map)
                writer.writeMapBegin(keyType: .i32, valueType: .structure, count: 0)
                writer.writeStructField(16) { writer in
                    writer.writeI32Field(1, 5)
                    writer.writeStructField(2) { writer in
                        writer.writeListFieldBegin(1, .structure, count: 2)
                        for _ in 0..<2 { KeyValue(key: "x", value: "y").encode(into: &writer) }
                    }
                    writer.writeBoolField(3, true)
                }
                writer.writeListField(17, of: .bool, [true, false, true]) { $0.writeBool($1) }
                writer.writeListFieldBegin(18, .list, count: 2)
                writer.writeListBegin(.i64, count: 1)
                writer.writeI64(9)
                writer.writeListBegin(.double, count: 1)
                writer.writeDouble(1.5)
                writer.writeFieldBegin(19, .map)
                writer.writeMapBegin(keyType: .binary, valueType: .list, count: 1)
                writer.writeString("k")
                writer.writeListBegin(.structure, count: 1)
                Statistics(nullCount: 1).encode(into: &writer)
                writer.writeStringField(1, "key")
                writer.writeStringField(2, "value")
                writer.writeI32Field(300, 1)
            }
            #expect(try decode(KeyValue.self, bytes) == KeyValue(key: "key", value: "value"))
        }

        @Test func acceptsJavaStyleBoolLists() throws {
            // Field 3: list of 2 bools with element type 1 and elements 1 (true), 2 (false); then field 1 "k" in long form.
            let bytes: [UInt8] = [0x39, 0x21, 0x01, 0x02, 0x08, 0x02, 0x01, 0x6B, 0x00]
            #expect(try decode(KeyValue.self, bytes) == KeyValue(key: "k"))
            var reader = ThriftCompactReader([0x05])
            #expect(throws: ParquetError.self) { try reader.readBool("element") }
        }
    }
}

// MARK: - Metadata round trips

extension ThriftMetadataTests {
    /// Every metadata struct encodes and decodes back to itself.
    @Suite struct RoundTrips {
        private func roundTrip<T: ThriftStruct & Equatable>(_ value: T) throws {
            let bytes = encode(value)
            #expect(try decode(T.self, bytes) == value)
        }

        @Test func statisticsRoundTrip() throws {
            try roundTrip(Sample.fullStatistics)
            try roundTrip(Statistics())
            #expect(encode(Statistics()) == [0x00])
        }

        @Test func schemaElementRoundTrip() throws {
            for element in Sample.schema { try roundTrip(element) }
            try roundTrip(SchemaElement(name: ""))
        }

        @Test func logicalTypesRoundTrip() throws {
            for logicalType in Sample.logicalTypes { try roundTrip(logicalType) }
            for unit in [TimeUnit.millis, .micros, .nanos] { try roundTrip(unit) }
            try roundTrip(ColumnOrder.typeDefined)
            try roundTrip(ColumnOrder.unknown)
        }

        @Test func logicalTypeBytes() {
            // SchemaElement.logicalType is a union: field 1 (STRING) holding an empty struct.
            #expect(encode(LogicalType.string) == [0x1C, 0x00, 0x00])
            #expect(encode(LogicalType.decimal(scale: 2, precision: 9)) == [0x5C, 0x15, 0x04, 0x15, 0x12, 0x00, 0x00])
            #expect(encode(LogicalType.integer(bitWidth: 16, isSigned: true)) == [0xAC, 0x13, 0x10, 0x11, 0x00, 0x00])
            #expect(encode(ColumnOrder.typeDefined) == [0x1C, 0x00, 0x00])
        }

        @Test func unknownUnionMembers() throws {
            // VARIANT (16) with a specification_version i8 inside: skipped, kept as its field id.
            let variant = structBytes { $0.writeStructField(16) { $0.writeI8Field(1, 1) } }
            #expect(try decode(LogicalType.self, variant) == .unknown(fieldID: 16))
            #expect(try decode(LogicalType.self, [0x00]) == .unknown(fieldID: 0))
            // A future member of STRING's empty struct: its fields are skipped.
            let string = structBytes { $0.writeStructField(1) { $0.writeI32Field(1, 9) } }
            #expect(try decode(LogicalType.self, string) == .string)
            // IEEE_754_TOTAL_ORDER (2).
            #expect(try decode(ColumnOrder.self, structBytes { $0.writeEmptyStructField(2) }) == .unknown)
            // A time unit this reader does not know is an error naming it.
            let badUnit = structBytes { writer in
                writer.writeStructField(7) { writer in
                    writer.writeBoolField(1, true)
                    writer.writeStructField(2) { $0.writeEmptyStructField(4) }
                }
            }
            #expect(decodeError(LogicalType.self, badUnit)?.contains("TimeUnit has unknown member 4") == true)
        }

        @Test func pageHeadersRoundTrip() throws {
            let v1 = PageHeader(
                type: .dataPage, uncompressedPageSize: 100, compressedPageSize: 80, crc: -123_456,
                dataPageHeader: DataPageHeader(
                    numValues: 10, encoding: .plain, definitionLevelEncoding: .rle, repetitionLevelEncoding: .bitPacked,
                    statistics: Sample.fullStatistics))
            let dictionary = PageHeader(
                type: .dictionaryPage, uncompressedPageSize: 5, compressedPageSize: 5,
                dictionaryPageHeader: DictionaryPageHeader(numValues: 1, encoding: .plainDictionary, isSorted: true))
            let v2 = PageHeader(
                type: .dataPageV2, uncompressedPageSize: Int32.max, compressedPageSize: 0,
                dataPageHeaderV2: DataPageHeaderV2(
                    numValues: 10, numNulls: 2, numRows: 9, encoding: .deltaByteArray, definitionLevelsByteLength: 3,
                    repetitionLevelsByteLength: 4, isCompressed: false, statistics: Statistics(nullCount: 2)))
            let all = PageHeader(
                type: PageType(rawValue: 9), uncompressedPageSize: 1, compressedPageSize: 2, crc: 3,
                dataPageHeader: v1.dataPageHeader, dictionaryPageHeader: dictionary.dictionaryPageHeader,
                dataPageHeaderV2: v2.dataPageHeaderV2)
            for header in [v1, dictionary, v2, all, PageHeader(type: .indexPage, uncompressedPageSize: 0, compressedPageSize: 0)] {
                try roundTrip(header)
                let bytes = header.encoded()
                let decoded = try PageHeader.decode(bytes[...] + [0xAA, 0xBB, 0xCC])
                #expect(decoded.header == header)
                #expect(decoded.length == bytes.count)
            }
            try roundTrip(DataPageHeader(numValues: 0, encoding: .plain, definitionLevelEncoding: .rle, repetitionLevelEncoding: .rle))
            try roundTrip(DictionaryPageHeader(numValues: 0, encoding: .plain))
            try roundTrip(
                DataPageHeaderV2(
                    numValues: 0, numNulls: 0, numRows: 0, encoding: .plain, definitionLevelsByteLength: 0,
                    repetitionLevelsByteLength: 0))
        }

        @Test func pageHeaderDecodeFromASliceNotAtZero() throws {
            let header = PageHeader(type: .dataPage, uncompressedPageSize: 3, compressedPageSize: 3)
            let file: [UInt8] = [0x50, 0x41, 0x52, 0x31] + header.encoded() + [1, 2, 3]
            let decoded = try PageHeader.decode(file[4...])
            #expect(decoded.header == header)
            #expect(decoded.length == header.encoded().count)
        }

        @Test func isCompressedDefaultsToTrue() throws {
            let bytes = structBytes { writer in
                for id: Int16 in 1...6 { writer.writeI32Field(id, 1) }
            }
            #expect(try decode(DataPageHeaderV2.self, bytes).isCompressed == true)
        }

        @Test func indexPageHeaderIsSkipped() throws {
            let bytes = structBytes { writer in
                writer.writeI32Field(1, 1)
                writer.writeI32Field(2, 0)
                writer.writeI32Field(3, 0)
                writer.writeStructField(6) { $0.writeI32Field(1, 5) }
            }
            #expect(try decode(PageHeader.self, bytes) == PageHeader(type: .indexPage, uncompressedPageSize: 0, compressedPageSize: 0))
        }

        @Test func columnStructsRoundTrip() throws {
            try roundTrip(KeyValue(key: "k", value: "v"))
            try roundTrip(KeyValue(key: ""))
            try roundTrip(PageEncodingStats(pageType: .dataPageV2, encoding: .byteStreamSplit, count: Int32.min))
            try roundTrip(Sample.fullColumnMetaData)
            try roundTrip(Sample.minimalColumnMetaData)
            for chunk in Sample.fullRowGroup.columns { try roundTrip(chunk) }
            try roundTrip(SortingColumn(columnIdx: 3, descending: false, nullsFirst: false))
            try roundTrip(Sample.fullRowGroup)
            try roundTrip(RowGroup(columns: [], totalByteSize: 0, numRows: 0))
        }

        @Test func encryptedColumnMetadataIsOnlyAFlag() throws {
            let bytes = structBytes { writer in
                writer.writeI64Field(2, 0)
                writer.writeBinaryField(9, [1, 2, 3, 4])
            }
            #expect(try decode(ColumnChunk.self, bytes) == ColumnChunk(hasCryptoMetadata: true))
        }

        @Test func fileMetaDataRoundTrip() throws {
            for metadata in [Sample.fullFileMetaData, Sample.minimalFileMetaData, Sample.wideFileMetaData] {
                let bytes = metadata.encoded()
                #expect(try FileMetaData.decode(bytes[...]) == metadata)
                #expect(try FileMetaData.decode(bytes[...]).encoded() == bytes)
            }
        }

        @Test func enumDescriptions() {
            #expect(PhysicalType.byteArray.description == "BYTE_ARRAY")
            #expect(PhysicalType.fixedLenByteArray.description == "FIXED_LEN_BYTE_ARRAY")
            #expect(PhysicalType(rawValue: 9).description == "unknown type 9")
            #expect(PhysicalType(rawValue: -1).description == "unknown type -1")
            #expect(Encoding.plainDictionary.description == "PLAIN_DICTIONARY")
            #expect(Encoding.byteStreamSplit.description == "BYTE_STREAM_SPLIT")
            #expect(Encoding(rawValue: 1).description == "unknown encoding 1")
            #expect(CompressionCodec.lz4Raw.description == "LZ4_RAW")
            #expect(CompressionCodec(rawValue: 8).description == "unknown compression codec 8")
            #expect(PageType.dataPageV2.description == "DATA_PAGE_V2")
            #expect(FieldRepetitionType.repeated.description == "REPEATED")
            #expect(FieldRepetitionType(rawValue: 3).description == "unknown repetition type 3")
            #expect(ConvertedType.utf8.description == "UTF8")
            #expect(ConvertedType.enumeration.description == "ENUM")
            #expect(ConvertedType.uint16.description == "UINT_16")
            #expect(ConvertedType.int64.description == "INT_64")
            #expect(ConvertedType.interval.description == "INTERVAL")
            #expect(ConvertedType(rawValue: 22).description == "unknown converted type 22")
        }

        @Test func unknownEnumValuesSurvive() throws {
            let element = SchemaElement(type: PhysicalType(rawValue: 77), repetitionType: FieldRepetitionType(rawValue: 5), name: "x")
            #expect(try decode(SchemaElement.self, encode(element)).type?.rawValue == 77)
        }
    }
}

// MARK: - Hostile input

extension ThriftMetadataTests {
    /// Truncated, oversized, too deep and mutated input throws and never traps.
    @Suite struct HostileInput {
        @Test func everyTruncationThrows() {
            for metadata in [Sample.fullFileMetaData, Sample.wideFileMetaData] {
                let bytes = metadata.encoded()
                for length in 0..<bytes.count {
                    #expect(throws: ParquetError.self) { try FileMetaData.decode(bytes[0..<length]) }
                }
            }
        }

        @Test func hugeListCountThrowsNamingTheField() {
            var writer = ThriftCompactWriter()
            writer.beginStruct()
            writer.writeI32Field(1, 1)
            writer.writeListFieldBegin(4, .structure, count: 1)
            writer.beginStruct()
            writer.writeListFieldBegin(1, .structure, count: 4_000_000_000)
            let bytes = writer.bytes + Array(repeating: 0, count: 120)
            #expect(throws: ParquetError.self) { try FileMetaData.decode(bytes[...]) }
            do {
                _ = try FileMetaData.decode(bytes[...])
            } catch {
                #expect(error.message.hasPrefix("footer: list of 4000000000 elements in RowGroup.columns exceeds the 120 bytes left"))
            }
        }

        @Test func hugeCountsAndLengthsThrow() {
            // A 2^62-byte string.
            var writer = ThriftCompactWriter()
            writer.beginStruct()
            writer.writeFieldBegin(1, .binary)
            writer.writeVarint(1 << 62)
            #expect(decodeError(KeyValue.self, writer.bytes + [0x61, 0x00])?.contains("exceeds the 2 bytes left") == true)

            // The largest varint as a list count, in a known and in an unknown field.
            for id: Int16 in [3, 20] {
                writer = ThriftCompactWriter()
                writer.beginStruct()
                writer.writeFieldBegin(id, .list)
                writer.writeListBegin(.binary, count: 15)
                let bytes = Array(writer.bytes.dropLast()) + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00]
                #expect(decodeError(ColumnMetaData.self, bytes)?.contains("exceeds the 1 bytes left") == true)
            }

            // Ten doubles need 80 bytes, not 20.
            writer = ThriftCompactWriter()
            writer.beginStruct()
            writer.writeListFieldBegin(5, .double, count: 10)
            #expect(decodeError(KeyValue.self, writer.bytes + Array(repeating: 0, count: 20)) != nil)

            // A map of 2^40 entries in an unknown field.
            writer = ThriftCompactWriter()
            writer.beginStruct()
            writer.writeFieldBegin(5, .map)
            writer.writeMapBegin(keyType: .i32, valueType: .i32, count: 1 << 40)
            #expect(decodeError(KeyValue.self, writer.bytes + [0, 0, 0])?.contains("map of 1099511627776 entries") == true)

            // A uuid with 3 bytes left.
            writer = ThriftCompactWriter()
            writer.beginStruct()
            writer.writeFieldBegin(5, .uuid)
            #expect(decodeError(KeyValue.self, writer.bytes + [1, 2, 3]) != nil)
        }

        @Test func deepNestingThrows() {
            // 100 structs nested in unknown field 3.
            let structs = [UInt8](repeating: 0x3C, count: 100) + [UInt8](repeating: 0x00, count: 101)
            #expect(decodeError(KeyValue.self, structs)?.hasPrefix("test: KeyValue field 3 nested more than 64 levels deep") == true)
            // 100 lists of one list each.
            let lists: [UInt8] = [0x39] + [UInt8](repeating: 0x19, count: 100) + [0x00]
            #expect(decodeError(KeyValue.self, lists)?.contains("nested more than 64 levels deep") == true)
            // 100 maps of one map each.
            let maps: [UInt8] = [0x3B] + [UInt8](repeating: 0, count: 100).flatMap { _ in [UInt8(0x01), 0x5B, 0x00] } + [0x00]
            #expect(decodeError(KeyValue.self, maps)?.contains("nested more than 64 levels deep") == true)
            // 60 levels are fine.
            let fine = [UInt8](repeating: 0x3C, count: 60) + [UInt8](repeating: 0x00, count: 60) + [0x08, 0x02, 0x01, 0x6B, 0x00]
            #expect(decodeError(KeyValue.self, fine) == nil)
        }

        @Test func badVarintsThrow() {
            let overlong: [UInt8] = [0x15] + [UInt8](repeating: 0x80, count: 10) + [0x00, 0x00]
            #expect(decodeError(PageEncodingStats.self, overlong)?.contains("varint longer than 10 bytes") == true)
            let tooBig: [UInt8] = [0x36] + [UInt8](repeating: 0xFF, count: 9) + [0x02, 0x00]
            #expect(decodeError(Statistics.self, tooBig)?.contains("does not fit in 64 bits") == true)
            let i32TooBig: [UInt8] = [0x15, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00]
            #expect(decodeError(PageEncodingStats.self, i32TooBig)?.contains("i32 varint") == true)
            // RowGroup.ordinal as an i16 of 70000.
            let i16TooBig = structBytes { writer in
                writer.writeFieldBegin(7, .i16)
                writer.writeI32(70000)
            }
            #expect(decodeError(RowGroup.self, i16TooBig)?.contains("out of range") == true)
        }

        @Test func badTypesThrow() {
            #expect(decodeError(KeyValue.self, [0x1E, 0x00])?.contains("unknown type nibble 14") == true)
            #expect(decodeError(KeyValue.self, [0x1F, 0x00])?.contains("unknown type nibble 15") == true)
            #expect(decodeError(KeyValue.self, [0x39, 0x10, 0x00])?.contains("unknown element type nibble 0") == true)
            #expect(decodeError(KeyValue.self, [0x3B, 0x01, 0xE5, 0x00]) != nil)
            let wrongType = structBytes { $0.writeI32Field(1, 5) }
            #expect(decodeError(KeyValue.self, wrongType)?.contains("KeyValue.key (field 1) has wire type i32, expected binary") == true)
            let wrongElements = structBytes { $0.writeListField(3, of: .i32, [1]) { $0.writeI32($1) } }
            #expect(decodeError(ColumnMetaData.self, wrongElements)?.contains("is a list of i32, expected a list of binary") == true)
        }

        @Test func missingRequiredFieldsAreNamed() {
            #expect(decodeError(KeyValue.self, [0x00]) == "test: required field KeyValue.key is missing (at byte 1)")
            let metadata = structBytes { writer in
                writer.writeI32Field(1, 1)
                writer.writeStructListField(2, [SchemaElement(name: "root")])
                writer.writeStructListField(4, [RowGroup]())
            }
            #expect(decodeError(FileMetaData.self, metadata)?.contains("FileMetaData.num_rows") == true)
            let column = structBytes { writer in
                writer.writeI64Field(2, 0)
                writer.writeStructField(3) { $0.writeI32Field(1, 1) }
            }
            #expect(decodeError(ColumnChunk.self, column)?.contains("ColumnMetaData.encodings") == true)
            #expect(decodeError(ColumnChunk.self, [0x00])?.contains("ColumnChunk.file_offset") == true)
        }

        @Test func fieldIDOverflowThrows() {
            // Field 32767 in the long form, then a delta of 1.
            let bytes: [UInt8] = [0x05, 0xFE, 0xFF, 0x03, 0x00, 0x15, 0x00, 0x00]
            #expect(decodeError(KeyValue.self, bytes)?.contains("field id overflows") == true)
        }

        @Test func randomMutationsNeverTrap() {
            var random = SplitMix64(state: 0x5EED)
            let samples = [Sample.fullFileMetaData.encoded(), Sample.wideFileMetaData.encoded()]
            var decoded = 0
            for round in 0..<4000 {
                var bytes = samples[round % samples.count]
                for _ in 0...Int.random(in: 0..<4, using: &random) { mutate(&bytes, using: &random) }
                if (try? FileMetaData.decode(bytes[...])) != nil { decoded += 1 }
                _ = try? PageHeader.decode(bytes[...])
            }
            // Some mutations (in strings, in values) still decode; most do not. Either way nothing trapped.
            #expect(decoded > 0)
        }

        private func mutate(_ bytes: inout [UInt8], using random: inout SplitMix64) {
            guard !bytes.isEmpty else { return }
            let index = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
            case 3: bytes.remove(at: index)
            case 4: bytes[index] = [0x00, 0x0F, 0x19, 0xF9, 0xFF, 0x80, 0x3C, 0x0B][Int.random(in: 0..<8, using: &random)]
            default: bytes.removeSubrange(index...)
            }
        }
    }
}

// MARK: - Real footers

/// apache/parquet-testing's data files (Tests/ParquetVectors).
private let parquetTestingDirectory =
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../ParquetVectors/data")
    .standardized.path + "/"

extension ThriftMetadataTests {
    /// The footers of files from apache/parquet-testing, written by Impala, parquet-mr and parquet-cpp.
    @Suite struct RealFooters {
        private func file(_ name: String) throws -> [UInt8] {
            let data = try #require(FileManager.default.contents(atPath: parquetTestingDirectory + name))
            return [UInt8](data)
        }

        /// The footer: the metadata before the last 8 bytes (a little-endian UInt32 length and "PAR1").
        private func footer(_ bytes: [UInt8]) throws -> FileMetaData {
            try #require(bytes.count >= 12 && Array(bytes.suffix(4)) == Array("PAR1".utf8))
            let end = bytes.count - 8
            let length = bytes[end..<end + 4].reversed().reduce(0) { $0 << 8 | Int($1) }
            try #require(length <= end - 4)
            let metadata = try FileMetaData.decode(bytes[(end - length)..<end])
            // What was read encodes back to something that reads the same.
            #expect(try FileMetaData.decode(metadata.encoded()[...]) == metadata)
            return metadata
        }

        @Test func alltypesPlain() throws {
            let bytes = try file("alltypes_plain.parquet")
            let metadata = try footer(bytes)
            #expect(metadata.numRows == 8)
            #expect(metadata.schema.count == 12)
            #expect(metadata.schema[0].name == "schema")
            #expect(metadata.schema[0].numChildren == 11)
            #expect(metadata.schema[1] == SchemaElement(type: .int32, repetitionType: .optional, name: "id"))
            #expect(metadata.schema[11].type == .int96)
            #expect(metadata.createdBy == "impala version 1.3.0-INTERNAL (build 8a48ddb1eff84592b3fc06bc6f51ec120e1fffc9)")
            #expect(metadata.rowGroups.count == 1)
            let rowGroup = try #require(metadata.rowGroups.first)
            #expect(rowGroup.numRows == 8)
            #expect(rowGroup.totalByteSize == 671)
            #expect(rowGroup.columns.count == 11)
            let id = try #require(rowGroup.columns[0].metaData)
            #expect(id.pathInSchema == ["id"])
            #expect(id.type == .int32)
            #expect(id.codec == .uncompressed)
            #expect(Set(id.encodings) == [.rle, .plainDictionary, .plain])
            #expect(id.numValues == 8)
            #expect(id.dictionaryPageOffset == 4)
            #expect(id.dataPageOffset == 49)
            #expect(id.totalCompressedSize == 73)

            // The dictionary page header at offset 4.
            let page = try PageHeader.decode(bytes[4...])
            #expect(page.header.type == .dictionaryPage)
            #expect(page.header.dictionaryPageHeader?.numValues == 8)
            #expect(4 + page.length + Int(page.header.compressedPageSize) == 49)
            let data = try PageHeader.decode(bytes[49...])
            #expect(data.header.type == .dataPage)
            #expect(data.header.dataPageHeader?.numValues == 8)
            #expect(data.header.dataPageHeader?.encoding == .plainDictionary)
        }

        @Test func nullsSnappy() throws {
            let metadata = try footer(try file("nulls.snappy.parquet"))
            #expect(metadata.numRows == 8)
            #expect(metadata.createdBy?.hasPrefix("parquet-mr version 1.8.2") == true)
            #expect(metadata.schema.map(\.name) == ["spark_schema", "b_struct", "b_c_int"])
            #expect(metadata.schema[1].numChildren == 1)
            #expect(metadata.schema[1].repetitionType == .optional)
            let column = try #require(metadata.rowGroups.first?.columns.first?.metaData)
            #expect(column.pathInSchema == ["b_struct", "b_c_int"])
            #expect(column.codec == .snappy)
            #expect(column.statistics?.nullCount == 8)
            #expect(column.dataPageOffset == 4)
            #expect(column.totalCompressedSize == 29)
        }

        @Test func unknownLogicalType() throws {
            let metadata = try footer(try file("unknown-logical-type.parquet"))
            #expect(metadata.numRows == 3)
            #expect(metadata.createdBy == "parquet-cpp-arrow version 20.0.0-SNAPSHOT")
            #expect(metadata.schema.count == 3)
            #expect(metadata.schema[1].name == "column with known type")
            #expect(metadata.schema[1].logicalType == .string)
            #expect(metadata.schema[1].convertedType == .utf8)
            #expect(metadata.schema[2].name == "column with unknown type")
            guard case .unknown(let fieldID) = metadata.schema[2].logicalType else {
                Issue.record("expected an unknown logical type, got \(String(describing: metadata.schema[2].logicalType))")
                return
            }
            #expect(fieldID == 2555)
            let column = try #require(metadata.rowGroups.first?.columns.first?.metaData)
            #expect(column.statistics?.minValue == Array("known string 1".utf8))
            #expect(column.statistics?.maxValue == Array("known string 3".utf8))
            #expect(column.dictionaryPageOffset == 4)
            #expect(metadata.keyValueMetadata?.contains { $0.key == "ARROW:schema" } == true)
            #expect(metadata.columnOrders == [.typeDefined, .typeDefined])
        }

        @Test func dataPageV2() throws {
            let bytes = try file("datapage_v2.snappy.parquet")
            let metadata = try footer(bytes)
            #expect(metadata.numRows == 5)
            #expect(metadata.schema.map(\.name) == ["spark_schema", "a", "b", "c", "d", "e", "list", "element"])
            #expect(metadata.schema[5].convertedType == .list)
            #expect(metadata.schema[6].repetitionType == .repeated)
            let columns = try #require(metadata.rowGroups.first?.columns)
            #expect(columns.count == 5)
            let b = try #require(columns[1].metaData)
            #expect(b.encodings == [.deltaBinaryPacked])
            #expect(b.statistics?.min == [1, 0, 0, 0])
            #expect(b.statistics?.max == [5, 0, 0, 0])
            #expect(b.dataPageOffset == 67)

            let page = try PageHeader.decode(bytes[67...])
            #expect(page.header.type == .dataPageV2)
            let v2 = try #require(page.header.dataPageHeaderV2)
            #expect(v2.numValues == 5)
            #expect(v2.numRows == 5)
            #expect(v2.numNulls == 0)
            #expect(v2.encoding == .deltaBinaryPacked)
        }
    }
}
