import Synchronization

/// Admits a few audit lines per time window; counts the rest, so the next admitted line can say how many were not
/// written.
package final class AuditThrottle: Sendable {
    private struct State {
        var windowStart: ContinuousClock.Instant
        var admitted = 0
        var suppressed = 0
    }

    let linesPerWindow: Int
    let window: Duration
    private let state: Mutex<State>

    package init(linesPerWindow: Int, window: Duration) {
        self.linesPerWindow = linesPerWindow
        self.window = window
        state = Mutex(State(windowStart: .now))
    }

    /// nil: do not log this one. Otherwise log it, after a line saying how many were not logged (when not 0).
    package func admit(now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { state in
            if now - state.windowStart >= window {
                state.windowStart = now
                state.admitted = 0
            }
            guard state.admitted < linesPerWindow else {
                state.suppressed += 1
                return nil
            }
            state.admitted += 1
            defer { state.suppressed = 0 }
            return state.suppressed
        }
    }
}
