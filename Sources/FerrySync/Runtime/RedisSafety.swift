import FerryCore
import FerryRedis

/// Refuses a Redis that could silently drop queued rows: an eviction policy other than `noeviction`, or no
/// persistence at all.
enum RedisSafety {
    static func verify(_ client: RedisClient, allowUnsafe: Bool, address: String) async throws {
        let settings: [String: String]
        do {
            settings = try await client.send(CONFIGGET("maxmemory-policy", "appendonly", "save"))
        } catch let error as RedisError where error.prefix == "NOPERM" || error.message.lowercased().contains("unknown command") {
            if allowUnsafe { return }
            throw FerryError(
                .permission,
                "cannot read Redis's configuration at \(address) (CONFIG GET is not allowed) to verify that queued rows cannot be lost",
                fix: "allow CONFIG GET for Ferry's user, or pass --allow-unsafe-redis if you have checked maxmemory-policy and persistence yourself"
            )
        }
        var problems: [String] = []
        if let policy = settings["maxmemory-policy"], policy != "noeviction" {
            problems.append("maxmemory-policy is \(policy), so Redis may evict queued rows (set it to noeviction)")
        }
        if settings["appendonly"] == "no" && (settings["save"] ?? "").isEmpty {
            problems.append("neither AOF (appendonly) nor RDB snapshots (save) are on, so a restart loses the queue (set appendonly yes)")
        }
        guard !problems.isEmpty, !allowUnsafe else { return }
        throw FerryError(
            .unsupported,
            "Redis at \(address) could lose queued rows: " + problems.joined(separator: "; "),
            fix: "fix the Redis configuration, or pass --allow-unsafe-redis to run anyway"
        )
    }
}
