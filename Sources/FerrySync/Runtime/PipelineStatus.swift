package import FerryCore
import FerryPostgres
package import FerryRedis
package import Foundation
package import Logging
import PostgresNIO

/// What `ferry status` shows for one pipeline, read from Redis and the control table.
package struct PipelineStatus: Sendable {
    package var pipeline: String
    /// Watermark of the producer's checkpoint.
    package var sourceWatermark: String?
    /// Entries in the stream.
    package var queueLength: Int?
    /// Entries delivered but not acknowledged.
    package var pending: Int?
    /// Entries not yet delivered to the group (Redis 7's lag).
    package var lag: Int?
    package var consumers: Int?
    package var rowsProduced: Int64?
    package var rowsApplied: Int64?
    /// Rows per second applied over the last minute.
    package var rowsPerSecond: Double?
    package var lastApplied: Date?
    package var lastError: String?
    package var lastErrorAt: Date?
    /// The pipeline's last run stopped on `lastError` (an error retrying could not fix); it runs again only when
    /// restarted.
    package var failed: Bool { lastError.map { $0.hasPrefix(ControlTables.stoppedPrefix) } ?? false }
    package var deadLetters: Int?
    /// The last backfill of columns added at the source (running, or finished).
    package var backfill: Backfill?
    /// Problems reading the status itself (a server down).
    package var problems: [String] = []

    package struct Backfill: Sendable {
        package var columns: [String]
        /// Rows queued so far.
        package var rows: Int64
        /// The source's estimated row count when it began.
        package var total: Int64?
        package var startedAt: Date?
        package var finishedAt: Date?
    }

    package static func collect(_ pipeline: PipelineConfiguration, configuration: FerryConfiguration, redis: RedisClient, logger: Logger) async
        -> PipelineStatus
    {
        var status = PipelineStatus(pipeline: pipeline.name)
        let keys = QueueKeys(pipeline: pipeline.name)
        do {
            status.queueLength = try await redis.send(XLEN(keys.stream))
            let groups = try await redis.send(XINFOGROUPS(keys.stream))
            if let group = groups.first(where: { $0.name == QueueKeys.group }) {
                status.pending = group.pending
                status.lag = group.lag
                status.consumers = group.consumers
            }
            let checkpoint = try await redis.send(HGET(keys.checkpoint, "position"))
            if let checkpoint, let position = try? JSONDecoder().decode(SourcePosition.self, from: Data(buffer: checkpoint)) {
                status.sourceWatermark = position.watermark
            }
        } catch {
            status.problems.append("Redis: \(error)")
        }
        guard let postgres = configuration.postgres else { return status }
        let session = PostgresSession(endpoint: postgres, key: "postgres", logger: logger)
        let control = ControlTables(schema: postgres.schema, pipeline: pipeline.name)
        do {
            try await session.withConnection { connection in
                let exists = try await connection.query("SELECT to_regclass(\(control.pipelines)) IS NOT NULL", logger: logger)
                for try await present in exists.decode(Bool.self) where !present { return }
                if let state = try await control.load(connection, logger: logger) {
                    status.rowsProduced = state.producedRows
                    status.rowsApplied = state.appliedRows
                    status.lastApplied = state.appliedAt
                    status.rowsPerSecond = state.appliedAt.map { Date().timeIntervalSince($0) < 60 } == true ? state.appliedRate : 0
                    status.lastError = state.lastError
                    status.lastErrorAt = state.lastErrorAt
                    if status.sourceWatermark == nil { status.sourceWatermark = state.producedPosition?.watermark }
                }
                if let backfill = try await control.loadBackfill(connection, logger: logger) {
                    status.backfill = Backfill(
                        columns: backfill.columns, rows: backfill.rows, total: backfill.total, startedAt: backfill.startedAt,
                        finishedAt: backfill.finishedAt)
                }
                let dead = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(control.deadLetters) WHERE pipeline = $1", binds: control.binds(pipeline.name)),
                    logger: logger)
                for try await count in dead.decode(Int64.self) { status.deadLetters = Int(count) }
            }
        } catch {
            status.problems.append("PostgreSQL: \(PostgresDiagnosis.diagnose(error, endpoint: postgres))")
        }
        await session.close()
        return status
    }
}
