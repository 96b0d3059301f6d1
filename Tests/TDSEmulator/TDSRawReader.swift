import NIOCore
import NIOPosix

/// The smallest TDS client there is: logs in, sends one SQL batch and reads its answer without looking at the rows,
/// returning the row count of the final DONE. For measuring what the emulator serves on its own (`ferry bench
/// sqlserver`): no client does less work per row.
package enum TDSRawReader {
    package static func read(_ sql: String, port: Int, user: String = "ferry", password: String = "s3cret", database: String = "ventas")
        async throws -> Int
    {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var reader = MessageReader(chunks: inbound.makeAsyncIterator())
            try await outbound.write(packet(type: 0x12, preLogin()))
            _ = try await reader.next(keep: 4096)
            try await outbound.write(packet(type: 0x10, login(user: user, password: password, database: database)))
            guard try await reader.next(keep: 65_536).readableBytesView.contains(0xAD) else { throw TDSProtocolError("the login was refused") }
            var batch = ByteBuffer()
            batch.writeInteger(UInt32(22), endianness: .little)  // ALL_HEADERS: the transaction descriptor header
            batch.writeInteger(UInt32(18), endianness: .little)
            batch.writeInteger(UInt16(2), endianness: .little)
            batch.writeInteger(UInt64(0), endianness: .little)
            batch.writeInteger(UInt32(1), endianness: .little)
            batch.writeUTF16(sql)
            try await outbound.write(packet(type: 0x01, batch))
            // Only the answer's last 8 bytes are kept: the final DONE's row count.
            let tail = try await reader.next(keep: 8)
            return Int(tail.getInteger(at: tail.readerIndex, endianness: .little, as: UInt64.self) ?? 0)
        }
    }

    /// Reads whole messages from raw bytes, keeping only each one's last `keep` bytes.
    private struct MessageReader {
        var chunks: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        var buffered = ByteBuffer()

        mutating func next(keep: Int) async throws -> ByteBuffer {
            var tail = ByteBuffer()
            while true {
                while buffered.readableBytes < 8 {
                    guard var chunk = try await chunks.next() else { throw TDSProtocolError("the server closed the connection") }
                    buffered.writeBuffer(&chunk)
                }
                let status = buffered.getInteger(at: buffered.readerIndex + 1, as: UInt8.self)!
                let length = Int(buffered.getInteger(at: buffered.readerIndex + 2, endianness: .big, as: UInt16.self)!)
                guard length >= 8 else { throw TDSProtocolError("a packet shorter than its header") }
                buffered.moveReaderIndex(forwardBy: 8)
                var remaining = length - 8
                while remaining > 0 {
                    if buffered.readableBytes == 0 {
                        guard var chunk = try await chunks.next() else { throw TDSProtocolError("the server closed the connection") }
                        buffered.writeBuffer(&chunk)
                    }
                    var part = buffered.readSlice(length: min(remaining, buffered.readableBytes))!
                    remaining -= part.readableBytes
                    tail.writeBuffer(&part)
                    if tail.readableBytes > keep * 2 {
                        tail = tail.getSlice(at: tail.writerIndex - keep, length: keep)!
                    }
                }
                buffered.discardReadBytes()
                if status & 0x01 != 0 {
                    return tail.readableBytes > keep ? tail.getSlice(at: tail.writerIndex - keep, length: keep)! : tail
                }
            }
        }
    }

    /// One message as packets of at most 4,096 bytes.
    private static func packet(type: UInt8, _ payload: ByteBuffer) -> ByteBuffer {
        var payload = payload
        var out = ByteBuffer()
        repeat {
            let chunk = payload.readSlice(length: min(payload.readableBytes, 4096 - 8)) ?? ByteBuffer()
            out.writeInteger(type)
            out.writeInteger(UInt8(payload.readableBytes == 0 ? 0x01 : 0x00))
            out.writeInteger(UInt16(chunk.readableBytes + 8), endianness: .big)
            out.writeInteger(UInt16(0), endianness: .big)
            out.writeInteger(UInt8(1))
            out.writeInteger(UInt8(0))
            out.writeImmutableBuffer(chunk)
        } while payload.readableBytes > 0
        return out
    }

    private static func preLogin() -> ByteBuffer {
        var buffer = ByteBuffer()
        // VERSION at 11 (6 bytes), ENCRYPTION at 17 (1 byte: not supported), terminator.
        buffer.writeBytes([0x00, 0x00, 0x0B, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xFF])
        buffer.writeBytes([0x0F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02])
        return buffer
    }

    /// LOGIN7 ([MS-TDS] 2.2.6.4) with TDS 7.4, the password obfuscated as the protocol asks.
    private static func login(user: String, password: String, database: String) -> ByteBuffer {
        let strings = ["raw-reader", user, password, "ferry-bench", "127.0.0.1", "", "ferry", "", database]
        var variable = ByteBuffer()
        var pairs = ByteBuffer()
        let start = 94
        for (index, string) in strings.enumerated() {
            var encoded = ByteBuffer()
            encoded.writeUTF16(string)
            if index == 2 {
                var bytes = Array(encoded.readableBytesView)
                for i in bytes.indices { bytes[i] = ((bytes[i] << 4) | (bytes[i] >> 4)) ^ 0xA5 }
                encoded = ByteBuffer(bytes: bytes)
            }
            pairs.writeInteger(UInt16(start + variable.readableBytes), endianness: .little)
            pairs.writeInteger(UInt16(string.utf16.count), endianness: .little)
            variable.writeBuffer(&encoded)
        }
        var fixed = ByteBuffer()
        fixed.writeInteger(UInt32(start + variable.readableBytes), endianness: .little)
        fixed.writeInteger(UInt32(0x7400_0004), endianness: .little)
        fixed.writeInteger(UInt32(4096), endianness: .little)
        fixed.writeInteger(UInt32(0), endianness: .little)  // client program version
        fixed.writeInteger(UInt32(0), endianness: .little)  // client process id
        fixed.writeInteger(UInt32(0), endianness: .little)  // connection id
        fixed.writeBytes([0xE0, 0x03, 0x00, 0x00])  // option flags 1-3, type flags
        fixed.writeInteger(Int32(0), endianness: .little)  // time zone
        fixed.writeInteger(UInt32(0x0409), endianness: .little)  // collation (LCID)
        fixed.writeBuffer(&pairs)  // 9 pairs: 36 bytes, to byte 72
        fixed.writeBytes([UInt8](repeating: 0, count: 6))  // client id
        // SSPI, the file to attach, a new password: all empty.
        for _ in 0..<3 { fixed.writeInteger(UInt32(UInt16(start + variable.readableBytes)), endianness: .little) }
        fixed.writeInteger(UInt32(0), endianness: .little)  // long SSPI length
        fixed.writeBuffer(&variable)
        return fixed
    }
}
