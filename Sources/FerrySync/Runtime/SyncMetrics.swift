import CoreMetrics
import Metrics

/// The table sync's Prometheus figures, labelled by pipeline.
struct SyncMetrics: Sendable {
    let rowsProduced: Counter
    let rowsApplied: Counter
    let rowsSkipped: Counter
    let deadLetters: Counter
    let errors: Counter
    let retries: Counter
    let batchLatency: Timer
    let enqueueToCommit: Timer
    let queueDepth: Gauge
    let pending: Gauge
    let lastProduced: Gauge
    let lastApplied: Gauge

    init(pipeline: String) {
        let dimensions = [("pipeline", pipeline)]
        rowsProduced = Counter(label: "ferry_sync_rows_produced_total", dimensions: dimensions)
        rowsApplied = Counter(label: "ferry_sync_rows_applied_total", dimensions: dimensions)
        rowsSkipped = Counter(label: "ferry_sync_rows_unchanged_total", dimensions: dimensions)
        deadLetters = Counter(label: "ferry_sync_dead_letters_total", dimensions: dimensions)
        errors = Counter(label: "ferry_sync_errors_total", dimensions: dimensions)
        retries = Counter(label: "ferry_sync_retries_total", dimensions: dimensions)
        batchLatency = Timer(label: "ferry_sync_batch_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        enqueueToCommit = Timer(label: "ferry_sync_enqueue_to_commit_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        queueDepth = Gauge(label: "ferry_sync_queue_length", dimensions: dimensions)
        pending = Gauge(label: "ferry_sync_pending_entries", dimensions: dimensions)
        lastProduced = Gauge(label: "ferry_sync_last_produced_timestamp_seconds", dimensions: dimensions)
        lastApplied = Gauge(label: "ferry_sync_last_applied_timestamp_seconds", dimensions: dimensions)
    }
}
