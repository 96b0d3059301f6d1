public import FerryCheck
public import FerryCore
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Checks every configured server on an interval and keeps the latest answer for `/health/ready` and metrics.
public final class ReadinessMonitor: Service, Sendable {
    public struct Snapshot: Sendable {
        /// `nil` until the first round finished.
        public var checks: [EndpointCheck]?
        public var isReady: Bool { checks?.allSatisfy(\.isOK) ?? false }
    }

    private let configuration: FerryConfiguration
    private let interval: Duration
    private let logger: Logger
    private let state = Mutex(Snapshot(checks: nil))
    private let extraChecks: @Sendable () async -> [EndpointCheck]

    /// `extraChecks` adds servers the configuration's endpoints do not list (the HA cluster's etcd).
    public init(
        configuration: FerryConfiguration, interval: Duration = .seconds(5), logger: Logger,
        extraChecks: @escaping @Sendable () async -> [EndpointCheck] = { [] }
    ) {
        self.configuration = configuration
        self.interval = interval
        self.logger = logger
        self.extraChecks = extraChecks
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    public func run() async throws {
        let checker = EndpointChecker(logger: logger)
        var previous: [String: EndpointCheck.Status] = [:]
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let checks = await checker.check(configuration) + extraChecks()
            state.withLock { $0.checks = checks }
            for check in checks {
                Gauge(label: "ferry_endpoint_up", dimensions: [("endpoint", check.name)]).record(check.isOK ? 1 : 0)
                if let latency = check.latency {
                    Gauge(label: "ferry_endpoint_latency_seconds", dimensions: [("endpoint", check.name)]).record(latency.seconds)
                }
                if previous[check.name] != check.status {
                    if check.isOK {
                        logger.info("endpoint ok", metadata: ["ferry.endpoint": "\(check.name)", "ferry.address": "\(check.address)"])
                    } else {
                        logger.warning(
                            "endpoint not ready: \(check.detail)",
                            metadata: [
                                "ferry.endpoint": "\(check.name)", "ferry.address": "\(check.address)", "ferry.status": "\(check.status.rawValue)",
                            ]
                        )
                    }
                }
                previous[check.name] = check.status
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }
}
