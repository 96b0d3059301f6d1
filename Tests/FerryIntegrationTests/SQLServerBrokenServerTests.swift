import FerryCore
import FerrySQLServer
import NIOCore
import NIOPosix
import TDSEmulator
import Testing

/// A server that breaks TDS costs an error, never a crash or a hang: closed at once, garbage, a packet that never
/// ends, silence, and a result cut in the middle by a proxy in front of the emulator.
@Suite("SQL Server client against broken servers", .sandbox)
struct SQLServerBrokenServerTests {
    enum Breakage: Sendable {
        case closeAtOnce, garbage, endlessPacket, silence
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

    /// A server on a free loopback port whose connections are plain byte streams, and its port.
    static func listen() async throws -> (server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, port: Int) {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try AcceptedConnections.wrap(channel) }
            }
        return (server, try #require(server.channel.localAddress?.port))
    }

    @Test(arguments: [Breakage.closeAtOnce, .garbage, .endlessPacket, .silence])
    func aBrokenServerIsAnErrorAtLogin(_ breakage: Breakage) async throws {
        let (server, port) = try await Self.listen()
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
        // A connection accepted while the listener closes is dropped unserved, which NIO traps on (seen once in CI
        // right after this test): connections still coming from the failed login are let in before closing.
        try? await Task.sleep(for: .seconds(1))
        try? await server.channel.setOption(ChannelOptions.autoRead, value: false)
        try? await server.channel.close()
        _ = await serving.result
    }

    /// Found by Fuzz/FuzzTDSReply: DB-Library sent `dbsetopt(DBTEXTSIZE)` as a hidden batch and spun for ever inside
    /// FreeTDS when a server answered it with rows. Ferry sends the setting as its own statement: rows in answer are
    /// read and the connection goes on.
    /// DB-Library's login timeout is process-wide: logins with different timeouts at once must each keep their own.
    /// Patient logins (6 s) and impatient ones (1 s) to a server that never answers, interleaved: no patient login
    /// gives up before its 6 s (one did after 2 s in a CI run, taking another test's timeout).
    @Test func loginsAtOnceKeepTheirOwnTimeouts() async throws {
        let (server, port) = try await Self.listen()
        let serving = Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    Task { try await connection.executeThenClose { inbound, _ in for try await _ in inbound {} } }
                }
            }
        }
        defer { server.channel.close(promise: nil) }
        let results = try await withThrowingTaskGroup(of: (patient: Bool, seconds: Double).self) { group in
            for index in 0..<6 {
                let patient = index % 2 == 0
                var endpoint = Self.endpoint(port: port)
                endpoint.connectTimeout = .seconds(patient ? 6 : 1)
                group.addTask {
                    let start = ContinuousClock.now
                    _ = try? await SQLServerConnection.connect(endpoint)
                    let elapsed = ContinuousClock.now - start
                    return (patient, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for result in results where result.patient { #expect(result.seconds >= 5.5, "a 6 s login gave up after \(result.seconds) s") }
        // As above: connections still coming are let in before the listener closes (NIO traps on one dropped unserved).
        try? await Task.sleep(for: .seconds(1))
        try? await server.channel.setOption(ChannelOptions.autoRead, value: false)
        try? await server.channel.close()
        _ = await serving.result
    }

    @Test func rowsInAnswerToTheSessionSettingAreNoHang() async throws {
        func bVarchar(_ text: String) -> [UInt8] { [UInt8(text.utf16.count)] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
        let preLogin: [UInt8] = [
            0, 0, 26, 0, 6, 1, 0, 32, 0, 1, 2, 0, 33, 0, 1, 3, 0, 34, 0, 0, 4, 0, 34, 0, 1, 0xFF, 13, 0, 0x13, 0x88, 0, 0, 2, 0, 0,
        ]
        let ack = [1, 0x74, 0, 0, 4] + bVarchar("Microsoft SQL Server") + [13, 0, 0x13, 0x88]
        let done: [UInt8] = [0xFD, 0, 0, 0xC1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let login = [0xAD, UInt8(ack.count), 0] + ack + done
        let rows: [UInt8] =
            [0x81, 1, 0, 0, 0, 0, 0, 1, 0, 0x26, 4] + bVarchar("x") + [0xD1, 4, 1, 0, 0, 0, 0xFD, 0x10, 0, 0xC1, 0, 1]
            + [UInt8](repeating: 0, count: 7)
        // Every answer is a result with rows, once logged in: the setting's, and the query's.
        let answers = [preLogin, login]
        let (server, port) = try await Self.listen()
        let serving = Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    Task {
                        try await connection.executeThenClose { inbound, outbound in
                            var pending = ByteBuffer()
                            var answered = 0
                            for try await var chunk in inbound {
                                pending.writeBuffer(&chunk)
                                // Whole packets; each one marked end-of-message ends a message, which gets the next answer.
                                while pending.readableBytes >= 8, let length = pending.getInteger(at: pending.readerIndex + 2, as: UInt16.self),
                                    length >= 8, pending.readableBytes >= Int(length)
                                {
                                    let last = pending.getInteger(at: pending.readerIndex + 1, as: UInt8.self)! & 0x01 != 0
                                    pending.moveReaderIndex(forwardBy: Int(length))
                                    guard last else { continue }
                                    let payload = answered < answers.count ? answers[answered] : rows
                                    answered += 1
                                    let size = UInt16(payload.count + 8)
                                    try await outbound.write(
                                        ByteBuffer(bytes: [0x04, 0x01, UInt8(size >> 8), UInt8(size & 0xFF), 0, 0, 1, 0] + payload))
                                }
                            }
                        }
                    }
                }
            }
        }
        defer { server.channel.close(promise: nil) }
        // A login time generous enough for a loaded machine (this test expects the login to succeed).
        var patient = Self.endpoint(port: port)
        patient.connectTimeout = .seconds(15)
        let endpoint = patient
        let outcome = try await bounded("a login whose session setting is answered with rows", .seconds(40)) {
            do {
                let connection = try await SQLServerConnection.connect(endpoint)
                let read = try await connection.rows("SELECT 1")
                await connection.close()
                return "read \(read)"
            } catch let error as FerryError {
                return "\(error.code): \(error.message)"
            }
        }
        #expect(outcome == "read [[Optional(\"1\")]]", "\(outcome)")
        try? await Task.sleep(for: .seconds(1))
        try? await server.channel.setOption(ChannelOptions.autoRead, value: false)
        try? await server.channel.close()
        _ = await serving.result
    }

    @Test func aResultCutInTheMiddleIsAnErrorAndTheNextConnectionWorks() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let proxy = try await CuttingProxy.start(upstream: emulator.port, cutAfter: 60_000)
            var options = SQLServerOptions()
            options.queryTimeoutSeconds = 5
            // The login itself goes through whole: 15 s for it (2 s timed out once on CI's loaded machine).
            var endpoint = Self.endpoint(port: proxy.port)
            endpoint.connectTimeout = .seconds(15)
            let connection = try await SQLServerConnection.connect(endpoint, options: options)
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
        let (server, _) = try await SQLServerBrokenServerTests.listen()
        let serving = Task {
            try await server.executeThenClose { connections in
                for try await client in connections {
                    Task {
                        let target = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                            .connect(host: "127.0.0.1", port: upstream) { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    try AcceptedConnections.wrap(channel)
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
        try? await channel.setOption(ChannelOptions.autoRead, value: false)
        try? await channel.close()
        _ = await serving.result
    }
}
