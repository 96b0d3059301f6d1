import FerryCore
import FerryRESP
import FerryRedis
import Logging

/// Connects to Redis (authenticating and selecting the database), measures PING, probes the commands the sync
/// needs without changing anything, and warns when the server could drop queued data.
struct RedisCheck {
    let name: String
    let endpoint: RedisEndpoint
    let logger: Logger

    /// Commands probed on a key that does not exist, so none writes: an ACL denial still shows as NOPERM.
    static let probes: [[String]] = [
        ["EXISTS", "ferry:check:probe"],
        ["XADD", "ferry:check:probe", "NOMKSTREAM", "*", "f", "v"],
        ["XINFO", "STREAM", "ferry:check:probe"],
        ["XGROUP", "CREATE", "ferry:check:probe", "ferry-check", "$"],
        ["XREADGROUP", "GROUP", "ferry-check", "c", "COUNT", "1", "STREAMS", "ferry:check:probe", ">"],
        ["XACK", "ferry:check:probe", "ferry-check", "0-1"],
        ["XAUTOCLAIM", "ferry:check:probe", "ferry-check", "c", "0", "0-0"],
        ["SET", "ferry:check:probe", "v", "XX"],
        ["MULTI"],
        ["DISCARD"],
    ]

    func run() async -> EndpointCheck {
        let address = "\(endpoint.host):\(endpoint.port)"
        let result = EndpointCheck(name: name, kind: "redis", address: address, status: .ok, detail: "")
        var configuration = RedisConnectionConfiguration(endpoint)
        configuration.clientName = "ferry-check"
        configuration.commandTimeout = .seconds(10)
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(configuration, logger: logger)
        } catch {
            return failed(result, error)
        }
        let checked = await inspect(connection, result)
        await connection.close()
        return checked
    }

    private func inspect(_ connection: RedisConnection, _ result: EndpointCheck) async -> EndpointCheck {
        var result = result
        do {
            result.latency = try await measure { try await connection.send(RawCommand("PING")) }
            let version = connection.info.serverVersion ?? "unknown version"
            result.detail = "Redis \(version), db \(endpoint.db), RESP\(connection.info.protocolVersion)"
            let replies = try await connection.pipeline(Self.probes.map { RawCommand(arguments: $0) })
            for (probe, reply) in zip(Self.probes, replies) {
                if case .failure(let error) = reply, error.prefix == "NOPERM" {
                    let command = probe[0] == "XINFO" || probe[0] == "XGROUP" ? "\(probe[0]) \(probe[1])" : probe[0]
                    result.status = .permissionMissing
                    result.detail = "user \"\(endpoint.user ?? "default")\" may not run \(command)"
                    result.fix = "allow it, e.g. `ACL SETUSER \(endpoint.user ?? "default") +@stream +@string +@keyspace +@transaction ~ferry:*`"
                    return result
                }
            }
            result.warnings += await safetyWarnings(connection)
        } catch {
            return failed(result, error)
        }
        return result
    }

    private func safetyWarnings(_ connection: RedisConnection) async -> [String] {
        guard let reply = try? await connection.send(RawCommand("CONFIG", "GET", "*")), let pairs = try? reply.pairs() else {
            return ["cannot read CONFIG (no permission?): persistence and eviction settings not verified"]
        }
        var settings: [String: String] = [:]
        for (key, value) in pairs {
            if let key = try? key.decode(as: String.self), let value = try? value.decode(as: String.self) { settings[key] = value }
        }
        var warnings: [String] = []
        if let policy = settings["maxmemory-policy"], policy != "noeviction" {
            warnings.append("maxmemory-policy is \(policy): Redis may evict queued rows; set it to noeviction")
        }
        if settings["appendonly"] == "no" && (settings["save"] ?? "").isEmpty {
            warnings.append("neither AOF nor RDB snapshots are on: a Redis restart loses the queue; enable appendonly")
        }
        return warnings
    }

    private func failed(_ result: EndpointCheck, _ error: any Error) -> EndpointCheck {
        var result = result
        guard let error = error as? RedisError else {
            result.status = .error
            result.detail = "\(error)"
            return result
        }
        result.detail = error.message
        switch error.code {
        case .unreachable, .connectionClosed, .timeout:
            result.status = .unreachable
            result.fix = "check that Redis runs and \(name).host/\(name).port (REDIS_HOST/REDIS_PORT) are right"
        case .server:
            switch error.prefix {
            case "WRONGPASS", "NOAUTH":
                result.status = .authenticationFailed
                result.detail = error.prefix == "NOAUTH" ? "the server requires a password" : "wrong user name or password"
                result.fix = "check \(name).password (REDIS_PASSWORD)" + (endpoint.user != nil ? " and \(name).user" : "")
            case "NOPERM":
                result.status = .permissionMissing
                result.fix = "grant the user the commands Ferry needs (ACL SETUSER)"
            default:
                if error.command == "SELECT" || error.message.contains("does not exist on this server") {
                    result.status = .databaseMissing
                    result.detail = "database \(endpoint.db) does not exist on this server"
                    result.fix = "use \(name).db (REDIS_DB) below the server's `databases` setting (default 16)"
                } else {
                    result.status = .error
                }
            }
        default:
            result.status = .error
        }
        return result
    }
}
