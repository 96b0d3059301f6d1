import Crypto
package import FerryCore
import Foundation
package import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One `COPY (…) TO STDOUT (FORMAT binary)` on a connection of its own, speaking PostgreSQL's protocol directly:
/// postgres-nio has no COPY TO, and its per-row work (an async step and a cell per value) costs more than the Parquet
/// encoding of the row. Here the server's bytes arrive in large reads and every CopyData message in a read is handed
/// to `consume` synchronously.
///
/// It connects like Ferry's other PostgreSQL clients (`tls: disable | prefer | require`, without verifying the
/// certificate, as libpq's modes of those names), logs in with trust, password, md5 or SCRAM-SHA-256, and reports the
/// server's errors with their SQLSTATE. The password is never logged nor put in an error.
package enum PostgresCopyOut {
    /// Runs `sql` (a `COPY … TO STDOUT`) and passes each CopyData payload to `consume`.
    package static func run(
        _ sql: String, endpoint: PostgresEndpoint, logger: Logger, consume: (UnsafeRawBufferPointer) throws(FerryError) -> Void
    ) async throws(FerryError) {
        let address = "\(endpoint.host):\(endpoint.port)"
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(Int64(max(1, endpoint.connectTimeout.components.seconds))))
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw FerryError(.unreachable, "cannot connect to PostgreSQL at \(address): \(error)", fix: "check postgres.host and postgres.port")
        }
        var failure: FerryError?
        do {
            try await channel.executeThenClose { inbound, outbound in
                var session = WireSession(endpoint: endpoint, inbound: inbound.makeAsyncIterator(), outbound: outbound, channel: channel.channel)
                do {
                    try await session.start()
                    try await session.copyOut(sql, consume: consume)
                    try? await session.send(WireMessage.terminate())
                } catch let error as FerryError {
                    failure = error
                }
            }
        } catch {
            if failure == nil { failure = FerryError(.server, "PostgreSQL at \(address): \(error)") }
        }
        if let failure { throw failure }
    }
}

/// The frontend messages sent.
enum WireMessage {
    static func startup(user: String, database: String) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(Int32(196_608))
        for (key, value) in [("user", user), ("database", database), ("application_name", "ferry extract"), ("client_encoding", "UTF8")] {
            body.writeString(key)
            body.writeInteger(UInt8(0))
            body.writeString(value)
            body.writeInteger(UInt8(0))
        }
        body.writeInteger(UInt8(0))
        var message = ByteBuffer()
        message.writeInteger(Int32(body.readableBytes + 4))
        message.writeImmutableBuffer(body)
        return message
    }

    static func sslRequest() -> ByteBuffer {
        var message = ByteBuffer()
        message.writeInteger(Int32(8))
        message.writeInteger(Int32(80_877_103))
        return message
    }

    static func typed(_ type: Character, _ body: ByteBuffer) -> ByteBuffer {
        var message = ByteBuffer()
        message.writeInteger(type.asciiValue ?? 0)
        message.writeInteger(Int32(body.readableBytes + 4))
        message.writeImmutableBuffer(body)
        return message
    }

    static func query(_ sql: String) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeString(sql)
        body.writeInteger(UInt8(0))
        return typed("Q", body)
    }

    static func password(_ text: String) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeString(text)
        body.writeInteger(UInt8(0))
        return typed("p", body)
    }

    static func saslInitial(_ mechanism: String, _ payload: [UInt8]) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeString(mechanism)
        body.writeInteger(UInt8(0))
        body.writeInteger(Int32(payload.count))
        body.writeBytes(payload)
        return typed("p", body)
    }

    static func saslResponse(_ payload: [UInt8]) -> ByteBuffer {
        typed("p", ByteBuffer(bytes: payload))
    }

    static func terminate() -> ByteBuffer { typed("X", ByteBuffer()) }
}

/// A connection's conversation: reading messages from a carry buffer, the login, the COPY.
struct WireSession {
    let endpoint: PostgresEndpoint
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let channel: any Channel
    var buffer = ByteBuffer()

    var address: String { "\(endpoint.host):\(endpoint.port)" }

    func send(_ message: ByteBuffer) async throws(FerryError) {
        do {
            try await outbound.write(message)
        } catch {
            throw FerryError(.closed, "PostgreSQL at \(address) closed the connection: \(error)")
        }
    }

    /// More bytes from the server into `buffer`.
    mutating func fill() async throws(FerryError) {
        let more: ByteBuffer?
        do {
            more = try await inbound.next()
        } catch {
            throw FerryError(.closed, "PostgreSQL at \(address) closed the connection: \(error)")
        }
        guard var more else { throw FerryError(.closed, "PostgreSQL at \(address) closed the connection") }
        if buffer.readableBytes == 0 {
            buffer = more
        } else {
            buffer.discardReadBytes()
            buffer.writeBuffer(&more)
        }
    }

    /// The next whole message, if `buffer` holds one: its type and body.
    mutating func nextMessage() throws(FerryError) -> (type: UInt8, body: ByteBuffer)? {
        guard buffer.readableBytes >= 5, let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: Int32.self)
        else { return nil }
        guard length >= 4, length <= 1 << 30 else {
            throw FerryError(.protocolViolation, "PostgreSQL at \(address) sent a message of \(length) bytes")
        }
        guard buffer.readableBytes >= 1 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        let body = buffer.readSlice(length: Int(length) - 4) ?? ByteBuffer()
        return (type, body)
    }

    /// Waits for the next message.
    mutating func message() async throws(FerryError) -> (type: UInt8, body: ByteBuffer) {
        while true {
            if let message = try nextMessage() { return message }
            try await fill()
        }
    }

    /// TLS as configured, the startup message, the login, and the wait for ReadyForQuery.
    mutating func start() async throws(FerryError) {
        if endpoint.tls != .disable {
            try await send(WireMessage.sslRequest())
            while buffer.readableBytes < 1 { try await fill() }
            let answer = buffer.readInteger(as: UInt8.self)
            if answer == UInt8(ascii: "S") {
                do {
                    var configuration = TLSConfiguration.makeClientConfiguration()
                    configuration.certificateVerification = .none
                    let context = try NIOSSLContext(configuration: configuration)
                    let channel = self.channel
                    try await channel.eventLoop.submit {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil), position: .first)
                    }.get()
                } catch {
                    throw FerryError(
                        .configuration, "postgres.tls: cannot set up TLS with \(address): \(error)",
                        fix: "set `tls: disable` or check the server's certificate")
                }
            } else if endpoint.tls == .require {
                throw FerryError(
                    .configuration, "PostgreSQL at \(address) does not offer TLS and postgres.tls is require",
                    fix: "enable ssl on the server, or set `tls: prefer`")
            }
        }
        try await send(WireMessage.startup(user: endpoint.user, database: endpoint.database))
        var scram: SCRAMClient?
        while true {
            var (type, body) = try await message()
            switch type {
            case UInt8(ascii: "R"):
                let code = body.readInteger(as: Int32.self) ?? -1
                switch code {
                case 0: break
                case 3: try await send(WireMessage.password(try password()))
                case 5:
                    let salt = body.readBytes(length: 4) ?? []
                    try await send(WireMessage.password(Self.md5Password(user: endpoint.user, password: try password(), salt: salt)))
                case 10:
                    var mechanisms: [String] = []
                    while let name = body.readNullTerminatedString(), !name.isEmpty { mechanisms.append(name) }
                    guard mechanisms.contains("SCRAM-SHA-256") else {
                        throw FerryError(
                            .authentication,
                            "PostgreSQL at \(address) asks for \(mechanisms.joined(separator: ", ")), which ferry extract's COPY reader does not speak"
                        )
                    }
                    let client = SCRAMClient(password: try password())
                    scram = client
                    try await send(WireMessage.saslInitial("SCRAM-SHA-256", client.firstMessage))
                case 11:
                    guard var client = scram else {
                        throw FerryError(.protocolViolation, "PostgreSQL at \(address) continued a SASL exchange never begun")
                    }
                    let final = try client.finalMessage(serverFirst: Array(body.readableBytesView), address: address)
                    scram = client
                    try await send(WireMessage.saslResponse(final))
                case 12:
                    guard let client = scram, client.verify(serverFinal: Array(body.readableBytesView)) else {
                        throw FerryError(.authentication, "PostgreSQL at \(address) did not prove it knows the password (SCRAM server signature)")
                    }
                default:
                    throw FerryError(
                        .authentication,
                        "PostgreSQL at \(address) asks for an authentication (code \(code)) ferry extract's COPY reader does not speak")
                }
            case UInt8(ascii: "E"):
                throw Self.serverError(body, address: address, login: true, user: endpoint.user, database: endpoint.database)
            case UInt8(ascii: "Z"):
                return
            default:
                continue
            }
        }
    }

    func password() throws(FerryError) -> String {
        guard let password = endpoint.password?.value else {
            throw FerryError(
                .authentication, "PostgreSQL at \(address) asks for a password and none is configured", fix: "set postgres.password or PG_PASSWORD")
        }
        return password
    }

    static func md5Password(user: String, password: String, salt: [UInt8]) -> String {
        func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }
        let inner = hex(Insecure.MD5.hash(data: Array((password + user).utf8)))
        return "md5" + hex(Insecure.MD5.hash(data: Array(inner.utf8) + salt))
    }

    /// Runs the COPY and hands every CopyData payload to `consume`, until ReadyForQuery.
    mutating func copyOut(_ sql: String, consume: (UnsafeRawBufferPointer) throws(FerryError) -> Void) async throws(FerryError) {
        try await send(WireMessage.query(sql))
        var failure: FerryError?
        while true {
            while let (type, body) = try nextMessage() {
                switch type {
                case UInt8(ascii: "d"):
                    if failure == nil {
                        var consumerFailure: FerryError?
                        body.withUnsafeReadableBytes { raw in
                            do throws(FerryError) { try consume(raw) } catch { consumerFailure = error }
                        }
                        if let consumerFailure { throw consumerFailure }
                    }
                case UInt8(ascii: "E"):
                    failure = Self.serverError(body, address: address, login: false, user: endpoint.user, database: endpoint.database)
                case UInt8(ascii: "Z"):
                    if let failure { throw failure }
                    return
                default:
                    continue
                }
            }
            try await fill()
        }
    }

    /// An ErrorResponse as a FerryError: the server's message, SQLSTATE and hint.
    static func serverError(_ body: ByteBuffer, address: String, login: Bool, user: String, database: String) -> FerryError {
        var body = body
        var fields: [UInt8: String] = [:]
        while let code = body.readInteger(as: UInt8.self), code != 0, let value = body.readNullTerminatedString() { fields[code] = value }
        let message = fields[UInt8(ascii: "M")] ?? "an error"
        let state = fields[UInt8(ascii: "C")] ?? ""
        let hint = fields[UInt8(ascii: "H")]
        switch state {
        case "28P01", "28000":
            return FerryError(
                .authentication, "PostgreSQL at \(address) refused \(user): \(message)", fix: "check postgres.user and postgres.password")
        case "3D000":
            return FerryError(.databaseMissing, "PostgreSQL at \(address): \(message)", fix: "create database \(database) or fix postgres.database")
        default:
            return FerryError(
                login ? .authentication : .server, "PostgreSQL at \(address): \(message) (SQLSTATE \(state))",
                fix: hint ?? "run the query in psql with the same parameters (ferry extract --dry-run shows them) to see the problem")
        }
    }
}

/// SCRAM-SHA-256 (RFC 5802, 7677) as PostgreSQL uses it: no channel binding, the user name left empty.
struct SCRAMClient {
    let password: String
    let clientNonce: String
    /// PostgreSQL takes the user from the startup message and leaves this empty.
    let user: String
    private(set) var authMessage = ""
    private(set) var saltedPassword: [UInt8] = []

    init(password: String, nonce: String? = nil, user: String = "") {
        self.password = password
        self.user = user
        clientNonce = nonce ?? Data((0..<18).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    }

    var firstBare: String { "n=\(user),r=\(clientNonce)" }
    var firstMessage: [UInt8] { Array(("n,," + firstBare).utf8) }

    mutating func finalMessage(serverFirst: [UInt8], address: String) throws(FerryError) -> [UInt8] {
        let text = String(decoding: serverFirst, as: UTF8.self)
        var attributes: [Character: String] = [:]
        for part in text.split(separator: ",") where part.count >= 2 && part.dropFirst().first == "=" {
            attributes[part.first!] = String(part.dropFirst(2))
        }
        guard let nonce = attributes["r"], nonce.hasPrefix(clientNonce), let saltText = attributes["s"], let salt = Data(base64Encoded: saltText),
            let iterations = attributes["i"].flatMap({ Int($0) }), (1...10_000_000).contains(iterations)
        else {
            throw FerryError(.protocolViolation, "PostgreSQL at \(address) sent a SCRAM challenge Ferry cannot read")
        }
        saltedPassword = Self.pbkdf2(password: Array(password.utf8), salt: Array(salt), iterations: iterations)
        let finalWithoutProof = "c=biws,r=\(nonce)"
        authMessage = firstBare + "," + text + "," + finalWithoutProof
        let clientKey = Self.hmac(saltedPassword, Array("Client Key".utf8))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let signature = Self.hmac(storedKey, Array(authMessage.utf8))
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        return Array((finalWithoutProof + ",p=" + Data(proof).base64EncodedString()).utf8)
    }

    func verify(serverFinal: [UInt8]) -> Bool {
        let text = String(decoding: serverFinal, as: UTF8.self)
        guard text.hasPrefix("v="), let signature = Data(base64Encoded: String(text.dropFirst(2).prefix { $0 != "," })) else { return false }
        let serverKey = Self.hmac(saltedPassword, Array("Server Key".utf8))
        return Array(signature) == Self.hmac(serverKey, Array(authMessage.utf8))
    }

    static func hmac(_ key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    /// PBKDF2-HMAC-SHA256, one block (32 bytes, the key length SCRAM-SHA-256 uses).
    static func pbkdf2(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var block = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<iterations {
            block = Array(HMAC<SHA256>.authenticationCode(for: block, using: key))
            for index in result.indices { result[index] ^= block[index] }
        }
        return result
    }
}
