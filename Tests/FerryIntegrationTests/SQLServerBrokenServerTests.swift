import FerryCore
import FerrySQLServer
import NIOCore
import NIOPosix
import Synchronization
import TDSEmulator
import Testing

/// A server that breaks TDS costs an error, never a crash or a hang: closed at once, garbage, a packet that never
/// ends, silence, and a result cut in the middle by a proxy in front of the emulator.
@Suite("SQL Server client against broken servers", .sandbox)
struct SQLServerBrokenServerTests {
    enum Breakage: Sendable {
        case closeAtOnce, garbage, endlessPacket, silence
    }

    struct Hung: Error {}

    /// Runs `body` and fails the test if it takes longer than `limit` (the call's own timeouts must end it first).
    /// A body that hangs is left behind, not awaited: a task group would wait for it.
    func bounded<T: Sendable>(_ what: String, _ limit: Duration = .seconds(30), _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let resumed = Mutex(false)
        do {
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let finish: @Sendable (Result<T, any Error>) -> Void = { result in
                    if resumed.withLock({ done in
                        defer { done = true }
                        return !done
                    }) {
                        continuation.resume(with: result)
                    }
                }
                Task {
                    do { finish(.success(try await body())) } catch { finish(.failure(error)) }
                }
                Task {
                    try? await Task.sleep(for: limit)
                    finish(.failure(Hung()))
                }
            }
        } catch is Hung {
            Issue.record("\(what) did not end within \(limit): a hang")
            throw CancellationError()
        }
    }

    static func endpoint(port: Int) -> SQLServerEndpoint {
        var endpoint = SQLServerEndpoint()
        endpoint.host = "127.0.0.1"
        endpoint.port = port
        endpoint.database = "ventas"
        endpoint.user = "ferry"
        endpoint.password = Secret("s3cret")
        endpoint.connectTimeout = .seconds(2)
        return endpoint
    }

    @Test(arguments: [Breakage.closeAtOnce, .garbage, .endlessPacket, .silence])
    func aBrokenServerIsAnErrorAtLogin(_ breakage: Breakage) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let port = try #require(server.channel.localAddress?.port)
        let serving = Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    Task {
                        try await connection.executeThenClose { inbound, outbound in
                            if breakage == .closeAtOnce { return }
                            var requests = inbound.makeAsyncIterator()
                            _ = try await requests.next()
                            switch breakage {
                            case .garbage:
                                var random = SystemRandomNumberGenerator()
                                try await outbound.write(ByteBuffer(bytes: (0..<256).map { _ in UInt8.random(in: 0...255, using: &random) }))
                            case .endlessPacket:
                                // A PRELOGIN response packet that says 4,096 bytes and sends ten.
                                try await outbound.write(ByteBuffer(bytes: [0x04, 0x01, 0x10, 0x00, 0, 0, 1, 0] + [UInt8](repeating: 0, count: 10)))
                            default: break
                            }
                            while try await requests.next() != nil {}
                        }
                    }
                }
            }
        }
        // Closing the listener ends the accept loop once every accepted connection was handed out; cancelling the
        // loop instead would drop connections still queued, and NIO traps on an async channel dropped unused.
        defer { server.channel.close(promise: nil) }
        let endpoint = Self.endpoint(port: port)
        let outcome = try await bounded("a login to a server that \(breakage)") {
            do {
                _ = try await SQLServerConnection.connect(endpoint)
                return "connected"
            } catch let error as FerryError {
                return "\(error.code): \(error.message)"
            }
        }
        #expect(!outcome.hasPrefix("connected"), "\(outcome)")
        #expect(outcome.contains("127.0.0.1:\(port)"), "\(outcome)")
        try? await server.channel.close()
        _ = await serving.result
    }

    @Test func aResultCutInTheMiddleIsAnErrorAndTheNextConnectionWorks() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let proxy = try await CuttingProxy.start(upstream: emulator.port, cutAfter: 60_000)
            var options = SQLServerOptions()
            options.queryTimeoutSeconds = 5
            let connection = try await SQLServerConnection.connect(Self.endpoint(port: proxy.port), options: options)
            let outcome = try await bounded("a query whose answer is cut") {
                do {
                    let read = try await connection.query("SELECT g, repeat('x', 50) FROM generate_series(1, 100000) AS g") { _ in }
                    return "read \(read.rows) rows"
                } catch let error as FerryError {
                    return "\(error.code): \(error.message)"
                }
            }
            #expect(!outcome.hasPrefix("read"), "\(outcome)")
            await connection.close()
            let fresh = try await SQLServerConnection.connect(SQLServerClientTests.endpoint(TDSEmulatorHandle(emulator)))
            #expect(try await fresh.rows("SELECT 1") == [["1"]])
            await fresh.close()
            await proxy.close()
        }
    }
}

/// Forwards TCP to `upstream` and closes both sides once `cutAfter` bytes came back from it: a server that dies in
/// the middle of an answer.
final class CuttingProxy: Sendable {
    let port: Int
    private let serving: Task<Void, any Error>
    private let channel: any Channel

    private init(port: Int, serving: Task<Void, any Error>, channel: any Channel) {
        self.port = port
        self.serving = serving
        self.channel = channel
    }

    static func start(upstream: Int, cutAfter limit: Int) async throws -> CuttingProxy {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let serving = Task {
            try await server.executeThenClose { connections in
                for try await client in connections {
                    Task {
                        let target = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                            .connect(host: "127.0.0.1", port: upstream) { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                                }
                            }
                        try await client.executeThenClose { clientIn, clientOut in
                            try await target.executeThenClose { targetIn, targetOut in
                                try await withThrowingTaskGroup(of: Void.self) { group in
                                    group.addTask { for try await chunk in clientIn { try await targetOut.write(chunk) } }
                                    group.addTask {
                                        var sent = 0
                                        for try await chunk in targetIn {
                                            let room = limit - sent
                                            if chunk.readableBytes >= room {
                                                try await clientOut.write(chunk.getSlice(at: chunk.readerIndex, length: room)!)
                                                return
                                            }
                                            sent += chunk.readableBytes
                                            try await clientOut.write(chunk)
                                        }
                                    }
                                    // The first side to finish (the cut) ends both connections.
                                    try await group.next()
                                    group.cancelAll()
                                }
                            }
                        }
                    }
                }
            }
        }
        return CuttingProxy(port: server.channel.localAddress!.port!, serving: serving, channel: server.channel)
    }

    /// Stops listening; the accept loop ends once every accepted connection was handed out (see the test above).
    func close() async {
        try? await channel.close()
        _ = await serving.result
    }
}
