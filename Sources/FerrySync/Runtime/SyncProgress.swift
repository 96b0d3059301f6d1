/// What a pipeline reports while it runs, for progress bars and tests.
package struct SyncProgress: Sendable {
    package enum Phase: String, Sendable {
        case initialLoad = "initial load"
        case incremental
    }

    package var pipeline: String
    package var phase: Phase
    /// Rows read from the source and queued since the start of this run.
    package var produced: Int
    /// Rows applied to the mirror since the start of this run (this process's consumers).
    package var applied: Int
    /// Rows the source holds, when it can tell (for the initial load's ETA).
    package var estimatedTotal: Int?
    /// Rows per second applied over the last few seconds.
    package var rate: Double
    /// Rows moved to the dead letters since the start of this run.
    package var deadLettered = 0

    package init(pipeline: String, phase: Phase, produced: Int, applied: Int, estimatedTotal: Int?, rate: Double) {
        self.pipeline = pipeline
        self.phase = phase
        self.produced = produced
        self.applied = applied
        self.estimatedTotal = estimatedTotal
        self.rate = rate
    }
}
