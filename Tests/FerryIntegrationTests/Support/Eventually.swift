import Synchronization
import Testing

/// A condition that did not hold in time.
struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Waits until `condition` holds, checking every `every`: the one way tests wait for something to happen (never a
/// fixed sleep). A condition that throws counts as not holding yet (a server may be restarting); after `timeout` the
/// test fails with ``TimedOut`` naming `what`, the condition's last error and `diagnostics` (logs, say).
func eventually(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(30), every: Duration = .milliseconds(100),
    diagnostics: @autoclosure () -> String = "", _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if try await condition() { return }
        } catch {
            lastError = error
        }
        guard ContinuousClock.now < deadline else {
            var message = "timed out after \(timeout) waiting for \(what())"
            if let lastError { message += " (last error: \(lastError))" }
            let details = diagnostics()
            if !details.isEmpty { message += "\n" + details }
            throw TimedOut(description: message)
        }
        try await Task.sleep(for: every)
    }
}

struct Hung: Error {}

/// Runs `body` and fails the test if it takes longer than `limit` (the call's own timeouts must end it first).
/// A body that hangs is left behind, not awaited: a task group would wait for it.
func bounded<T: Sendable>(_ what: String, _ limit: Duration = .seconds(30), _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let resumed = Mutex(false)
    do {
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let finish: @Sendable (Result<T, any Error>) -> Void = { result in
                if resumed.withLock({ done in
                    defer { done = true }
                    return !done
                }) {
                    continuation.resume(with: result)
                }
            }
            Task {
                do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: limit)
                finish(.failure(Hung()))
            }
        }
    } catch is Hung {
        Issue.record("\(what) did not end within \(limit): a hang")
        throw CancellationError()
    }
}
