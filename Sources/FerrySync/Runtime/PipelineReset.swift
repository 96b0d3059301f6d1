package import FerryCore
import FerryPostgres
package import FerryRedis
import Foundation
package import Logging
import PostgresNIO

/// Starts a pipeline over (`ferry pipeline reset`) or removes what Ferry keeps for it (`ferry pipeline drop`).
///
/// A reset deletes the queue, the checkpoint and the schemas in Redis, and the pipeline's rows of `ferry_pipelines`
/// and `ferry_applied`: the next run reads the whole source again and applies every row as a new version. The mirror
/// and the companion stay unless `dropTables` (rows no longer at the source are soft-deleted by the next
/// `reconcile --repair`). A drop also drops both tables and deletes the pipeline's dead letters and events. Each
/// step can be run again: a reset cut short is finished by running it again.
package struct PipelineReset {
    package struct Outcome: Sendable {
        package var redisKeys = 0
        package var droppedTables: [String] = []
    }

    let context: PipelineContext

    package init(_ pipeline: PipelineConfiguration, configuration: FerryConfiguration, redis: RedisClient, logger: Logger) throws {
        context = try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, logger: logger).context
    }

    /// The mirror and companion tables, as they would be dropped.
    package var tables: [String] {
        let target = context.pipeline.target
        var tables = [SQLIdentifier.qualified(target.schema, target.table)]
        if let companion = context.pipeline.companion { tables.insert(SQLIdentifier.qualified(target.schema, companion.table), at: 0) }
        return tables
    }

    /// Refuses while a process runs the pipeline (its running mark is set; one killed with -9 leaves it for up to
    /// 15 seconds).
    package func ensureStopped() async throws {
        let key = context.keys.running
        guard let owner = try await context.redis.send(GET(key)).map({ String(buffer: $0) }) else { return }
        let name = context.pipeline.name
        let left = try await context.redis.send(PTTL(key))
        throw FerryError(
            .conflict, "pipeline \(name) is running (process \(owner))",
            fix:
                "stop the `ferry run` or `ferry sync \(name)` that runs it, then try again; if it was killed, its mark expires in \(max(0, left) / 1000 + 1)s"
        )
    }

    package func reset(dropTables: Bool, forget: Bool = false) async throws -> Outcome {
        var outcome = Outcome()
        let control = context.control
        let logger = context.logger
        let name = context.pipeline.name
        try await context.target.withTransaction { connection in
            try await MirrorDDL.lock(connection, logger)
            let exists = try await connection.query("SELECT to_regclass(\(control.pipelines)) IS NOT NULL", logger: logger)
            var hasControl = false
            for try await value in exists.decode(Bool.self) { hasControl = value }
            if hasControl {
                try await control.ensure(connection, logger: logger)
                var cleared = [control.applied, control.pipelines, control.backfills]
                if forget { cleared += [control.deadLetters, control.events] }
                for table in cleared {
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "DELETE FROM \(table) WHERE pipeline = $1", binds: control.binds(name)), logger: logger)
                }
                if !forget {
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: "INSERT INTO \(control.events) (pipeline, event, detail) VALUES ($1, 'reset', $2)",
                            binds: control.binds(
                                name, dropTables ? "queue, checkpoint and tables dropped" : "queue and checkpoint deleted; tables kept")),
                        logger: logger)
                }
            }
            if dropTables {
                for table in self.tables {
                    try await MirrorDDL.run("DROP TABLE IF EXISTS \(table)", connection, logger, what: "drop \(table)")
                    outcome.droppedTables.append(table)
                }
            }
        }
        let keys = context.keys
        outcome.redisKeys = try await context.redis.send(DEL(keys: [keys.stream, keys.checkpoint, keys.schemas, keys.deadLetters, keys.attempts]))
        logger.notice(
            forget ? "pipeline dropped" : "pipeline reset: the next run reads the whole source again",
            metadata: ["ferry.pipeline": "\(name)", "ferry.redis_keys": "\(outcome.redisKeys)", "ferry.tables": "\(outcome.droppedTables)"])
        await context.source.close()
        await context.target.close()
        return outcome
    }
}
