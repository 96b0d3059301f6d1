/// One measured figure, Ferry beside the peer measured in the same run.
///
/// Each round measures the peer and Ferry back to back; the figure is the median over rounds, and the ratio
/// is the median of the per-round ratios (on a shared, noisy machine adjacent runs are the fair comparison).
package struct BenchmarkFigure: Sendable {
    package var name: String
    package var unit: String
    /// Ferry's value per round.
    package var ferryRounds: [Double]
    /// The peer's value per round.
    package var peerRounds: [Double]
    package var peerName: String
    /// Whether a larger number is better (throughput) or worse (latency).
    package var higherIsBetter: Bool
    /// The target as a ratio to the peer (e.g. 0.8 = at least 80% of the peer's throughput; 1.2 = latency at
    /// most 1.2× the peer's).
    package var target: Double?

    package init(name: String, unit: String, ferry: [Double], peer: [Double], peerName: String, higherIsBetter: Bool, target: Double? = nil) {
        self.name = name
        self.unit = unit
        self.ferryRounds = ferry
        self.peerRounds = peer
        self.peerName = peerName
        self.higherIsBetter = higherIsBetter
        self.target = target
    }

    package var ferry: Double { median(ferryRounds) }
    package var peer: Double { median(peerRounds) }

    /// Ferry divided by the peer: the median of the per-round ratios.
    package var ratio: Double {
        median(zip(ferryRounds, peerRounds).compactMap { $1 == 0 ? nil : $0 / $1 })
    }

    package var meetsTarget: Bool? {
        guard let target else { return nil }
        return higherIsBetter ? ratio >= target : ratio <= target
    }
}

/// Runs `body` `rounds` times and returns the median of each figure it produces.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func percentile(_ sorted: [Duration], _ fraction: Double) -> Duration {
    guard !sorted.isEmpty else { return .zero }
    let index = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
    return sorted[max(0, index)]
}
