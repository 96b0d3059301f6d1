package import FerryCheck
package import FerryCore
package import Logging
import Metrics
package import ServiceLifecycle
import Synchronization

/// Checks every configured server on an interval and keeps the latest answer for `/health/ready` and metrics;
/// readiness also needs every job of the daemon to be running (a failed one is named).
package final class ReadinessMonitor: Service, Sendable {
    package struct Snapshot: Sendable {
        /// `nil` until the first round finished.
        package var checks: [EndpointCheck]?
        /// The daemon's jobs as they are now.
        package var jobs: [JobRegistry.Job] = []
        package var isReady: Bool { (checks?.allSatisfy(\.isOK) ?? false) && !jobs.contains { $0.state == .failed || $0.state == .stalled } }
    }

    private let configuration: FerryConfiguration
    private let interval: Duration
    private let logger: Logger
    private let checks = Mutex<[EndpointCheck]?>(nil)
    private let etcd: EtcdCheck?
    private let jobs: JobRegistry?

    /// `etcd` adds the HA cluster's etcd endpoints, which the configuration's servers do not list; `jobs` are the
    /// daemon's jobs.
    package init(configuration: FerryConfiguration, etcd: [String] = [], jobs: JobRegistry? = nil, interval: Duration = .seconds(5), logger: Logger) {
        self.configuration = configuration
        self.interval = interval
        self.logger = logger
        self.etcd = etcd.isEmpty ? nil : EtcdCheck(endpoints: etcd)
        self.jobs = jobs
    }

    package var snapshot: Snapshot { Snapshot(checks: checks.withLock { $0 }, jobs: jobs?.snapshot ?? []) }

    package func run() async throws {
        let checker = EndpointChecker(logger: logger)
        var previous: [String: EndpointCheck.Status] = [:]
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var checks = await checker.check(configuration)
            if let etcd { checks += await etcd.run() }
            self.checks.withLock { [checks] in $0 = checks }
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
