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
