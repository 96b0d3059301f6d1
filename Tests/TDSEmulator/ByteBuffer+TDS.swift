import NIOCore

/// The server's tokens ([MS-TDS] 2.2.7) and the string forms they use, written straight into a buffer.
extension ByteBuffer {
    /// UTF-16LE code units of `string`.
    mutating func writeUTF16(_ string: String) {
        for unit in string.utf16 { writeInteger(unit, endianness: .little) }
    }

    /// B_VARCHAR: a one-byte count of UTF-16 units, then the units (longer strings are cut at 255 units).
    mutating func writeBVarchar(_ string: String) {
        let units = Array(string.utf16.prefix(255))
        writeInteger(UInt8(units.count))
        for unit in units { writeInteger(unit, endianness: .little) }
    }

    /// US_VARCHAR: a two-byte count of UTF-16 units, then the units.
    mutating func writeUSVarchar(_ string: String) {
        let units = Array(string.utf16.prefix(65535))
        writeInteger(UInt16(units.count), endianness: .little)
        for unit in units { writeInteger(unit, endianness: .little) }
    }

    /// Reads `count` UTF-16LE units; nil when fewer bytes are left.
    mutating func readUTF16(units count: Int) -> String? {
        guard count >= 0, var slice = readSlice(length: count * 2) else { return nil }
        var units: [UInt16] = []
        units.reserveCapacity(count)
        while let unit = slice.readInteger(endianness: .little, as: UInt16.self) { units.append(unit) }
        return String(decoding: units, as: UTF16.self)
    }

    /// Writes a token whose body starts with a two-byte length: `body` fills it.
    mutating func writeLengthPrefixedToken(_ token: UInt8, _ body: (inout ByteBuffer) -> Void) {
        writeInteger(token)
        let lengthIndex = writerIndex
        writeInteger(UInt16(0), endianness: .little)
        body(&self)
        setInteger(UInt16(writerIndex - lengthIndex - 2), at: lengthIndex, endianness: .little)
    }

    /// ENVCHANGE with string values (database, language, packet size).
    mutating func writeEnvChange(type: UInt8, new: String, old: String) {
        writeLengthPrefixedToken(0xE3) { buffer in
            buffer.writeInteger(type)
            buffer.writeBVarchar(new)
            buffer.writeBVarchar(old)
        }
    }

    /// ENVCHANGE with binary values (collation, transaction descriptors).
    mutating func writeEnvChange(type: UInt8, newBytes: [UInt8], oldBytes: [UInt8]) {
        writeLengthPrefixedToken(0xE3) { buffer in
            buffer.writeInteger(type)
            buffer.writeInteger(UInt8(newBytes.count))
            buffer.writeBytes(newBytes)
            buffer.writeInteger(UInt8(oldBytes.count))
            buffer.writeBytes(oldBytes)
        }
    }

    /// ERROR (0xAA) or INFO (0xAB).
    mutating func writeMessage(error: Bool, number: Int32, state: UInt8, severity: UInt8, text: String, server: String, line: Int32 = 1) {
        writeLengthPrefixedToken(error ? 0xAA : 0xAB) { buffer in
            buffer.writeInteger(number, endianness: .little)
            buffer.writeInteger(state)
            buffer.writeInteger(severity)
            buffer.writeUSVarchar(text)
            buffer.writeBVarchar(server)
            buffer.writeBVarchar("")
            buffer.writeInteger(line, endianness: .little)
        }
    }

    /// DONE (0xFD), DONEPROC (0xFE) or DONEINPROC (0xFF); the row count is 8 bytes from TDS 7.2 on.
    mutating func writeDone(token: UInt8 = 0xFD, status: TDSDoneStatus, command: UInt16 = 0xC1, rows: UInt64 = 0) {
        writeInteger(token)
        writeInteger(status.rawValue, endianness: .little)
        writeInteger(command, endianness: .little)
        writeInteger(rows, endianness: .little)
    }
}

/// DONE's status bits ([MS-TDS] 2.2.7.6).
struct TDSDoneStatus: OptionSet, Sendable {
    var rawValue: UInt16
    static let final = TDSDoneStatus([])
    static let more = TDSDoneStatus(rawValue: 0x01)
    static let error = TDSDoneStatus(rawValue: 0x02)
    static let inTransaction = TDSDoneStatus(rawValue: 0x04)
    static let count = TDSDoneStatus(rawValue: 0x10)
    static let attention = TDSDoneStatus(rawValue: 0x20)
}
