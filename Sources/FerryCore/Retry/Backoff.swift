/// Exponential backoff with full jitter: attempt `n` waits a random time in `[0, min(max, base·2ⁿ)]`,
/// never less than `base / 2` so a tight loop cannot form.
package struct Backoff: Sendable, Equatable {
    /// First delay ceiling. Default 100ms.
    package var base: Duration
    /// Largest delay. Default 10s.
    package var maximum: Duration
    /// Attempts after the first failure before giving up; `nil` retries forever.
    package var maxRetries: Int?

    package init(base: Duration = .milliseconds(100), maximum: Duration = .seconds(10), maxRetries: Int? = nil) {
        self.base = base
        self.maximum = maximum
        self.maxRetries = maxRetries
    }

    /// The delay before retry number `attempt` (0-based).
    package func delay<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) -> Duration {
        let baseSeconds = base.seconds
        let ceiling = min(maximum.seconds, baseSeconds * Double(1 << min(attempt, 30)))
        let floor = min(baseSeconds / 2, ceiling)
        let seconds = Double.random(in: floor...max(floor, ceiling), using: &generator)
        return .nanoseconds(Int64(seconds * 1e9))
    }

    package func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }

    /// Whether another retry is allowed after `attempt` retries.
    package func allowsRetry(after attempt: Int) -> Bool {
        guard let maxRetries else { return true }
        return attempt < maxRetries
    }
}

extension Duration {
    /// The duration in seconds as a floating-point number.
    package var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
