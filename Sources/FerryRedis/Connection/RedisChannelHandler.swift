import FerryRESP
import NIOCore
import Synchronization

/// One write: encoded commands and the continuation waiting for their replies.
struct RedisOutboundRequest: Sendable {
    let id: UInt64
    let buffer: ByteBuffer
    let replies: Int
    let continuation: UnsafeContinuation<[RESPToken], any Error>
    /// Set when the waiting task is cancelled, possibly before the handler has seen the request.
    let cancellation: Cancellation
    /// Name for errors: the command, or `PIPELINE(n)`.
    let command: String
    let timeout: TimeAmount?

    final class Cancellation: Sendable {
        let isCancelled = Atomic(false)
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
        let continuation: UnsafeContinuation<[RESPToken], any Error>
        let command: String
        let deadline: NIODeadline?
    }

    private var queue = RedisRequestQueue<Pending>()
    /// One timer per connection, armed for the earliest deadline of what is pending (a timer per request
    /// would cost a heap insert and removal on every command).
    private var watchdog: Scheduled<Void>?
    private var watchdogDeadline: NIODeadline?
    private let processor: NIOSingleStepByteToMessageProcessor<RESPTokenDecoder>
    private var context: ChannelHandlerContext?
    private let address: String
    private let onPush: (@Sendable (RESPToken) -> Void)?
    /// See ``RedisConnectionConfiguration/idleTickHint``.
    private let idleTickHint: Bool

    init(address: String, limits: RESPFrameScanner.Limits, idleTickHint: Bool, onPush: (@Sendable (RESPToken) -> Void)?) {
        self.address = address
        self.processor = NIOSingleStepByteToMessageProcessor(RESPTokenDecoder(limits: limits))
        self.idleTickHint = idleTickHint
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
        submit(unwrapOutboundIn(data), context: context, writePromise: promise)
    }

    /// Takes a request straight from ``RedisConnection`` on the event loop, without a trip through the
    /// pipeline; fails it at once when the channel is already closed.
    func submit(_ request: RedisOutboundRequest) {
        guard let context else {
            request.continuation.resume(
                throwing: RedisError(.connectionClosed, "the connection is closed", command: request.command, address: address))
            return
        }
        submit(request, context: context, writePromise: nil)
        flush(context: context)
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        #if os(Linux)
            if idleTickHint, !queue.isEmpty { IdleTickHint.current?.give() }
        #endif
    }

    private func submit(_ request: RedisOutboundRequest, context: ChannelHandlerContext, writePromise promise: EventLoopPromise<Void>?) {
        if request.cancellation.isCancelled.load(ordering: .relaxed) {
            // Cancelled before it was written: nothing to fall out of step with.
            request.continuation.resume(
                throwing: RedisError(.cancelled, "the waiting task was cancelled", command: request.command, address: address))
            promise?.fail(CancellationError())
            return
        }
        let deadline = request.timeout.map { NIODeadline.now() + $0 }
        let pending = Pending(continuation: request.continuation, command: request.command, deadline: deadline)
        switch queue.enqueue(.init(id: request.id, expected: request.replies, context: pending)) {
        case .fail(let error):
            var error = error
            error.command = request.command
            request.continuation.resume(throwing: error)
            promise?.fail(error)
        case .write:
            if let deadline, watchdogDeadline.map({ deadline < $0 }) ?? true { armWatchdog(at: deadline, context: context) }
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
            // The watchdog stays armed: when it fires with nothing expired it re-arms for what is pending.
            request.context.continuation.resume(returning: request.replies)
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

    private func armWatchdog(at deadline: NIODeadline, context: ChannelHandlerContext) {
        watchdog?.cancel()
        watchdogDeadline = deadline
        watchdog = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.watchdogFired()
        }
    }

    /// Times out the connection when a pending request is past its deadline; otherwise re-arms for the next one.
    private func watchdogFired() {
        watchdog = nil
        watchdogDeadline = nil
        let now = NIODeadline.now()
        if let expired = queue.firstContext(where: { ($0.deadline ?? .distantFuture) <= now }) {
            fail(
                RedisError(.timeout, "no reply before the deadline; the connection was closed", command: expired.command, address: address),
                close: true)
            return
        }
        if let next = queue.earliest(\.deadline), let context { armWatchdog(at: next, context: context) }
    }

    private func fail(_ error: RedisError, close: Bool) {
        watchdog?.cancel()
        watchdog = nil
        watchdogDeadline = nil
        for request in queue.close(error) {
            var error = error
            if error.command == nil { error.command = request.context.command }
            request.context.continuation.resume(throwing: error)
        }
        if close, let context { context.close(promise: nil) }
    }
}
