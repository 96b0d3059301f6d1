package import FerryCore
package import FerryRESP
package import Logging
package import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One connection to a Redis server: pipelined, in-order, with a deadline per request.
///
/// A timed-out or cancelled request closes the connection and fails everything pending on it, so no later
/// command can read an earlier command's reply. Use ``RedisClient`` for pooling and reconnection.
package final class RedisConnection: Sendable {
    @usableFromInline let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>
    package let configuration: RedisConnectionConfiguration
    private let nextRequestID = Atomic<UInt64>(1)
    /// Set as soon as the connection must not be used again (cancelled, timed out, closed), before the channel
    /// has finished closing, so a pool never hands it out.
    private let isClosing = Atomic(false)
    private let handshake: Mutex<HandshakeInfo>

    /// What the server told us while greeting.
    package struct HandshakeInfo: Sendable {
        /// 3 when the server speaks RESP3, else 2.
        package var protocolVersion: Int = 2
        /// The server's version, e.g. `7.0.15`, when it said.
        package var serverVersion: String?
        /// This connection's `CLIENT ID`, when known.
        package var clientID: Int64?
    }

    package var info: HandshakeInfo { handshake.withLock { $0 } }
    /// Runs tasks on this connection's event loop; see ``EventLoopTaskExecutor``.
    package let taskExecutor: EventLoopTaskExecutor
    /// `host:port`, computed once: replies on the hot path name it in errors.
    package let address: String
    package var isActive: Bool { channel.isActive && !isClosing.load(ordering: .relaxed) }
    /// Completes when the channel closes.
    package var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    private init(channel: any Channel, handler: NIOLoopBound<RedisChannelHandler>, configuration: RedisConnectionConfiguration) {
        self.channel = channel
        self.handler = handler
        self.configuration = configuration
        self.taskExecutor = EventLoopTaskExecutor(eventLoop: channel.eventLoop)
        self.address = configuration.address
        self.handshake = Mutex(HandshakeInfo())
    }

    /// Connects, greets (`HELLO`/`AUTH`/`SETNAME`/`SELECT` in one write) and returns a ready connection.
    package static func connect(
        _ configuration: RedisConnectionConfiguration,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger,
        onPush: (@Sendable (RESPToken) -> Void)? = nil
    ) async throws(RedisError) -> RedisConnection {
        let address = configuration.address
        let sslContext: NIOSSLContext?
        do {
            sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            throw RedisError(.tls, "cannot set up TLS: \(error)", address: address, underlying: error)
        }
        let bootstrap = ClientBootstrap(group: eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(Int64(configuration.connectTimeout.seconds * 1e9)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        let tlsHandler = try NIOSSLClientHandler(
                            context: sslContext, serverHostname: configuration.host.isIPAddress ? nil : configuration.host)
                        try sync.addHandler(tlsHandler)
                    }
                    try sync.addHandler(
                        RedisChannelHandler(
                            address: address, limits: configuration.decoderLimits, idleTickHint: configuration.idleTickHint, onPush: onPush))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            throw RedisError(.unreachable, "cannot connect: \(Self.describeConnectError(error))", address: address, underlying: error)
        }
        let handler: NIOLoopBound<RedisChannelHandler>
        do {
            handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self), eventLoop: channel.eventLoop)
            }.get()
        } catch {
            channel.close(promise: nil)
            throw RedisError(.connectionClosed, "the connection closed while it was set up", address: address, underlying: error)
        }
        let connection = RedisConnection(channel: channel, handler: handler, configuration: configuration)
        do {
            try await connection.greet(logger: logger)
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// Sends encoded commands in one write and returns their `replies` raw replies, in order.
    package func execute(_ buffer: ByteBuffer, replies: Int, command: String, timeout: Duration?) async throws(RedisError) -> [RESPToken] {
        guard replies > 0 else { return [] }
        let id = nextRequestID.wrappingAdd(1, ordering: .relaxed).oldValue
        let cancellation = RedisOutboundRequest.Cancellation()
        let handler = self.handler
        let eventLoop = channel.eventLoop
        let deadline: TimeAmount? = timeout.map { .nanoseconds(Int64($0.seconds * 1e9)) }
        do {
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { continuation in
                    let request = RedisOutboundRequest(
                        id: id, buffer: buffer, replies: replies, continuation: continuation, cancellation: cancellation,
                        command: command, timeout: deadline
                    )
                    // On the connection's own loop (see `taskExecutor`) the write happens right here.
                    if eventLoop.inEventLoop {
                        handler.value.submit(request)
                    } else {
                        eventLoop.execute { handler.value.submit(request) }
                    }
                }
            } onCancel: {
                cancellation.isCancelled.store(true, ordering: .relaxed)
                self.isClosing.store(true, ordering: .relaxed)
                eventLoop.execute { handler.value.cancel(id: id) }
            }
        } catch let error as RedisError {
            isClosing.store(true, ordering: .relaxed)
            throw error
        } catch {
            isClosing.store(true, ordering: .relaxed)
            throw RedisError(.connectionClosed, "\(error)", command: command, address: address, underlying: error)
        }
    }

    /// Sends one command and reads its reply; an error reply is thrown as a ``RedisError``.
    @inlinable
    @discardableResult
    package func send<Command: RedisCommand>(_ command: Command) async throws(RedisError) -> Command.Response {
        var encoder = RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: 64))
        command.encode(into: &encoder)
        let tokens = try await execute(encoder.buffer, replies: 1, command: command.name, timeout: deadline(for: command.blockingTimeout))
        return try command.response(from: tokens[0], address: address).get()
    }

    /// Sends many commands of one type in one write; each gets its own result, so one error reply fails only
    /// its own command.
    @inlinable
    package func pipeline<Command: RedisCommand>(_ commands: [Command]) async throws(RedisError) -> [Result<Command.Response, RedisError>] {
        guard !commands.isEmpty else { return [] }
        var encoder = RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: commands.count * 64))
        var blocking: Duration?
        // Indexing borrows each command; `for … in` would copy it.
        for index in commands.indices {
            commands[index].encode(into: &encoder)
            if let timeout = commands[index].blockingTimeout { blocking = Self.longest(blocking, timeout) }
        }
        let tokens = try await execute(
            encoder.buffer, replies: commands.count, command: "PIPELINE", timeout: deadline(for: blocking))
        var results: [Result<Command.Response, RedisError>] = []
        results.reserveCapacity(commands.count)
        for index in commands.indices { results.append(commands[index].response(from: tokens[index], address: address)) }
        return results
    }

    /// Sends commands of different types in one write and returns a result per command.
    @inlinable
    package func pipeline<each Command: RedisCommand>(
        _ commands: repeat each Command
    ) async throws(RedisError) -> (repeat Result<(each Command).Response, RedisError>) {
        var encoder = RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: 256))
        var count = 0
        var blocking: Duration?
        for command in repeat each commands {
            command.encode(into: &encoder)
            count += 1
            blocking = Self.longest(blocking, command.blockingTimeout)
        }
        let tokens = try await execute(encoder.buffer, replies: count, command: "PIPELINE", timeout: deadline(for: blocking))
        var index = 0
        func next<C: RedisCommand>(_ command: C) -> Result<C.Response, RedisError> {
            defer { index += 1 }
            return command.response(from: tokens[index], address: address)
        }
        return (repeat next(each commands))
    }

    /// Runs commands atomically in `MULTI`/`EXEC`, in one write. Throws when the transaction is discarded
    /// (a command failed to queue, or `EXECABORT`); otherwise returns each command's own result.
    package func transaction<each Command: RedisCommand>(
        _ commands: repeat each Command
    ) async throws(RedisError) -> (repeat Result<(each Command).Response, RedisError>) {
        var batch = RedisBatch(encoder: RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: 256)))
        for command in repeat each commands { batch.add(command) }
        let replies = try await exec(batch)
        var index = 0
        func next<C: RedisCommand>(_ command: C) -> Result<C.Response, RedisError> {
            defer { index += 1 }
            return command.response(from: replies[index], address: address)
        }
        return (repeat next(each commands))
    }

    /// Runs a variable list of commands atomically in `MULTI`/`EXEC`, in one write, and fails when any of them
    /// fails: for writes that must all happen or none (a queue batch and its checkpoint).
    @discardableResult
    package func transaction(_ build: (inout RedisBatch) -> Void) async throws(RedisError) -> [RESPToken] {
        var batch = RedisBatch(encoder: RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: 1024)))
        build(&batch)
        let replies = try await exec(batch)
        for (name, reply) in zip(batch.names, replies) {
            switch reply.value {
            case .simpleError(let message), .bulkError(let message):
                throw RedisError.server(reply: String(buffer: message), command: name, address: address)
            default: continue
            }
        }
        return replies
    }

    /// Sends `MULTI`, the batch and `EXEC` in one write; returns EXEC's replies.
    private func exec(_ batch: RedisBatch) async throws(RedisError) -> [RESPToken] {
        var encoder = RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: batch.encoder.buffer.readableBytes + 32))
        encoder.encodeArray("MULTI")
        var body = batch.encoder.buffer
        encoder.buffer.writeBuffer(&body)
        encoder.encodeArray("EXEC")
        let count = batch.count
        let tokens = try await execute(encoder.buffer, replies: count + 2, command: "MULTI/EXEC", timeout: deadline(for: nil))
        let exec = tokens[count + 1]
        switch exec.value {
        case .simpleError(let message), .bulkError(let message):
            // EXECABORT: find the command that failed to queue for a precise message.
            let queued = tokens[1...count].first { if case .simpleError = $0.value { return true } else { return false } }
            let reason = queued.map { String(describing: $0) } ?? String(buffer: message)
            throw RedisError.server(reply: reason.replacingPrefix("(error) "), command: "EXEC", address: address)
        case .null:
            throw RedisError(
                .server, "the transaction was aborted because a watched key changed", prefix: "EXECABORT", command: "EXEC", address: address)
        default:
            break
        }
        do {
            return try exec.elements()
        } catch {
            throw RedisError(.unexpectedReply, error.description, command: "EXEC", address: address)
        }
    }

    /// Starts closing without waiting for the channel to finish.
    func closeWithoutWaiting() {
        isClosing.store(true, ordering: .relaxed)
        let handler = self.handler
        let error = RedisError(.connectionClosed, "the connection was closed by the client", address: address)
        channel.eventLoop.execute { handler.value.close(with: error) }
    }

    /// Closes the connection, failing anything still pending.
    package func close() async {
        isClosing.store(true, ordering: .relaxed)
        let handler = self.handler
        let error = RedisError(.connectionClosed, "the connection was closed by the client", address: address)
        channel.eventLoop.execute { handler.value.close(with: error) }
        try? await channel.closeFuture.get()
    }

    @usableFromInline
    func deadline(for blocking: Duration?) -> Duration? {
        guard let blocking else { return configuration.commandTimeout }
        if blocking == .zero { return nil }
        return blocking + configuration.blockingMargin
    }

    @usableFromInline
    static func longest(_ a: Duration?, _ b: Duration?) -> Duration? {
        switch (a, b) {
        case (nil, let x), (let x, nil): return x
        case (.some(let x), .some(let y)): return (x == .zero || y == .zero) ? .zero : max(x, y)
        }
    }

    func updateHandshake(_ body: (inout HandshakeInfo) -> Void) {
        handshake.withLock { body(&$0) }
    }

    private static func describeConnectError(_ error: any Error) -> String {
        NetworkErrorText.describe(error)
    }
}

extension String {
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }

    func replacingPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
