import NIOCore
import NIOSSL
import NIOTLS

/// Encryption as SQL Server forces it ([MS-TDS] 2.2.6.5, 3.3.5.1): the PRELOGIN answer says ENCRYPT_ON, then the TLS
/// handshake travels inside TDS packets of type PRELOGIN (0x12), and from its end every byte both ways is TLS (TDS
/// packets inside TLS records). The PRELOGIN is answered here, in the pipeline, so that its answer goes out in the clear
/// and the TLS handlers are in place before the client's first handshake bytes arrive; the session never sees it.
///
/// Encryption of the login alone (ENCRYPT_OFF, TLS dropped after LOGIN7) is not emulated: a server with a certificate
/// here always encrypts everything, as one whose "Force Encryption" is on.
final class TDSPreLoginEncryptionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let context: NIOSSLContext
    private var pending = ByteBuffer()
    private var preLogin = ByteBuffer()
    private var done = false

    init(context: NIOSSLContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !done else {
            context.fireChannelRead(wrapInboundOut(bytes))
            return
        }
        pending.writeBuffer(&bytes)
        // Whole PRELOGIN packets, up to the one marked end-of-message.
        while pending.readableBytes >= TDSMessage.headerLength {
            let start = pending.readerIndex
            let type = pending.getInteger(at: start, as: UInt8.self)!
            let status = pending.getInteger(at: start + 1, as: UInt8.self)!
            let length = Int(pending.getInteger(at: start + 2, endianness: .big, as: UInt16.self)!)
            guard type == TDSMessage.Kind.preLogin.rawValue, length >= TDSMessage.headerLength else {
                context.fireErrorCaught(TDSProtocolError("the first message is not a PRELOGIN"))
                context.close(promise: nil)
                return
            }
            guard pending.readableBytes >= length else { return }
            pending.moveReaderIndex(forwardBy: TDSMessage.headerLength)
            var body = pending.readSlice(length: length - TDSMessage.headerLength)!
            preLogin.writeBuffer(&body)
            if status & 0x01 != 0 {
                answer(context: context)
                return
            }
        }
    }

    private func answer(context: ChannelHandlerContext) {
        guard let request = try? TDSPreLogin(preLogin) else {
            context.fireErrorCaught(TDSProtocolError("a PRELOGIN the emulator cannot read"))
            context.close(promise: nil)
            return
        }
        done = true
        var packet = ByteBuffer()
        // A client without encryption (NOT_SUP) is told it is required (ENCRYPT_REQ), and the connection ends.
        let refused = request.encryption == 0x02
        let body = TDSPreLogin.response(encryption: refused ? 0x03 : 0x01)
        packet.writeInteger(TDSMessage.Kind.tabularResult.rawValue)
        packet.writeInteger(UInt8(0x01))
        packet.writeInteger(UInt16(body.readableBytes + TDSMessage.headerLength), endianness: .big)
        packet.writeBytes([0, 0, 1, 0])
        packet.writeImmutableBuffer(body)
        if refused {
            context.writeAndFlush(wrapOutboundOut(packet)).whenComplete { _ in context.close(promise: nil) }
            return
        }
        let framing = TDSHandshakeFraming()
        do {
            try context.pipeline.syncOperations.addHandlers(
                [framing, NIOSSLServerHandler(context: self.context), TDSHandshakeWatcher(framing: framing)], position: .after(self))
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(packet), promise: nil)
        if pending.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(pending)) }
        pending = ByteBuffer()
    }
}

/// Below the TLS handler: while the handshake runs, TLS bytes travel inside PRELOGIN packets (unwrapped inbound,
/// wrapped outbound); afterwards they pass as they are. A client's bytes are told apart by their first byte: a TDS
/// PRELOGIN packet (0x12) or a TLS record (0x14…0x17).
final class TDSHandshakeFraming: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Set once the handshake is complete: outbound TLS goes on the wire as it is.
    var handshakeDone = false
    private var inboundRaw = false
    private var pending = ByteBuffer()
    private var packetID: UInt8 = 1

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !inboundRaw else {
            context.fireChannelRead(wrapInboundOut(bytes))
            return
        }
        pending.writeBuffer(&bytes)
        while let first = pending.getInteger(at: pending.readerIndex, as: UInt8.self) {
            guard first == TDSMessage.Kind.preLogin.rawValue else {
                inboundRaw = true
                let rest = pending
                pending = ByteBuffer()
                context.fireChannelRead(wrapInboundOut(rest))
                return
            }
            guard pending.readableBytes >= TDSMessage.headerLength else { return }
            let length = Int(pending.getInteger(at: pending.readerIndex + 2, endianness: .big, as: UInt16.self)!)
            guard length >= TDSMessage.headerLength else {
                context.fireErrorCaught(TDSProtocolError("a handshake packet shorter than its header"))
                context.close(promise: nil)
                return
            }
            guard pending.readableBytes >= length else { return }
            pending.moveReaderIndex(forwardBy: TDSMessage.headerLength)
            let body = pending.readSlice(length: length - TDSMessage.headerLength)!
            context.fireChannelRead(wrapInboundOut(body))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !handshakeDone else {
            context.write(data, promise: promise)
            return
        }
        var bytes = unwrapOutboundIn(data)
        var out = ByteBuffer()
        let room = 4096 - TDSMessage.headerLength
        repeat {
            let chunk = bytes.readSlice(length: min(room, bytes.readableBytes))!
            out.writeInteger(TDSMessage.Kind.preLogin.rawValue)
            out.writeInteger(UInt8(bytes.readableBytes == 0 ? 0x01 : 0x00))
            out.writeInteger(UInt16(chunk.readableBytes + TDSMessage.headerLength), endianness: .big)
            out.writeBytes([0, 0, packetID, 0])
            out.writeImmutableBuffer(chunk)
            packetID &+= 1
        } while bytes.readableBytes > 0
        context.write(wrapOutboundOut(out), promise: promise)
    }
}

/// Above the TLS handler: tells the framing when the handshake is complete.
final class TDSHandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let framing: TDSHandshakeFraming

    init(framing: TDSHandshakeFraming) { self.framing = framing }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { framing.handshakeDone = true }
        context.fireUserInboundEventTriggered(event)
    }
}
