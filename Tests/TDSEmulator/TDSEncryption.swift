import NIOCore
import NIOSSL
import NIOTLS

/// Encryption as SQL Server forces it ([MS-TDS] 2.2.6.5, 3.3.5.1): the PRELOGIN answer says ENCRYPT_ON, then the TLS
/// handshake travels inside TDS packets of type PRELOGIN (0x12), and from its end every byte both ways is TLS (TDS
/// packets inside TLS records). The PRELOGIN is answered here, in the pipeline, so that its answer goes out in the clear
/// and the TLS handlers are in place before the client's first handshake bytes arrive; the session never sees it.
///
/// Not `forced` (a server whose "Force Encryption" is off): a client that says ENCRYPT_OFF is answered ENCRYPT_OFF and
/// only its login travels in TLS; after the LOGIN7 message the TLS layer is left as it is, unused (FreeTDS and
/// SQL Server drop it without a close_notify), and both sides speak plain TDS. A client that says ENCRYPT_ON gets the
/// whole session in TLS; one that says ENCRYPT_NOT_SUP, none.
final class TDSPreLoginEncryptionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let context: NIOSSLContext
    private let forced: Bool
    private var pending = ByteBuffer()
    private var preLogin = ByteBuffer()
    private var done = false

    init(context: NIOSSLContext, forced: Bool = true) {
        self.context = context
        self.forced = forced
    }

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
        // Forced: a client without encryption (NOT_SUP) is told it is required (ENCRYPT_REQ), and the connection ends.
        // Offered: such a client goes on in the clear; one that says OFF gets its login encrypted, one that says ON
        // (or REQ) the whole session.
        let refused = forced && request.encryption == 0x02
        let clear = !forced && request.encryption == 0x02
        let loginOnly = !forced && request.encryption == 0x00
        let answer: UInt8 = refused ? 0x03 : clear ? 0x02 : loginOnly ? 0x00 : 0x01
        let body = TDSPreLogin.response(encryption: answer)
        packet.writeInteger(TDSMessage.Kind.tabularResult.rawValue)
        packet.writeInteger(UInt8(0x01))
        packet.writeInteger(UInt16(body.readableBytes + TDSMessage.headerLength), endianness: .big)
        packet.writeBytes([0, 0, 1, 0])
        packet.writeImmutableBuffer(body)
        if refused {
            context.writeAndFlush(wrapOutboundOut(packet)).whenComplete { _ in context.close(promise: nil) }
            return
        }
        if clear {
            context.writeAndFlush(wrapOutboundOut(packet), promise: nil)
            if pending.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(pending)) }
            pending = ByteBuffer()
            return
        }
        let framing = TDSHandshakeFraming()
        do {
            try context.pipeline.syncOperations.addHandlers(
                [framing, NIOSSLServerHandler(context: self.context), TDSHandshakeWatcher(framing: framing, loginOnly: loginOnly)],
                position: .after(self))
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
    /// Set after an encrypted login (login-only encryption): the TLS handler is passed by both ways — inbound bytes and
    /// read-completes go straight to the handler above it, and what it still writes itself (a close_notify) is dropped.
    var bypassedBy: ChannelHandlerContext?
    private var inboundRaw = false
    private var pending = ByteBuffer()
    private var packetID: UInt8 = 1

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if let above = bypassedBy {
            above.fireChannelRead(wrapInboundOut(bytes))
            return
        }
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

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let above = bypassedBy else {
            context.fireChannelReadComplete()
            return
        }
        above.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if bypassedBy != nil {
            promise?.succeed()
            return
        }
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

/// Above the TLS handler: tells the framing when the handshake is complete. With `loginOnly`, it holds the decrypted
/// bytes until the client's first message (LOGIN7) is whole, passes it on and from then on takes the TLS handler out
/// of the way: inbound through the framing's bypass, outbound by writing below the TLS handler itself.
final class TDSHandshakeWatcher: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let framing: TDSHandshakeFraming
    private let loginOnly: Bool
    private var login = ByteBuffer()
    /// Below the TLS handler, once the login is in: where this handler writes.
    private var below: ChannelHandlerContext?

    init(framing: TDSHandshakeFraming, loginOnly: Bool = false) {
        self.framing = framing
        self.loginOnly = loginOnly
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { framing.handshakeDone = true }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard loginOnly, below == nil else {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        login.writeBuffer(&bytes)
        // Whole packets, up to the one that ends the message.
        var offset = login.readerIndex
        while let length = login.getInteger(at: offset + 2, endianness: .big, as: UInt16.self),
            let status = login.getInteger(at: offset + 1, as: UInt8.self),
            Int(length) >= TDSMessage.headerLength, login.writerIndex - offset >= Int(length)
        {
            offset += Int(length)
            guard status & 0x01 != 0 else { continue }
            guard let framingContext = try? context.pipeline.syncOperations.context(handler: framing) else {
                context.close(promise: nil)
                return
            }
            below = framingContext
            framing.bypassedBy = context
            let whole = login
            login = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(whole))
            return
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let below else {
            context.write(data, promise: promise)
            return
        }
        below.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        guard let below else {
            context.flush()
            return
        }
        below.flush()
    }

    func read(context: ChannelHandlerContext) {
        guard let below else {
            context.read()
            return
        }
        below.read()
    }
}
