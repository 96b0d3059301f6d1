import FerryCore
import FerryRedis
import FerrySync
import Logging
import ServiceLifecycle

/// Runs `reconcile --repair` for one pipeline on its `reconcile_every` schedule inside `ferry run`.
struct ReconcileSchedule: Service {
    let pipeline: PipelineConfiguration
    let configuration: FerryConfiguration
    let redis: RedisClient
    let every: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: every) }
            } catch {
                return
            }
            do {
                let report = try await Reconciler(pipeline, configuration: configuration, redis: redis, logger: logger).run(repair: true)
                logger.info(
                    "scheduled reconcile",
                    metadata: [
                        "ferry.pipeline": "\(pipeline.name)", "ferry.differences": "\(report.differences)", "ferry.repaired": "\(report.repaired)",
                        "ferry.soft_deleted": "\(report.softDeleted)",
                    ])
            } catch {
                logger.warning("scheduled reconcile failed", metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.error": "\(error)"])
            }
        }
    }
}
