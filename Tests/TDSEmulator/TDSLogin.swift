import NIOCore

/// PRELOGIN ([MS-TDS] 2.2.6.5): what the client asks for. The emulator answers without encryption.
struct TDSPreLogin: Sendable {
    /// ENCRYPTION's byte: 0 off, 1 on, 2 not supported, 3 required.
    var encryption: UInt8 = 2

    init(_ payload: ByteBuffer) throws {
        var table = payload
        while true {
            guard let option = table.readInteger(as: UInt8.self) else { throw TDSProtocolError("PRELOGIN ends inside its option table") }
            if option == 0xFF { break }
            guard let offset = table.readInteger(endianness: .big, as: UInt16.self),
                let length = table.readInteger(endianness: .big, as: UInt16.self),
                Int(offset) + Int(length) <= payload.readableBytes
            else { throw TDSProtocolError("PRELOGIN option \(option) points outside the message") }
            if option == 0x01, length >= 1 {
                encryption = payload.getInteger(at: payload.readerIndex + Int(offset), as: UInt8.self)!
            }
        }
    }

    /// The server's PRELOGIN answer: version (SQL Server 2016's 13.0), `encryption` (2: not supported; 1: on), no MARS.
    static func response(encryption: UInt8 = 0x02) -> ByteBuffer {
        let options: [(UInt8, [UInt8])] = [
            (0x00, [13, 0, 0x13, 0x88, 0, 0]),
            (0x01, [encryption]),
            (0x02, [0x00]),
            (0x03, []),
            (0x04, [0x00]),
        ]
        var buffer = ByteBuffer()
        var offset = options.count * 5 + 1
        for (option, data) in options {
            buffer.writeInteger(option)
            buffer.writeInteger(UInt16(offset), endianness: .big)
            buffer.writeInteger(UInt16(data.count), endianness: .big)
            offset += data.count
        }
        buffer.writeInteger(UInt8(0xFF))
        for (_, data) in options { buffer.writeBytes(data) }
        return buffer
    }
}

/// LOGIN7 ([MS-TDS] 2.2.6.4): who logs in, to which database, with which packet size.
struct TDSLogin: Sendable {
    var tdsVersion: UInt32
    var packetSize: Int
    var hostName: String
    var userName: String
    var password: String
    var appName: String
    var database: String

    init(_ payload: ByteBuffer) throws {
        var fixed = payload
        guard let length = fixed.readInteger(endianness: .little, as: UInt32.self), Int(length) <= payload.readableBytes,
            let version = fixed.readInteger(endianness: .little, as: UInt32.self),
            let packetSize = fixed.readInteger(endianness: .little, as: UInt32.self),
            payload.readableBytes >= 94
        else { throw TDSProtocolError("LOGIN7 is shorter than its fixed part") }
        tdsVersion = version
        self.packetSize = Int(packetSize)

        /// The string at the n-th offset/length pair of the variable part (pairs start at byte 36).
        func string(_ pair: Int, password: Bool = false) throws -> String {
            let at = payload.readerIndex + 36 + pair * 4
            let offset = Int(payload.getInteger(at: at, endianness: .little, as: UInt16.self)!)
            let units = Int(payload.getInteger(at: at + 2, endianness: .little, as: UInt16.self)!)
            guard units > 0 else { return "" }
            guard offset + units * 2 <= payload.readableBytes, var bytes = payload.getSlice(at: payload.readerIndex + offset, length: units * 2)
            else { throw TDSProtocolError("a LOGIN7 string points outside the message") }
            if password {
                // [MS-TDS] 2.2.6.4: each byte had its nibbles swapped, then was XORed with 0xA5.
                var plain = ByteBuffer()
                while let byte = bytes.readInteger(as: UInt8.self) {
                    let x = byte ^ 0xA5
                    plain.writeInteger((x << 4) | (x >> 4))
                }
                bytes = plain
            }
            return bytes.readUTF16(units: units) ?? ""
        }
        hostName = try string(0)
        userName = try string(1)
        password = try string(2, password: true)
        appName = try string(3)
        database = try string(8)
    }

    /// The TDS version both sides speak: the client's, at most 7.4 (read little-endian: 7.4 is 0x74000004).
    var agreedVersion: UInt32 { min(tdsVersion, 0x7400_0004) }
}
