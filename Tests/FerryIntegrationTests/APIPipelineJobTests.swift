import Crypto
import FerryAPI
import FerryCore
import FerryRedis
import FerrySandbox
import Foundation
import HTTPTypes
import Logging
import Testing

@testable import FerryDaemon

/// The daemon's jobs on a real pipeline (source, Redis, mirror in the sandbox): a sync pass needs write on the mirror
/// table (a token for another table is refused), and a repair that would soft-delete more rows than the user's
/// `max_delete_rows` is refused before any row changes; within the limit it repairs.
@Suite(.sandbox) struct APIPipelineJobTests {
    static func user(_ name: String, table: String, access: Permissions.Access, maxDeleteRows: Int?) -> Permissions.User {
        Permissions.User(
            name: name, tokenHash: Array(SHA256.hash(data: Data(name.utf8))),
            grants: [Permissions.Grant(scope: .table(table), access: access, maxDeleteRows: maxDeleteRows)], admin: false)
    }

    @Test func syncNeedsWriteAndRepairHonoursMaxDeleteRows() async throws {
        let world = try await SyncWorld.make("apijobs", rows: 300)
        let redis = RedisClient(configuration: .init(connection: RedisConnectionConfiguration(world.sandbox.redis!.endpoint)), logger: world.logger)
        defer { Task { await redis.shutdown() } }
        let mirrorTable = "\(world.pipeline.target.schema).\(world.pipeline.target.table)"
        let planner = DaemonJobPlanner(configuration: world.configuration, settings: APISettings(), redis: redis, logger: world.logger)
        let reader = Self.user("reader", table: mirrorTable, access: .read, maxDeleteRows: nil)
        let other = Self.user("other", table: "elsewhere.table", access: .readWrite, maxDeleteRows: nil)
        let careful = Self.user("careful", table: mirrorTable, access: .readWrite, maxDeleteRows: 10)
        let trusted = Self.user("trusted", table: mirrorTable, access: .readWrite, maxDeleteRows: 1000)

        // Permissions first: nothing is planned for a user without write on this mirror.
        for refused in [reader, other] {
            do {
                _ = try await planner.sync(pipeline: world.pipeline.name, user: refused)
                Issue.record("\(refused.name) may sync")
            } catch let error as APIError {
                #expect(error.status == .forbidden && error.error.message.contains(mirrorTable), "\(error.error.message)")
            }
        }
        do {
            _ = try await planner.sync(pipeline: "no_such_pipeline", user: trusted)
            Issue.record("an unknown pipeline was planned")
        } catch let error as APIError {
            #expect(error.status == .notFound)
        }

        // A sync pass as a job.
        let context = JobContextProbe()
        let pass = try await planner.sync(pipeline: world.pipeline.name, user: careful)
        let result = try await pass.work(context.context)
        // Queued once each; on a loaded machine an entry left pending may be claimed and applied again (idempotent), so
        // the mirror is what is compared, not the count.
        #expect(result.contains(#""queued":300"#), "\(result)")
        try await world.expectMirrorEqualsSource()

        // 20 rows leave the source: a repair would soft-delete 20, over careful's 10, so nothing changes.
        try await world.sql("DELETE FROM \(world.table) WHERE \"CONDUCE\" IN (SELECT \"CONDUCE\" FROM \(world.table) ORDER BY 1 LIMIT 20)")
        let repair = try await planner.reconcile(pipeline: world.pipeline.name, repair: true, user: careful)
        do {
            _ = try await repair.work(JobContextProbe().context)
            Issue.record("a repair over max_delete_rows ran")
        } catch let error as FerryError {
            #expect(
                error.code == .permission && error.message.contains("20 rows") && error.message.contains("max_delete_rows of 10"), "\(error.message)")
        }
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE deleted_at IS NOT NULL") == 0, "nothing was soft-deleted")
        // reader may compare but not repair.
        do {
            _ = try await planner.reconcile(pipeline: world.pipeline.name, repair: true, user: reader)
            Issue.record("a reader may repair")
        } catch let error as APIError {
            #expect(error.status == .forbidden)
        }
        let compared = try await planner.reconcile(pipeline: world.pipeline.name, repair: false, user: reader).work(JobContextProbe().context)
        #expect(compared.contains(#""extra":20"#), "\(compared)")
        // Within the limit, the repair runs.
        let repaired = try await planner.reconcile(pipeline: world.pipeline.name, repair: true, user: trusted).work(JobContextProbe().context)
        #expect(repaired.contains(#""soft_deleted":20"#), "\(repaired)")
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE deleted_at IS NOT NULL") == 20)
        await world.close()
    }
}

/// A job context for calling a planned job's work directly.
struct JobContextProbe {
    let context = JobContext(id: UUID())
}
