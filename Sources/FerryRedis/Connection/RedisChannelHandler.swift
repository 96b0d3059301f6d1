import FerryRESP
import NIOCore
import Synchronization

/// One write: encoded commands and the promise for their replies.
struct RedisOutboundRequest: Sendable {
    let id: UInt64
    let buffer: ByteBuffer
    let replies: Int
    let promise: EventLoopPromise<[RESPToken]>
    /// Name for errors: the command, or `PIPELINE(n)`.
    let command: String
    let timeout: TimeAmount?
    /// Set by the handler when it takes the request; a write that fails before that (the channel already
    /// closed) must fail the promise itself.
    let ticket: Ticket

    final class Ticket: Sendable {
        let accepted = Atomic(false)
    }
}

/// Writes requests, decodes replies with a resumable RESP decoder, and matches them to requests in order
/// through ``RedisRequestQueue``. Any failure that could leave replies out of step closes the connection and
/// fails every pending request: a connection is never reused one reply off.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisOutboundRequest
    typealias OutboundOut = ByteBuffer

    struct Pending {
        let promise: EventLoopPromise<[RESPToken]>
        let command: String
        var timeout: Scheduled<Void>?
    }

    private var queue = RedisRequestQueue<Pending>()
    private let processor: NIOSingleStepByteToMessageProcessor<RESPTokenDecoder>
    private var context: ChannelHandlerContext?
    private let address: String
    private let onPush: (@Sendable (RESPToken) -> Void)?

    init(address: String, limits: RESPFrameScanner.Limits, onPush: (@Sendable (RESPToken) -> Void)?) {
        self.address = address
        self.processor = NIOSingleStepByteToMessageProcessor(RESPTokenDecoder(limits: limits))
        self.onPush = onPush
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(RedisError(.connectionClosed, "the connection was closed", address: address), close: false)
        self.context = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        request.ticket.accepted.store(true, ordering: .relaxed)
        var pending = Pending(promise: request.promise, command: request.command)
        switch queue.enqueue(.init(id: request.id, expected: request.replies, context: pending)) {
        case .fail(let error):
            var error = error
            error.command = request.command
            request.promise.fail(error)
            promise?.fail(error)
        case .write:
            if let timeout = request.timeout {
                let id = request.id
                let command = request.command
                pending.timeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                    self.timedOut(id: id, command: command)
                }
                queue.updateContext(id: id, pending)
            }
            context.write(wrapOutboundOut(request.buffer), promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try processor.process(buffer: buffer) { token in
                self.handle(token)
            }
        } catch {
            fail(RedisError(.protocolViolation, "\(error)", address: address, underlying: error), close: true)
        }
    }

    private func handle(_ token: RESPToken) {
        if token.identifier == .push {
            onPush?(token)
            return
        }
        switch queue.receive(token) {
        case .none:
            break
        case .succeed(let request):
            request.context.timeout?.cancel()
            request.context.promise.succeed(request.replies)
        case .closeOutOfStep(var error):
            error.address = address
            fail(error, close: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(RedisError(.connectionClosed, "the server closed the connection", address: address), close: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(RedisError(.connectionClosed, "connection error: \(error)", address: address, underlying: error), close: true)
    }

    /// Called on the event loop when the task waiting for `id` is cancelled.
    func cancel(id: UInt64) {
        guard queue.contains(id) else { return }
        fail(
            RedisError(.cancelled, "the waiting task was cancelled; the connection was closed so no reply is read out of step", address: address),
            close: true)
    }

    /// Closes the connection, failing pending requests with `error`.
    func close(with error: RedisError) {
        fail(error, close: true)
    }

    private func timedOut(id: UInt64, command: String) {
        guard queue.contains(id) else { return }
        fail(RedisError(.timeout, "no reply before the deadline; the connection was closed", command: command, address: address), close: true)
    }

    private func fail(_ error: RedisError, close: Bool) {
        for request in queue.close(error) {
            request.context.timeout?.cancel()
            var error = error
            if error.command == nil { error.command = request.context.command }
            request.context.promise.fail(error)
        }
        if close, let context { context.close(promise: nil) }
    }
}
