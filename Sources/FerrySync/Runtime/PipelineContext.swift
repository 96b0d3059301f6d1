import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging
import Synchronization

/// What a pipeline's producer and consumers share.
struct PipelineContext: Sendable {
    let pipeline: PipelineConfiguration
    let keys: QueueKeys
    let source: any TableSource
    let redis: RedisClient
    /// The target database, for the producer's control writes (consumers have their own sessions).
    let target: PostgresSession
    let targetEndpoint: PostgresEndpoint
    let control: ControlTables
    let metrics: SyncMetrics
    let logger: Logger
    let progress: ProgressTracker
    let commitLatency: (@Sendable ([(micros: Int64, rows: Int)]) -> Void)?
    /// Whether `ferry_pipelines.last_error` may hold a retried error that the next applied batch clears (set when
    /// one is recorded, and at the start: an earlier process may have left one).
    let errorToClear = ProducerFlag(true)

    func reportProgress(phase: SyncProgress.Phase, producedDelta: Int = 0, appliedDelta: Int = 0, estimatedTotal: Int? = nil) {
        progress.record(phase: phase, produced: producedDelta, applied: appliedDelta, estimatedTotal: estimatedTotal)
    }
}

/// Counts rows produced and applied, computes the rate, and calls the handler at most a few times a second.
final class ProgressTracker: Sendable {
    private struct State {
        var phase: SyncProgress.Phase = .incremental
        var produced = 0
        var applied = 0
        var deadLettered = 0
        var estimatedTotal: Int?
        var samples: [(time: ContinuousClock.Instant, applied: Int)] = []
        var lastReport = ContinuousClock.now - .seconds(1)
    }

    let pipeline: String
    private let handler: (@Sendable (SyncProgress) -> Void)?
    private let state = Mutex(State())

    init(pipeline: String, handler: (@Sendable (SyncProgress) -> Void)?) {
        self.pipeline = pipeline
        self.handler = handler
    }

    func record(phase: SyncProgress.Phase, produced: Int, applied: Int, estimatedTotal: Int?) {
        let report = state.withLock { state -> SyncProgress? in
            if produced > 0 { state.phase = phase }
            state.produced += produced
            state.applied += applied
            if let estimatedTotal { state.estimatedTotal = estimatedTotal }
            let now = ContinuousClock.now
            state.samples.append((now, state.applied))
            state.samples.removeAll { now - $0.time > .seconds(5) }
            guard now - state.lastReport >= .milliseconds(250) else { return nil }
            state.lastReport = now
            return snapshot(state)
        }
        if let report { handler?(report) }
    }

    var current: SyncProgress { state.withLock { snapshot($0) } }

    func recordDeadLettered(_ rows: Int) { state.withLock { $0.deadLettered += rows } }

    /// Rows applied or moved to the dead letters: what the pipeline's progress is (``StallWatch``).
    var handled: Int { state.withLock { $0.applied + $0.deadLettered } }

    private func snapshot(_ state: State) -> SyncProgress {
        var rate = 0.0
        if let first = state.samples.first, let last = state.samples.last, last.time > first.time {
            rate = Double(last.applied - first.applied) / (last.time - first.time).seconds
        }
        var progress = SyncProgress(
            pipeline: pipeline, phase: state.phase, produced: state.produced, applied: state.applied, estimatedTotal: state.estimatedTotal, rate: rate
        )
        progress.deadLettered = state.deadLettered
        return progress
    }
}
