package import FerryCore
package import Logging
import Metrics
package import ServiceLifecycle

/// The daemon's rule for a job that stops with an error: the job is marked failed, with its error, in the
/// ``JobRegistry`` (so `/health/ready` answers 503 and names it) and in `ferry_job_up{job=…}` (0), the error is
/// logged once, and the other jobs go on. The daemon stays up until SIGTERM/SIGINT: an operator sees the failure
/// and fixes it, instead of a restart loop hiding it or one job's error stopping every other.
///
/// A job that ends without an error (it only does so when the daemon shuts down) is marked stopped.
package struct SupervisedJob: Service {
    package let name: String
    package let job: any Service
    package let registry: JobRegistry
    package let logger: Logger

    package init(name: String, job: any Service, registry: JobRegistry, logger: Logger) {
        self.name = name
        self.job = job
        self.registry = registry
        self.logger = logger
        registry.register(name)
    }

    package func run() async throws {
        let up = Gauge(label: "ferry_job_up", dimensions: [("job", name)])
        registry.update(name, .running)
        up.record(1)
        do {
            try await job.run()
            registry.update(name, .stopped)
        } catch {
            if error is CancellationError && (Task.isCancelled || Task.isShuttingDownGracefully) {
                registry.update(name, .stopped)
                return
            }
            let text = (error as? FerryError)?.description ?? "\(error)"
            registry.update(name, .failed, error: text)
            up.record(0)
            logger.error("job stopped with an error; the other jobs go on", metadata: ["ferry.job": "\(name)", "ferry.error": "\(text)"])
            // Returning would end the whole service group: wait for the daemon's shutdown instead.
            try? await gracefulShutdown()
        }
    }
}
