/// A writer of the Thrift compact protocol
/// (https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md) into a byte array.
///
/// Field headers are delta-encoded against the previous field of the same struct, so every struct is written
/// between `beginStruct()` and `endStruct()`, which keep one last-field-id per nesting level:
///
///     writer.beginStruct()
///     writer.writeStringField(1, key)
///     writer.writeI32Field(2, count)
///     writer.endStruct()  // the stop byte
///
/// Lists are a header (`writeListFieldBegin` or `writeListBegin`) followed by exactly `count` element values
/// (`writeI32`, `writeString`, a struct's `encode(into:)`...).
package struct ThriftCompactWriter {
    /// Everything written so far.
    package private(set) var bytes: [UInt8] = []
    /// The id of the last field written in the current struct.
    private var lastFieldID: Int16 = 0
    /// The last field ids of the enclosing structs.
    private var enclosingFieldIDs: [Int16] = []

    package init() {}
}

// MARK: - Values

extension ThriftCompactWriter {
    /// An unsigned LEB128 varint.
    package mutating func writeVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// An i8: one byte.
    package mutating func writeI8(_ value: Int8) {
        bytes.append(UInt8(bitPattern: value))
    }

    /// An i16: a zigzag varint.
    package mutating func writeI16(_ value: Int16) {
        writeI32(Int32(value))
    }

    /// An i32: a zigzag varint.
    package mutating func writeI32(_ value: Int32) {
        writeVarint(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }

    /// An i64: a zigzag varint.
    package mutating func writeI64(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// A double: 8 bytes, little-endian IEEE 754.
    package mutating func writeDouble(_ value: Double) {
        let bits = value.bitPattern
        for index in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(index)))) }
    }

    /// A bool list element: 1 for true, 0 for false.
    package mutating func writeBool(_ value: Bool) {
        bytes.append(value ? 1 : 0)
    }

    /// A binary: varint length, then the bytes.
    package mutating func writeBinary(_ value: [UInt8]) {
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A string: its UTF-8 bytes as a binary.
    package mutating func writeString(_ value: String) {
        let utf8 = value.utf8
        writeVarint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// A uuid: its 16 bytes (big-endian), no length prefix.
    package mutating func writeUUID(_ value: [UInt8]) {
        assert(value.count == 16, "a uuid is 16 bytes")
        bytes.append(contentsOf: value)
    }

    /// A list or set header: `count` elements of `elementType` follow. Short form (one byte) for 0 to 14
    /// elements, long form (0xF nibble and a varint count) otherwise.
    package mutating func writeListBegin(_ elementType: ThriftType, count: Int) {
        if count < 15 {
            bytes.append(UInt8(truncatingIfNeeded: count) << 4 | elementType.elementNibble)
        } else {
            bytes.append(0xF0 | elementType.elementNibble)
            writeVarint(UInt64(count))
        }
    }

    /// A map header: `count` key-value pairs follow (an empty map is the single byte 0).
    package mutating func writeMapBegin(keyType: ThriftType, valueType: ThriftType, count: Int) {
        writeVarint(UInt64(count))
        if count > 0 { bytes.append(keyType.elementNibble << 4 | valueType.elementNibble) }
    }
}

// MARK: - Structs and fields

extension ThriftCompactWriter {
    /// Starts a struct: the field ids written next are delta-encoded from 0.
    package mutating func beginStruct() {
        enclosingFieldIDs.append(lastFieldID)
        lastFieldID = 0
    }

    /// Ends a struct with the stop byte; the enclosing struct's field ids apply again.
    package mutating func endStruct() {
        bytes.append(0)
        lastFieldID = enclosingFieldIDs.popLast() ?? 0
    }

    /// A field header: the short form (delta and type in one byte) when the id is 1 to 15 more than the last
    /// field's, otherwise the type byte and the id as a zigzag varint.
    private mutating func writeFieldHeader(_ id: Int16, nibble: UInt8) {
        let delta = Int(id) - Int(lastFieldID)
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | nibble)
        } else {
            bytes.append(nibble)
            writeI16(id)
        }
        lastFieldID = id
    }

    /// The header of field `id` of wire type `type`; its value follows. Bool fields carry their value in the
    /// header: write them with `writeBoolField`.
    package mutating func writeFieldBegin(_ id: Int16, _ type: ThriftType) {
        assert(type != .bool, "bool fields are written with writeBoolField")
        writeFieldHeader(id, nibble: type == .bool ? 1 : type.elementNibble)
    }

    /// A bool field: the header's type nibble is the value (1 true, 2 false).
    package mutating func writeBoolField(_ id: Int16, _ value: Bool) {
        writeFieldHeader(id, nibble: value ? 1 : 2)
    }

    /// An i8 field.
    package mutating func writeI8Field(_ id: Int16, _ value: Int8) {
        writeFieldBegin(id, .i8)
        writeI8(value)
    }

    /// An i16 field.
    package mutating func writeI16Field(_ id: Int16, _ value: Int16) {
        writeFieldBegin(id, .i16)
        writeI16(value)
    }

    /// An i32 field.
    package mutating func writeI32Field(_ id: Int16, _ value: Int32) {
        writeFieldBegin(id, .i32)
        writeI32(value)
    }

    /// An i64 field.
    package mutating func writeI64Field(_ id: Int16, _ value: Int64) {
        writeFieldBegin(id, .i64)
        writeI64(value)
    }

    /// A double field.
    package mutating func writeDoubleField(_ id: Int16, _ value: Double) {
        writeFieldBegin(id, .double)
        writeDouble(value)
    }

    /// A binary field.
    package mutating func writeBinaryField(_ id: Int16, _ value: [UInt8]) {
        writeFieldBegin(id, .binary)
        writeBinary(value)
    }

    /// A string field.
    package mutating func writeStringField(_ id: Int16, _ value: String) {
        writeFieldBegin(id, .binary)
        writeString(value)
    }

    /// A struct field whose fields `body` writes (the struct's begin and stop are written here).
    package mutating func writeStructField(_ id: Int16, _ body: (inout ThriftCompactWriter) -> Void) {
        writeFieldBegin(id, .structure)
        beginStruct()
        body(&self)
        endStruct()
    }

    /// A struct field with no fields (the empty structs of Parquet's unions: `StringType`, `TypeDefinedOrder`...).
    package mutating func writeEmptyStructField(_ id: Int16) {
        writeStructField(id) { _ in }
    }

    /// The header of list field `id`; `count` values of `elementType` follow.
    package mutating func writeListFieldBegin(_ id: Int16, _ elementType: ThriftType, count: Int) {
        writeFieldBegin(id, .list)
        writeListBegin(elementType, count: count)
    }

    /// A list field of `elements`, each of wire type `elementType` and written by `element`.
    package mutating func writeListField<Element>(
        _ id: Int16,
        of elementType: ThriftType,
        _ elements: [Element],
        _ element: (inout ThriftCompactWriter, Element) -> Void
    ) {
        writeListFieldBegin(id, elementType, count: elements.count)
        for value in elements { element(&self, value) }
    }
}
