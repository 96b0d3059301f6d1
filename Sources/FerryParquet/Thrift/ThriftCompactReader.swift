/// The value types of the Thrift compact protocol, as they appear in field headers and in list, set and map
/// headers (https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md).
///
/// A field header's type nibble carries a bool field's value (1 true, 2 false); both map to `.bool` here and the
/// value travels in `ThriftField.boolValue`.
package enum ThriftType: Sendable, Equatable, CustomStringConvertible {
    case bool
    case i8
    case i16
    case i32
    case i64
    case double
    case binary
    case list
    case set
    case map
    case structure
    case uuid

    /// The type for a type nibble (field header or element type), or nil for 0 (stop) and 14, 15 (unassigned).
    package init?(nibble: UInt8) {
        switch nibble {
        case 1, 2: self = .bool
        case 3: self = .i8
        case 4: self = .i16
        case 5: self = .i32
        case 6: self = .i64
        case 7: self = .double
        case 8: self = .binary
        case 9: self = .list
        case 10: self = .set
        case 11: self = .map
        case 12: self = .structure
        case 13: self = .uuid
        default: return nil
        }
    }

    /// The nibble written for this type as a list, set or map element type (bool is 2, as the specification says;
    /// readers also accept 1, which some implementations write).
    package var elementNibble: UInt8 {
        switch self {
        case .bool: 2
        case .i8: 3
        case .i16: 4
        case .i32: 5
        case .i64: 6
        case .double: 7
        case .binary: 8
        case .list: 9
        case .set: 10
        case .map: 11
        case .structure: 12
        case .uuid: 13
        }
    }

    /// The fewest bytes one element of this type takes inside a list, set or map: what lets a reader refuse a
    /// count larger than the bytes left before it allocates anything.
    package var minimumElementSize: Int {
        switch self {
        case .double: 8
        case .uuid: 16
        default: 1
        }
    }

    package var description: String {
        switch self {
        case .bool: "bool"
        case .i8: "i8"
        case .i16: "i16"
        case .i32: "i32"
        case .i64: "i64"
        case .double: "double"
        case .binary: "binary"
        case .list: "list"
        case .set: "set"
        case .map: "map"
        case .structure: "struct"
        case .uuid: "uuid"
        }
    }
}

/// One field header read from a struct: the field id, its wire type, and for a bool field its value (which the
/// compact protocol carries in the header's type nibble).
package struct ThriftField: Sendable, Equatable {
    package var id: Int16
    package var type: ThriftType
    /// The value of a bool field; false for any other type.
    package var boolValue: Bool

    package init(id: Int16, type: ThriftType, boolValue: Bool = false) {
        self.id = id
        self.type = type
        self.boolValue = boolValue
    }
}

/// A reader of the Thrift compact protocol over bytes that may be hostile (a Parquet footer or page header from
/// an untrusted file).
///
/// It never traps on its input: varints are at most 10 bytes, every length and element count is checked against
/// the bytes left before anything is allocated, nesting of structs, lists, sets and maps is limited to
/// `maximumDepth`, unknown fields of every type are skipped, and unassigned type nibbles are errors. Errors name
/// the context (`"footer"`, `"page header"`), what was wrong, the struct or field, and the byte offset.
///
/// Structs are read with `beginStruct(_:)` followed by `nextField()` until it returns nil:
///
///     try reader.beginStruct("KeyValue")
///     while let field = try reader.nextField() {
///         switch field.id {
///         case 1: key = try reader.readString(field, "KeyValue.key")
///         default: try reader.skip(field)
///         }
///     }
package struct ThriftCompactReader {
    /// How deep structs, lists, sets and maps may nest before the input is refused.
    package static let maximumDepth = 64

    /// The most list elements reserved up front, whatever count the input claims.
    private static let maximumReservation = 1024

    /// The struct being read and the id of the last field read in it (field ids are delta-encoded).
    private struct Frame {
        /// The struct's name, or for a struct being skipped the known struct and field it is inside.
        var name: String
        var lastFieldID: Int16
        var isSkipped = false
    }

    private let bytes: ArraySlice<UInt8>
    /// Index into `bytes` of the next byte to read.
    private var position: Int
    /// Where the data came from, the first words of every error ("footer", "page header").
    private let context: String
    private var current = Frame(name: "top level", lastFieldID: 0)
    private var enclosing: [Frame] = []
    private var depth = 0

    /// A reader of `bytes`, naming `context` in its errors.
    package init(_ bytes: ArraySlice<UInt8>, context: String = "thrift") {
        self.bytes = bytes
        self.position = bytes.startIndex
        self.context = context
    }

    /// A reader of `bytes`, naming `context` in its errors.
    package init(_ bytes: [UInt8], context: String = "thrift") {
        self.init(bytes[...], context: context)
    }

    /// How many bytes have been read.
    package var bytesRead: Int { position - bytes.startIndex }

    /// How many bytes are left to read.
    package var bytesLeft: Int { bytes.endIndex - position }

    /// An error naming the context, `message` and the offset of the next byte.
    package func error(_ message: String) -> ParquetError {
        ParquetError("\(context): \(message) (at byte \(bytesRead))")
    }

    /// `value`, or an error saying the required field `name` ("Struct.field") is missing.
    package func require<T>(_ value: T?, _ name: String) throws(ParquetError) -> T {
        guard let value else { throw error("required field \(name) is missing") }
        return value
    }
}

// MARK: - Raw bytes and varints

extension ThriftCompactReader {
    private mutating func readByte() throws(ParquetError) -> UInt8 {
        guard position < bytes.endIndex else { throw error("unexpected end of data in \(current.name)") }
        let byte = bytes[position]
        position += 1
        return byte
    }

    /// Checks that `count` bytes are left for `what` (count comes from the input, so it may be anything).
    private func checkAvailable(_ count: UInt64, _ what: @autoclosure () -> String) throws(ParquetError) {
        guard count <= UInt64(bytesLeft) else {
            throw error("\(what()) exceeds the \(bytesLeft) bytes left")
        }
    }

    private mutating func readBytes(_ count: Int) -> ArraySlice<UInt8> {
        let slice = bytes[position..<(position + count)]
        position += count
        return slice
    }

    /// An unsigned LEB128 varint of at most 10 bytes that fits in 64 bits.
    private mutating func readVarint() throws(ParquetError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<10 {
            let byte = try readByte()
            if index == 9 && byte & 0x80 != 0 { throw error("varint longer than 10 bytes in \(current.name)") }
            if index == 9 && byte > 1 { throw error("varint does not fit in 64 bits in \(current.name)") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return result
    }
}

// MARK: - Values (list elements and field values after their header)

extension ThriftCompactReader {
    /// An i8: one byte.
    package mutating func readI8(_ name: String) throws(ParquetError) -> Int8 {
        Int8(bitPattern: try readByte())
    }

    /// An i16: a zigzag varint that fits in 16 bits.
    package mutating func readI16(_ name: String) throws(ParquetError) -> Int16 {
        let value = try readI32(name)
        guard let narrow = Int16(exactly: value) else { throw error("\(name): i16 value \(value) out of range") }
        return narrow
    }

    /// An i32: a zigzag varint that fits in 32 bits.
    package mutating func readI32(_ name: String) throws(ParquetError) -> Int32 {
        let raw = try readVarint()
        guard let zigzag = UInt32(exactly: raw) else { throw error("\(name): i32 varint \(raw) out of range") }
        return Int32(bitPattern: (zigzag >> 1) ^ (0 &- (zigzag & 1)))
    }

    /// An i64: a zigzag varint.
    package mutating func readI64(_ name: String) throws(ParquetError) -> Int64 {
        let zigzag = try readVarint()
        return Int64(bitPattern: (zigzag >> 1) ^ (0 &- (zigzag & 1)))
    }

    /// A double: 8 bytes, little-endian IEEE 754.
    package mutating func readDouble(_ name: String) throws(ParquetError) -> Double {
        try checkAvailable(8, "\(name): double of 8 bytes")
        var bits: UInt64 = 0
        for (index, byte) in readBytes(8).enumerated() { bits |= UInt64(byte) << (8 * UInt64(index)) }
        return Double(bitPattern: bits)
    }

    /// A bool list element: one byte, 1 for true and 0 (or 2, which some implementations write) for false.
    package mutating func readBool(_ name: String) throws(ParquetError) -> Bool {
        switch try readByte() {
        case 1: return true
        case 0, 2: return false
        case let byte: throw error("\(name): bool element has byte \(byte), expected 0, 1 or 2")
        }
    }

    /// A binary: a varint length, checked against the bytes left, then that many bytes.
    package mutating func readBinary(_ name: String) throws(ParquetError) -> [UInt8] {
        Array(try readBinarySlice(name))
    }

    /// A string: a binary decoded as UTF-8 (invalid sequences become U+FFFD rather than failing the file).
    package mutating func readString(_ name: String) throws(ParquetError) -> String {
        String(decoding: try readBinarySlice(name), as: UTF8.self)
    }

    private mutating func readBinarySlice(_ name: String) throws(ParquetError) -> ArraySlice<UInt8> {
        let length = try readVarint()
        try checkAvailable(length, "binary of \(length) bytes in \(name)")
        return readBytes(Int(length))
    }

    /// A uuid: 16 bytes.
    package mutating func readUUID(_ name: String) throws(ParquetError) -> [UInt8] {
        try checkAvailable(16, "\(name): uuid of 16 bytes")
        return Array(readBytes(16))
    }
}

// MARK: - Structs and field headers

extension ThriftCompactReader {
    /// Starts reading a struct named `name` (for errors): the field ids that follow are relative to this struct.
    package mutating func beginStruct(_ name: String) throws(ParquetError) {
        try enterNesting(name)
        enclosing.append(current)
        current = Frame(name: name, lastFieldID: 0)
    }

    /// The next field header of the current struct, or nil after the stop byte, which also ends the struct (the
    /// enclosing struct's field ids apply again).
    package mutating func nextField() throws(ParquetError) -> ThriftField? {
        let header = try readByte()
        if header == 0 {
            endStruct()
            return nil
        }
        let nibble = header & 0x0F
        guard let type = ThriftType(nibble: nibble) else {
            throw error("unknown type nibble \(nibble) in a field header of \(current.name)")
        }
        let id = try readFieldID(delta: header >> 4)
        current.lastFieldID = id
        return ThriftField(id: id, type: type, boolValue: nibble == 1)
    }

    private mutating func readFieldID(delta: UInt8) throws(ParquetError) -> Int16 {
        if delta == 0 { return try readI16("\(current.name) field id") }
        guard let id = Int16(exactly: Int(current.lastFieldID) + Int(delta)) else {
            throw error("field id overflows after field \(current.lastFieldID) of \(current.name)")
        }
        return id
    }

    private mutating func endStruct() {
        current = enclosing.popLast() ?? Frame(name: "top level", lastFieldID: 0)
        depth -= 1
    }

    private mutating func enterNesting(_ name: String) throws(ParquetError) {
        guard depth < Self.maximumDepth else {
            throw error("\(name) nested more than \(Self.maximumDepth) levels deep")
        }
        depth += 1
    }

    /// Checks that `field` (named `name`, "Struct.field") has wire type `type`.
    package func expect(_ field: ThriftField, _ type: ThriftType, _ name: String) throws(ParquetError) {
        guard field.type == type else {
            throw error("\(name) (field \(field.id)) has wire type \(field.type), expected \(type)")
        }
    }
}

// MARK: - Typed fields

extension ThriftCompactReader {
    /// The value of bool field `field`, named `name` ("Struct.field").
    package func readBool(_ field: ThriftField, _ name: String) throws(ParquetError) -> Bool {
        try expect(field, .bool, name)
        return field.boolValue
    }

    /// The value of i8 field `field`, named `name` ("Struct.field").
    package mutating func readI8(_ field: ThriftField, _ name: String) throws(ParquetError) -> Int8 {
        try expect(field, .i8, name)
        return try readI8(name)
    }

    /// The value of i16 field `field`, named `name` ("Struct.field").
    package mutating func readI16(_ field: ThriftField, _ name: String) throws(ParquetError) -> Int16 {
        try expect(field, .i16, name)
        return try readI16(name)
    }

    /// The value of i32 field `field`, named `name` ("Struct.field").
    package mutating func readI32(_ field: ThriftField, _ name: String) throws(ParquetError) -> Int32 {
        try expect(field, .i32, name)
        return try readI32(name)
    }

    /// The value of i64 field `field`, named `name` ("Struct.field").
    package mutating func readI64(_ field: ThriftField, _ name: String) throws(ParquetError) -> Int64 {
        try expect(field, .i64, name)
        return try readI64(name)
    }

    /// The value of double field `field`, named `name` ("Struct.field").
    package mutating func readDouble(_ field: ThriftField, _ name: String) throws(ParquetError) -> Double {
        try expect(field, .double, name)
        return try readDouble(name)
    }

    /// The value of binary field `field`, named `name` ("Struct.field").
    package mutating func readBinary(_ field: ThriftField, _ name: String) throws(ParquetError) -> [UInt8] {
        try expect(field, .binary, name)
        return try readBinary(name)
    }

    /// The value of string (binary) field `field`, named `name` ("Struct.field").
    package mutating func readString(_ field: ThriftField, _ name: String) throws(ParquetError) -> String {
        try expect(field, .binary, name)
        return try readString(name)
    }

    /// The elements of list field `field`, named `name` ("Struct.field"), each of wire type `elementType` and
    /// read by `element`. The count is checked against the bytes left before the array is allocated.
    package mutating func readList<Element>(
        _ field: ThriftField,
        _ name: String,
        of elementType: ThriftType,
        _ element: (inout ThriftCompactReader) throws(ParquetError) -> Element
    ) throws(ParquetError) -> [Element] {
        try expect(field, .list, name)
        let (type, count) = try readListHeader(name)
        guard type == elementType else { throw error("\(name) is a list of \(type), expected a list of \(elementType)") }
        try enterNesting(name)
        var elements: [Element] = []
        // The count fits the bytes left, but an element in memory can be far larger than its encoding: reserve a
        // bounded amount and let the array grow with what is actually read.
        elements.reserveCapacity(min(count, Self.maximumReservation))
        for _ in 0..<count { elements.append(try element(&self)) }
        depth -= 1
        return elements
    }

    /// A list or set header: the element type and the count, checked against the bytes left.
    private mutating func readListHeader(_ name: String) throws(ParquetError) -> (ThriftType, Int) {
        let header = try readByte()
        guard let type = ThriftType(nibble: header & 0x0F) else {
            throw error("unknown element type nibble \(header & 0x0F) in list \(name)")
        }
        let shortCount = header >> 4
        let count = try shortCount == 15 ? readVarint() : UInt64(shortCount)
        try checkCount(count, elementSize: type.minimumElementSize, "list of \(count) elements in \(name)")
        return (type, Int(count))
    }

    /// Checks that `count` elements of at least `elementSize` bytes each fit in the bytes left.
    private func checkCount(_ count: UInt64, elementSize: Int, _ what: @autoclosure () -> String) throws(ParquetError) {
        guard count <= UInt64(bytesLeft / elementSize) else { throw error("\(what()) exceeds the \(bytesLeft) bytes left") }
    }
}

// MARK: - Skipping unknown fields

extension ThriftCompactReader {
    /// Skips the value of `field`, a field this reader does not know (or chooses to ignore), whatever its type.
    package mutating func skip(_ field: ThriftField) throws(ParquetError) {
        if field.type == .bool { return }  // The value was in the header.
        try skipValue(field.type, current.isSkipped ? current.name : "\(current.name) field \(field.id)")
    }

    /// Skips one value of wire type `type` (a list element or a field value after its header).
    private mutating func skipValue(_ type: ThriftType, _ name: String) throws(ParquetError) {
        switch type {
        case .bool, .i8: _ = try readByte()
        case .i16, .i32, .i64: _ = try readVarint()
        case .double: position += Int(try checkedSize(8, name))
        case .uuid: position += Int(try checkedSize(16, name))
        case .binary: _ = try readBinarySlice(name)
        case .list, .set: try skipList(name)
        case .map: try skipMap(name)
        case .structure: try skipStruct(name)
        }
    }

    private func checkedSize(_ size: UInt64, _ name: String) throws(ParquetError) -> UInt64 {
        try checkAvailable(size, "\(name): value of \(size) bytes")
        return size
    }

    private mutating func skipList(_ name: String) throws(ParquetError) {
        let (type, count) = try readListHeader(name)
        try enterNesting(name)
        for _ in 0..<count { try skipValue(type, name) }
        depth -= 1
    }

    private mutating func skipMap(_ name: String) throws(ParquetError) {
        let count = try readVarint()
        if count == 0 { return }
        let types = try readByte()
        guard let keyType = ThriftType(nibble: types >> 4), let valueType = ThriftType(nibble: types & 0x0F) else {
            throw error("unknown key or value type nibble in map header 0x\(String(types, radix: 16)) of \(name)")
        }
        let pairSize = keyType.minimumElementSize + valueType.minimumElementSize
        try checkCount(count, elementSize: pairSize, "map of \(count) entries in \(name)")
        try enterNesting(name)
        for _ in 0..<count {
            try skipValue(keyType, name)
            try skipValue(valueType, name)
        }
        depth -= 1
    }

    private mutating func skipStruct(_ name: String) throws(ParquetError) {
        try beginStruct(name)
        current.isSkipped = true
        while let field = try nextField() { try skip(field) }
    }
}
