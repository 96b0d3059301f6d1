public import NIOCore

/// Writes commands as RESP arrays of bulk strings straight into a `ByteBuffer`, with no intermediate strings.
public struct RESPCommandEncoder {
    public var buffer: ByteBuffer

    public init(buffer: ByteBuffer) {
        self.buffer = buffer
    }

    /// Writes one command: every value's arguments, in order, under one array header.
    public mutating func encodeArray<each Value: RESPRenderable>(_ values: repeat each Value) {
        var count = 0
        for value in repeat each values { count += value.respEntries }
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(count))
        for value in repeat each values { value.encode(into: &self) }
    }

    /// Writes a command whose arguments are already in an array (the generic `send`).
    public mutating func encodeArray(arguments: [any RESPRenderable]) {
        let count = arguments.reduce(0) { $0 + $1.respEntries }
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(count))
        for argument in arguments { argument.encode(into: &self) }
    }

    public mutating func encodeBulkString(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            writeHeader(RESPTypeIdentifier.bulkString.rawValue, Int64(bytes.count))
            buffer.writeBytes(bytes)
        }
        buffer.writeInteger(RESPBytes.crlf)
    }

    public mutating func encodeBulkBytes(_ bytes: ByteBuffer) {
        writeHeader(RESPTypeIdentifier.bulkString.rawValue, Int64(bytes.readableBytes))
        buffer.writeImmutableBuffer(bytes)
        buffer.writeInteger(RESPBytes.crlf)
    }

    public mutating func encodeBulkBytes(_ bytes: some Collection<UInt8>) {
        writeHeader(RESPTypeIdentifier.bulkString.rawValue, Int64(bytes.count))
        buffer.writeBytes(bytes)
        buffer.writeInteger(RESPBytes.crlf)
    }

    public mutating func encodeBulkInteger(_ value: Int64) {
        let digits = Self.decimalLength(value)
        writeHeader(RESPTypeIdentifier.bulkString.rawValue, Int64(digits))
        writeDecimal(value)
        buffer.writeInteger(RESPBytes.crlf)
    }

    private mutating func writeHeader(_ type: UInt8, _ value: Int64) {
        buffer.writeInteger(type)
        writeDecimal(value)
        buffer.writeInteger(RESPBytes.crlf)
    }

    /// Writes `value` in decimal ASCII without allocating.
    private mutating func writeDecimal(_ value: Int64) {
        if value >= 0 && value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        let length = Self.decimalLength(value)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { pointer in
            var magnitude = value.magnitude
            var index = length - 1
            repeat {
                pointer[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                index -= 1
            } while magnitude > 0
            if value < 0 { pointer[0] = UInt8(ascii: "-") }
            return length
        }
    }

    static func decimalLength(_ value: Int64) -> Int {
        var magnitude = value.magnitude
        var length = value < 0 ? 2 : 1
        while magnitude >= 10 {
            magnitude /= 10
            length += 1
        }
        return length
    }
}
