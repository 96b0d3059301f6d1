/// What a pipeline reports while it runs, for progress bars and tests.
public struct SyncProgress: Sendable {
    public enum Phase: String, Sendable {
        case initialLoad = "initial load"
        case incremental
    }

    public var pipeline: String
    public var phase: Phase
    /// Rows read from the source and queued since the start of this run.
    public var produced: Int
    /// Rows applied to the mirror since the start of this run (this process's consumers).
    public var applied: Int
    /// Rows the source holds, when it can tell (for the initial load's ETA).
    public var estimatedTotal: Int?
    /// Rows per second applied over the last few seconds.
    public var rate: Double

    public init(pipeline: String, phase: Phase, produced: Int, applied: Int, estimatedTotal: Int?, rate: Double) {
        self.pipeline = pipeline
        self.phase = phase
        self.produced = produced
        self.applied = applied
        self.estimatedTotal = estimatedTotal
        self.rate = rate
    }
}
