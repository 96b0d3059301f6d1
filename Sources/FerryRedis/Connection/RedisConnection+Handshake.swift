import FerryCore
import FerryRESP
import Logging
import NIOCore

extension RedisConnection {
    /// Greets the server in one write: `HELLO 3 [AUTH user pass] [SETNAME name]` and `SELECT db`; on a server
    /// without `HELLO` (Redis < 6) falls back to RESP2 with `AUTH`, `CLIENT SETNAME` and `SELECT`.
    func greet(logger: Logger) async throws(RedisError) {
        let config = configuration
        let name = config.clientName.map { $0.replacingSpaces() }
        var encoder = RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: 128))
        var replies = 0
        if config.preferRESP3 {
            var hello: [String] = ["HELLO", "3"]
            if let password = config.password {
                hello += ["AUTH", config.user ?? "default", password.value]
            }
            if let name { hello += ["SETNAME", name] }
            encoder.encodeArray(hello)
            replies += 1
            if config.database != 0 {
                encoder.encodeArray("SELECT", config.database)
                replies += 1
            }
            let tokens = try await execute(encoder.buffer, replies: replies, command: "HELLO", timeout: config.connectTimeout)
            switch tokens[0].value {
            case .simpleError(let message), .bulkError(let message):
                let error = RedisError.server(reply: String(buffer: message), command: "HELLO", address: address)
                guard Self.isUnsupportedHello(error) else { throw Self.explain(error) }
                logger.debug("server has no HELLO; falling back to RESP2", metadata: ["ferry.redis": "\(address)"])
                try await greetRESP2(name: name)
                return
            default:
                let (version, id, proto) = Self.readHello(tokens[0])
                updateHandshake {
                    $0.protocolVersion = proto ?? 3
                    $0.serverVersion = version
                    $0.clientID = id
                }
            }
            if config.database != 0 {
                try Self.checkSelect(tokens[1], database: config.database, address: address)
            }
        } else {
            try await greetRESP2(name: name)
        }
    }

    private func greetRESP2(name: String?) async throws(RedisError) {
        let config = configuration
        var encoder = RESPCommandEncoder(buffer: channel.allocator.buffer(capacity: 128))
        var commands: [String] = []
        if let password = config.password {
            if let user = config.user {
                encoder.encodeArray("AUTH", user, password.value)
            } else {
                encoder.encodeArray("AUTH", password.value)
            }
            commands.append("AUTH")
        }
        if let name {
            encoder.encodeArray("CLIENT", "SETNAME", name)
            commands.append("CLIENT SETNAME")
        }
        if config.database != 0 {
            encoder.encodeArray("SELECT", config.database)
            commands.append("SELECT")
        }
        encoder.encodeArray("CLIENT", "ID")
        commands.append("CLIENT ID")
        let tokens = try await execute(encoder.buffer, replies: commands.count, command: "AUTH", timeout: config.connectTimeout)
        for (command, token) in zip(commands, tokens) {
            switch token.value {
            case .simpleError(let message), .bulkError(let message):
                let error = RedisError.server(reply: String(buffer: message), command: command, address: address)
                if command == "SELECT" {
                    throw Self.selectError(error, database: config.database, address: address)
                }
                if command == "CLIENT SETNAME" || command == "CLIENT ID" { continue }
                throw Self.explain(error)
            default:
                if command == "CLIENT ID", case .number(let id) = token.value {
                    updateHandshake { $0.clientID = id }
                }
            }
        }
        updateHandshake { $0.protocolVersion = 2 }
    }

    static func isUnsupportedHello(_ error: RedisError) -> Bool {
        guard error.prefix == "ERR" || error.prefix == "NOPROTO" else { return false }
        let message = error.message.lowercased()
        return error.prefix == "NOPROTO" || message.contains("unknown command") || message.contains("unknown or disabled")
    }

    /// Adds the fix to authentication errors.
    static func explain(_ error: RedisError) -> RedisError {
        var error = error
        switch error.prefix {
        case "WRONGPASS":
            error.message = "authentication failed: the user name or password is wrong — check redis.user and redis.password (REDIS_PASSWORD)"
        case "NOAUTH":
            error.message = "the server requires a password — set redis.password (REDIS_PASSWORD)"
        case "NOPERM":
            error.message = "the user may not run this command: \(error.message) — grant it with ACL SETUSER"
        default:
            break
        }
        return error
    }

    private static func checkSelect(_ token: RESPToken, database: Int, address: String) throws(RedisError) {
        if case .simpleError(let message) = token.value {
            let error = RedisError.server(reply: String(buffer: message), command: "SELECT", address: address)
            throw selectError(error, database: database, address: address)
        }
    }

    private static func selectError(_ error: RedisError, database: Int, address: String) -> RedisError {
        var error = error
        if error.message.contains("out of range") {
            error.message = "database \(database) does not exist on this server — use redis.db below the server's `databases` setting (default 16)"
        } else {
            error = explain(error)
        }
        return error
    }

    private static func readHello(_ token: RESPToken) -> (version: String?, id: Int64?, proto: Int?) {
        guard let pairs = try? token.pairs() else { return (nil, nil, nil) }
        var version: String?
        var id: Int64?
        var proto: Int?
        for (key, value) in pairs {
            switch try? key.decode(as: String.self) {
            case "version": version = try? value.decode(as: String.self)
            case "id": id = try? value.decode(as: Int64.self)
            case "proto": proto = try? value.decode(as: Int.self)
            default: break
            }
        }
        return (version, id, proto)
    }
}

extension String {
    fileprivate func replacingSpaces() -> String {
        String(map { $0 == " " ? "-" : $0 })
    }
}
