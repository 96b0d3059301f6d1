import CoreMetrics
package import Foundation
import Metrics
import Synchronization

/// The Redis sync's Prometheus figures.
struct RedisSyncMetrics: Sendable {
    let entriesApplied = Counter(label: "ferry_redis_stream_entries_applied_total")
    let deadLetters = Counter(label: "ferry_redis_stream_dead_letters_total")
    let retries = Counter(label: "ferry_redis_sync_retries_total")
    let batchLatency = Timer(label: "ferry_redis_stream_batch_seconds", preferredDisplayUnit: .seconds)
    let streamsDiscovered = Gauge(label: "ferry_redis_streams_synced")
    let keysWritten = Counter(label: "ferry_redis_keys_written_total")
    let keysUnchanged = Counter(label: "ferry_redis_keys_unchanged_total")
    let keysDeleted = Counter(label: "ferry_redis_keys_deleted_total")
    let scanSeconds = Timer(label: "ferry_redis_key_scan_seconds", preferredDisplayUnit: .seconds)
    let lastSync = Gauge(label: "ferry_redis_sync_last_sync_timestamp_seconds")
}

/// What `ferry status` and logs show about the Redis sync: counts and the last error.
package final class RedisSyncStatus: Sendable {
    package struct Snapshot: Sendable {
        package var entriesApplied = 0
        package var keysWritten = 0
        package var keysDeleted = 0
        package var streams: [String] = []
        package var lastError: String?
        package var lastErrorAt: Date?
        /// Subscribed to keyspace notifications right now (changes arrive within ~50 ms).
        package var followingNotifications = false
        /// Entries moved to the dead letters, and key scans completed (with entriesApplied: what progress is).
        package var entriesDeadLettered = 0
        package var keyScans = 0
    }

    private let state = Mutex(Snapshot())

    package init() {}

    package var snapshot: Snapshot { state.withLock { $0 } }

    func recordError(_ message: String) {
        state.withLock {
            $0.lastError = message
            $0.lastErrorAt = Date()
        }
    }

    func recordApplied(_ count: Int) { state.withLock { $0.entriesApplied += count } }

    func recordDeadLettered(_ count: Int) { state.withLock { $0.entriesDeadLettered += count } }

    func recordKeys(written: Int, deleted: Int) {
        state.withLock {
            $0.keysWritten += written
            $0.keysDeleted += deleted
            $0.keyScans += 1
        }
    }

    func recordStreams(_ streams: [String]) { state.withLock { $0.streams = streams } }

    func recordFollowingNotifications(_ following: Bool) { state.withLock { $0.followingNotifications = following } }
}
