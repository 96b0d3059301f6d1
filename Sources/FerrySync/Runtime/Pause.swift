import FerryCore
import FerryPostgres
import FerryRedis
import Logging
import PostgresNIO
import ServiceLifecycle

/// Waits `duration`, cut short by cancellation or by the service group's graceful shutdown (SIGTERM stops a job
/// within its current step, never after a 10-second interval). Never throws: callers check
/// `Task.isCancelled`/`Task.isShuttingDownGracefully` in their loop condition.
func pause(for duration: Duration) async {
    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
}

/// Whether `error` is an outage that passes by itself: a server unreachable, restarting or closing the
/// connection. Configuration, permission and schema errors are not: retrying cannot fix them.
func isOutage(_ error: any Error) -> Bool {
    switch error {
    case is CancellationError: false
    case let error as FerryError: error.code == .unreachable
    case let error as RedisError: error.code != .poolClosed
    case let error as PSQLError: PostgresSession.isConnectionLevel(error)
    default: false
    }
}

/// Runs `body` until it succeeds, waiting out outages (``isOutage(_:)``) with `backoff`: a job whose server
/// restarts while the job starts waits for it, as it does once running, instead of failing for good. Any other
/// error, a cancellation or a graceful shutdown ends the wait.
func retryingOutages<T>(
    _ what: String, backoff: Backoff, logger: Logger, metadata: Logger.Metadata = [:], _ body: () async throws -> T
) async throws -> T {
    var attempt = 0
    while true {
        do {
            return try await body()
        } catch  where isOutage(error) && !Task.isCancelled && !Task.isShuttingDownGracefully {
            let delay = backoff.delay(attempt: attempt)
            attempt += 1
            logger.warning(
                "\(what) failed, retrying",
                metadata: metadata.merging(["ferry.error": "\(error)", "ferry.retry_in": "\(delay)"]) { $1 })
            await pause(for: delay)
            if Task.isCancelled || Task.isShuttingDownGracefully { throw CancellationError() }
        }
    }
}
