package import NIOCore
import Synchronization

/// Results kept by the request that produced them, for `ferry bench`'s client comparison: a first run of a query is
/// served from PostgreSQL and recorded (its COLMETADATA and rows, as sent), every later run of the same query, with
/// the same parameters and the same TDS version, is answered from memory. The server then costs almost nothing, so
/// the clients' own rates show where the live emulator would cap them all. Nothing that writes is recorded or
/// answered from here; a result over `limit` bytes is served but not kept. Never used by the tests: a cached answer
/// does not see later writes.
package final class TDSResultCache: Sendable {
    struct Result: Sendable {
        var bytes: ByteBuffer
        var rows: UInt64
    }

    private let results = Mutex<[String: Result]>([:])
    private let counts = Mutex<(hits: Int, misses: Int)>((0, 0))
    /// The most bytes one result may hold to be kept.
    package let limit: Int

    package init(limit: Int = 1 << 30) {
        self.limit = limit
    }

    /// How many requests were answered from memory, and how many were not.
    package var hitsAndMisses: (hits: Int, misses: Int) { counts.withLock { $0 } }

    func result(_ key: String) -> Result? {
        let found = results.withLock { $0[key] }
        counts.withLock { counts in
            if found == nil { counts.misses += 1 } else { counts.hits += 1 }
        }
        return found
    }

    func keep(_ result: Result, for key: String) {
        guard result.bytes.readableBytes <= limit else { return }
        results.withLock { $0[key] = result }
    }
}
