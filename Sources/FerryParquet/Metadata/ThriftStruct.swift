/// A Parquet metadata struct that reads itself from, and writes itself to, the Thrift compact protocol.
///
/// `init(from:)` reads a whole struct (through its stop byte) and `encode(into:)` writes a whole struct (through
/// its stop byte); required fields that are missing are errors naming the struct and the field.
package protocol ThriftStruct: Sendable {
    init(from reader: inout ThriftCompactReader) throws(ParquetError)
    func encode(into writer: inout ThriftCompactWriter)
}

extension ThriftCompactReader {
    /// The value of struct field `field`, named `name` ("Struct.field").
    package mutating func readStruct<T: ThriftStruct>(_ field: ThriftField, _ name: String) throws(ParquetError) -> T {
        try expect(field, .structure, name)
        return try T(from: &self)
    }

    /// The elements of a list-of-structs field.
    package mutating func readStructList<T: ThriftStruct>(_ field: ThriftField, _ name: String) throws(ParquetError) -> [T] {
        try readList(field, name, of: .structure) { (reader: inout ThriftCompactReader) throws(ParquetError) in
            try T(from: &reader)
        }
    }

    /// The elements of a list-of-strings field.
    package mutating func readStringList(_ field: ThriftField, _ name: String) throws(ParquetError) -> [String] {
        try readList(field, name, of: .binary) { (reader: inout ThriftCompactReader) throws(ParquetError) in
            try reader.readString(name)
        }
    }

    /// The value of a struct field that Parquet defines with no fields (the members of its unions); any fields
    /// a newer writer put in it are skipped.
    package mutating func readEmptyStruct(_ field: ThriftField, _ name: String) throws(ParquetError) {
        try expect(field, .structure, name)
        try skip(field)
    }
}

extension ThriftCompactWriter {
    /// A struct field.
    package mutating func writeStructField(_ id: Int16, _ value: some ThriftStruct) {
        writeFieldBegin(id, .structure)
        value.encode(into: &self)
    }

    /// A list-of-structs field.
    package mutating func writeStructListField<T: ThriftStruct>(_ id: Int16, _ elements: [T]) {
        writeListField(id, of: .structure, elements) { writer, element in element.encode(into: &writer) }
    }

    /// A list-of-strings field.
    package mutating func writeStringListField(_ id: Int16, _ elements: [String]) {
        writeListField(id, of: .binary, elements) { writer, element in writer.writeString(element) }
    }
}
