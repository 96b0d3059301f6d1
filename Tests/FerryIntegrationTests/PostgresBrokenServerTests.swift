import FerryCore
import FerryPostgres
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Testing

/// A PostgreSQL server that logs a client in and then closes or goes silent costs an error, never a hang: the
/// session's own settings after the login run under the same guards as every statement (seen once in CI after a
/// PostgreSQL restart: a Redis sync consumer waited for ever, and its watchdog could not reach the connection).
@Suite("PostgreSQL session against broken servers")
struct PostgresBrokenServerTests {
    enum Breakage: Sendable {
        /// AuthenticationOk and ReadyForQuery, then the connection closes.
        case closeAfterLogin
        /// Logged in, then no answer to anything.
        case silentAfterLogin
    }

    /// A server that speaks the PostgreSQL startup handshake (refusing TLS, trusting any user) and then breaks.
    static func serve(_ breakage: Breakage) async throws -> (port: Int, server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try AcceptedConnections.wrap(channel) }
            }
        return (try #require(server.channel.localAddress?.port), server)
    }

    static func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ breakage: Breakage) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var requests = inbound.makeAsyncIterator()
            var pending = ByteBuffer()
            // The startup packet: length, then protocol 3.0 (or an SSLRequest first, answered 'N').
            while true {
                while pending.readableBytes < 4 || pending.readableBytes < Int(pending.getInteger(at: pending.readerIndex, as: UInt32.self) ?? 0) {
                    guard var more = try await requests.next() else { return }
                    pending.writeBuffer(&more)
                }
                let length = Int(pending.readInteger(as: UInt32.self)!)
                let code = pending.readInteger(as: UInt32.self)!
                pending.moveReaderIndex(forwardBy: length - 8)
                if code == 80_877_103 {
                    try await outbound.write(ByteBuffer(string: "N"))
                    continue
                }
                break
            }
            var reply = ByteBuffer()
            reply.writeInteger(UInt8(ascii: "R"))
            reply.writeInteger(UInt32(8))
            reply.writeInteger(UInt32(0))
            reply.writeInteger(UInt8(ascii: "K"))
            reply.writeInteger(UInt32(12))
            reply.writeInteger(UInt32(4242))
            reply.writeInteger(UInt32(7))
            reply.writeInteger(UInt8(ascii: "Z"))
            reply.writeInteger(UInt32(5))
            reply.writeInteger(UInt8(ascii: "I"))
            try await outbound.write(reply)
            if breakage == .closeAfterLogin { return }
            while try await requests.next() != nil {}
        }
    }

    static func endpoint(port: Int) -> PostgresEndpoint {
        var endpoint = PostgresEndpoint(host: "127.0.0.1", port: port, database: "ferry", user: "ferry", password: nil)
        endpoint.tls = .disable
        endpoint.connectTimeout = .seconds(2)
        return endpoint
    }

    @Test(arguments: [Breakage.closeAfterLogin, .silentAfterLogin])
    func aServerThatBreaksAfterTheLoginIsAnErrorNotAHang(_ breakage: Breakage) async throws {
        let (port, server) = try await Self.serve(breakage)
        let serving = Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    Task { try? await Self.handle(connection, breakage) }
                }
            }
        }
        let session = PostgresSession(endpoint: Self.endpoint(port: port), key: "postgres", logger: Logger(label: "test"))
        // What a watchdog does to a statement that waits too long: close the connection, in flight or connecting, and
        // again every second (on a loaded machine the first may come before the session began connecting).
        let watchdog = Task {
            while true {
                try await Task.sleep(for: .seconds(1))
                session.interrupt()
            }
        }
        let outcome = try await bounded("a statement on a server that \(breakage)", .seconds(20)) {
            do {
                try await session.withConnection { connection in
                    try await connection.query("SELECT 1", logger: Logger(label: "test"))
                }
                return "answered"
            } catch {
                return "\(error)"
            }
        }
        watchdog.cancel()
        #expect(outcome != "answered")
        #expect(outcome.contains("127.0.0.1:\(port)"), "\(outcome)")
        await session.close()
        // Late connections are let in before the listener closes (NIO traps on one dropped unserved).
        try? await Task.sleep(for: .seconds(1))
        try? await server.channel.setOption(ChannelOptions.autoRead, value: false)
        try? await server.channel.close()
        _ = await serving.result
    }
}
