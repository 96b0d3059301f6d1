import Synchronization

/// A token bucket: at most `rate` operations per second on average, bursts up to `burst`. Callers wait (without
/// holding a lock) until their tokens are available; waiting is cancellable.
package final class RateLimiter: Sendable {
    private struct State {
        var rate: Double
        var burst: Double
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let state: Mutex<State>

    /// `rate` tokens per second; `burst` defaults to one second's worth (at least 1).
    package init(rate: Double, burst: Double? = nil) {
        let capacity = max(1, burst ?? rate)
        state = Mutex(State(rate: rate, burst: capacity, tokens: capacity, updated: .now))
    }

    /// Changes the rate (a configuration reload); tokens already earned are kept up to the new burst.
    package func update(rate: Double, burst: Double? = nil) {
        state.withLock {
            $0.rate = rate
            $0.burst = max(1, burst ?? rate)
            $0.tokens = min($0.tokens, $0.burst)
        }
    }

    package var rate: Double { state.withLock { $0.rate } }

    /// Takes `count` tokens, waiting as long as needed. Tokens may go negative (a debt later callers wait out), so a
    /// request larger than the burst still completes and the long-run rate holds.
    package func acquire(_ count: Int = 1) async throws {
        let wait = state.withLock { state -> Duration in
            let now = ContinuousClock.now
            let elapsed = (now - state.updated).seconds
            state.tokens = min(state.burst, state.tokens + elapsed * state.rate)
            state.updated = now
            state.tokens -= Double(count)
            guard state.tokens < 0, state.rate > 0 else { return .zero }
            return .nanoseconds(Int64(-state.tokens / state.rate * 1e9))
        }
        if wait > .zero { try await Task.sleep(for: wait) }
    }
}
