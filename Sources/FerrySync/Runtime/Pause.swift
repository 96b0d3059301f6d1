import ServiceLifecycle

/// Waits `duration`, cut short by cancellation or by the service group's graceful shutdown (SIGTERM stops a job
/// within its current step, never after a 10-second interval). Never throws: callers check
/// `Task.isCancelled`/`Task.isShuttingDownGracefully` in their loop condition.
func pause(for duration: Duration) async {
    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
}
