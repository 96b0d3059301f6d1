/// Every key of a database matching a pattern, walked with `SCAN` (never `KEYS`), each key once.
///
/// `SCAN` may return a key more than once while the keyspace is rehashed; this sequence remembers what it
/// returned and drops repeats (memory grows with the number of distinct keys). Each step leases a pooled
/// connection only for that step. Names are bytes (``RedisName``): a name that is not text is returned as it is,
/// for the caller to report.
package struct RedisScanSequence: AsyncSequence, Sendable {
    package typealias Element = RedisName

    let pool: RedisConnectionPool
    let match: String?
    let count: Int?
    let type: RedisKeyType?

    package func makeAsyncIterator() -> Iterator {
        Iterator(pool: pool, match: match, count: count, type: type)
    }

    package struct Iterator: AsyncIteratorProtocol {
        let pool: RedisConnectionPool
        let match: String?
        let count: Int?
        let type: RedisKeyType?
        var cursor = "0"
        var started = false
        var buffered: [RedisName] = []
        var seen: Set<RedisName> = []

        package mutating func next() async throws -> RedisName? {
            while true {
                while let key = buffered.popLast() {
                    if seen.insert(key).inserted { return key }
                }
                if started && cursor == "0" { return nil }
                started = true
                let command = SCAN(cursor: cursor, match: match, count: count, type: type)
                let (next, keys) = try await pool.withConnection { try await $0.send(command) }
                cursor = next
                buffered = keys.reversed()
            }
        }
    }
}

extension RedisClient {
    /// Keys of `database` matching `match` (a glob), optionally of one `type`; `count` hints the step size.
    package func scan(database: Int? = nil, match: String? = nil, count: Int? = 1000, type: RedisKeyType? = nil) -> RedisScanSequence {
        RedisScanSequence(pool: pool(database: database), match: match, count: count, type: type)
    }
}
