/// A Parquet enum (parquet.thrift) as a struct over its Int32 value, so values this reader does not know survive
/// decoding and can be refused later by name ("unknown encoding 12") where they matter.
package protocol ThriftEnum: RawRepresentable, Hashable, Sendable, CustomStringConvertible where RawValue == Int32 {
    init(rawValue: Int32)
}

/// The spec name of `rawValue` from `names` (indexed by value; "" for unassigned values), or
/// "`unknown` `rawValue`" for values outside it.
private func enumName(_ rawValue: Int32, _ names: [String], unknown: String) -> String {
    guard rawValue >= 0, rawValue < names.count, !names[Int(rawValue)].isEmpty else { return "\(unknown) \(rawValue)" }
    return names[Int(rawValue)]
}

extension ThriftCompactReader {
    /// The value of enum field `field` (an i32 on the wire), named `name` ("Struct.field").
    package mutating func readEnum<E: ThriftEnum>(_ field: ThriftField, _ name: String) throws(ParquetError) -> E {
        E(rawValue: try readI32(field, name))
    }

    /// The elements of a list-of-enums field.
    package mutating func readEnumList<E: ThriftEnum>(_ field: ThriftField, _ name: String) throws(ParquetError) -> [E] {
        try readList(field, name, of: .i32) { (reader: inout ThriftCompactReader) throws(ParquetError) in
            E(rawValue: try reader.readI32(name))
        }
    }
}

extension ThriftCompactWriter {
    /// An enum field (an i32 on the wire).
    package mutating func writeEnumField(_ id: Int16, _ value: some ThriftEnum) {
        writeI32Field(id, value.rawValue)
    }

    /// A list-of-enums field.
    package mutating func writeEnumListField<E: ThriftEnum>(_ id: Int16, _ elements: [E]) {
        writeListField(id, of: .i32, elements) { writer, element in writer.writeI32(element.rawValue) }
    }
}

/// The physical type of a column's values (parquet.thrift `Type`).
package struct PhysicalType: ThriftEnum {
    package var rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    package static let boolean = PhysicalType(rawValue: 0)
    package static let int32 = PhysicalType(rawValue: 1)
    package static let int64 = PhysicalType(rawValue: 2)
    package static let int96 = PhysicalType(rawValue: 3)
    package static let float = PhysicalType(rawValue: 4)
    package static let double = PhysicalType(rawValue: 5)
    package static let byteArray = PhysicalType(rawValue: 6)
    package static let fixedLenByteArray = PhysicalType(rawValue: 7)

    private static let names = ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"]

    /// The spec name ("BYTE_ARRAY"), or "unknown type 9".
    package var description: String { enumName(rawValue, Self.names, unknown: "unknown type") }
}

/// How a page's values (or levels) are encoded (parquet.thrift `Encoding`).
package struct Encoding: ThriftEnum {
    package var rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    package static let plain = Encoding(rawValue: 0)
    package static let plainDictionary = Encoding(rawValue: 2)
    package static let rle = Encoding(rawValue: 3)
    package static let bitPacked = Encoding(rawValue: 4)
    package static let deltaBinaryPacked = Encoding(rawValue: 5)
    package static let deltaLengthByteArray = Encoding(rawValue: 6)
    package static let deltaByteArray = Encoding(rawValue: 7)
    package static let rleDictionary = Encoding(rawValue: 8)
    package static let byteStreamSplit = Encoding(rawValue: 9)

    private static let names = [
        "PLAIN", "", "PLAIN_DICTIONARY", "RLE", "BIT_PACKED", "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY",
        "DELTA_BYTE_ARRAY", "RLE_DICTIONARY", "BYTE_STREAM_SPLIT",
    ]

    /// The spec name ("RLE_DICTIONARY"), or "unknown encoding 1".
    package var description: String { enumName(rawValue, Self.names, unknown: "unknown encoding") }
}

/// The compression of a column chunk's pages (parquet.thrift `CompressionCodec`).
package struct CompressionCodec: ThriftEnum {
    package var rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    package static let uncompressed = CompressionCodec(rawValue: 0)
    package static let snappy = CompressionCodec(rawValue: 1)
    package static let gzip = CompressionCodec(rawValue: 2)
    package static let lzo = CompressionCodec(rawValue: 3)
    package static let brotli = CompressionCodec(rawValue: 4)
    package static let lz4 = CompressionCodec(rawValue: 5)
    package static let zstd = CompressionCodec(rawValue: 6)
    package static let lz4Raw = CompressionCodec(rawValue: 7)

    private static let names = ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"]

    /// The spec name ("ZSTD"), or "unknown compression codec 8".
    package var description: String { enumName(rawValue, Self.names, unknown: "unknown compression codec") }
}

/// The kind of a page (parquet.thrift `PageType`).
package struct PageType: ThriftEnum {
    package var rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    package static let dataPage = PageType(rawValue: 0)
    package static let indexPage = PageType(rawValue: 1)
    package static let dictionaryPage = PageType(rawValue: 2)
    package static let dataPageV2 = PageType(rawValue: 3)

    private static let names = ["DATA_PAGE", "INDEX_PAGE", "DICTIONARY_PAGE", "DATA_PAGE_V2"]

    /// The spec name ("DATA_PAGE_V2"), or "unknown page type 4".
    package var description: String { enumName(rawValue, Self.names, unknown: "unknown page type") }
}

/// Whether a schema field is required, optional or repeated (parquet.thrift `FieldRepetitionType`).
package struct FieldRepetitionType: ThriftEnum {
    package var rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    package static let required = FieldRepetitionType(rawValue: 0)
    package static let optional = FieldRepetitionType(rawValue: 1)
    package static let repeated = FieldRepetitionType(rawValue: 2)

    private static let names = ["REQUIRED", "OPTIONAL", "REPEATED"]

    /// The spec name ("OPTIONAL"), or "unknown repetition type 3".
    package var description: String { enumName(rawValue, Self.names, unknown: "unknown repetition type") }
}

/// The deprecated annotation of a schema field, superseded by `LogicalType` (parquet.thrift `ConvertedType`).
package struct ConvertedType: ThriftEnum {
    package var rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    package static let utf8 = ConvertedType(rawValue: 0)
    package static let map = ConvertedType(rawValue: 1)
    package static let mapKeyValue = ConvertedType(rawValue: 2)
    package static let list = ConvertedType(rawValue: 3)
    package static let enumeration = ConvertedType(rawValue: 4)
    package static let decimal = ConvertedType(rawValue: 5)
    package static let date = ConvertedType(rawValue: 6)
    package static let timeMillis = ConvertedType(rawValue: 7)
    package static let timeMicros = ConvertedType(rawValue: 8)
    package static let timestampMillis = ConvertedType(rawValue: 9)
    package static let timestampMicros = ConvertedType(rawValue: 10)
    package static let uint8 = ConvertedType(rawValue: 11)
    package static let uint16 = ConvertedType(rawValue: 12)
    package static let uint32 = ConvertedType(rawValue: 13)
    package static let uint64 = ConvertedType(rawValue: 14)
    package static let int8 = ConvertedType(rawValue: 15)
    package static let int16 = ConvertedType(rawValue: 16)
    package static let int32 = ConvertedType(rawValue: 17)
    package static let int64 = ConvertedType(rawValue: 18)
    package static let json = ConvertedType(rawValue: 19)
    package static let bson = ConvertedType(rawValue: 20)
    package static let interval = ConvertedType(rawValue: 21)

    private static let names = [
        "UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE", "TIME_MILLIS", "TIME_MICROS",
        "TIMESTAMP_MILLIS", "TIMESTAMP_MICROS", "UINT_8", "UINT_16", "UINT_32", "UINT_64", "INT_8", "INT_16",
        "INT_32", "INT_64", "JSON", "BSON", "INTERVAL",
    ]

    /// The spec name ("TIMESTAMP_MICROS"), or "unknown converted type 22".
    package var description: String { enumName(rawValue, Self.names, unknown: "unknown converted type") }
}
