import NIOCore

/// A TDS message: the payloads of one or more packets of one type, up to the packet marked end-of-message
/// ([MS-TDS] 2.2.3). The emulator reads whole client messages and writes whole server messages.
struct TDSMessage: Sendable, Equatable {
    /// [MS-TDS] 2.2.3.1.1: the packet types the emulator reads and writes.
    struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        var rawValue: UInt8
        static let sqlBatch = Kind(rawValue: 0x01)
        static let rpc = Kind(rawValue: 0x03)
        static let tabularResult = Kind(rawValue: 0x04)
        static let attention = Kind(rawValue: 0x06)
        static let bulkLoad = Kind(rawValue: 0x07)
        static let transactionManager = Kind(rawValue: 0x0E)
        static let login7 = Kind(rawValue: 0x10)
        static let preLogin = Kind(rawValue: 0x12)

        var description: String { "0x" + String(rawValue, radix: 16) }
    }

    var kind: Kind
    var payload: ByteBuffer

    static let headerLength = 8
    /// The packet size a client may ask for: [MS-TDS] 2.2.6.4 allows 512…32767.
    static let packetSizes = 512...32767
}

/// What a client sent that breaks the protocol. The connection is closed after it: nothing on it can be trusted.
package struct TDSProtocolError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// Assembles packets into messages. Never consumes part of a packet; a packet whose length is below the header's
/// or above the largest packet size, or a message of more than `maximumMessageBytes`, is a protocol error.
struct TDSMessageDecoder: ByteToMessageDecoder {
    typealias InboundOut = TDSMessage

    var maximumMessageBytes = 64 << 20
    private var pending: TDSMessage?

    init() {}

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try next(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// The next whole message in `buffer`, or nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws -> TDSMessage? {
        while true {
            guard buffer.readableBytes >= TDSMessage.headerLength,
                let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                let status = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self),
                let length = buffer.getInteger(at: buffer.readerIndex + 2, endianness: .big, as: UInt16.self)
            else { return nil }
            guard Int(length) >= TDSMessage.headerLength, Int(length) <= TDSMessage.packetSizes.upperBound else {
                throw TDSProtocolError("packet length \(length) is outside 8…32767")
            }
            guard buffer.readableBytes >= Int(length) else { return nil }
            buffer.moveReaderIndex(forwardBy: TDSMessage.headerLength)
            var body = buffer.readSlice(length: Int(length) - TDSMessage.headerLength)!
            let kind = TDSMessage.Kind(rawValue: type)
            if var message = pending {
                guard message.kind == kind else {
                    throw TDSProtocolError("a packet of type \(kind) arrived inside a message of type \(message.kind)")
                }
                guard message.payload.readableBytes + body.readableBytes <= maximumMessageBytes else {
                    throw TDSProtocolError("a message is larger than \(maximumMessageBytes) bytes")
                }
                message.payload.writeBuffer(&body)
                pending = message
            } else {
                pending = TDSMessage(kind: kind, payload: body)
            }
            if status & 0x01 != 0 {
                defer { pending = nil }
                return pending
            }
        }
    }
}
