import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRESP
import FerryRedis
import FerrySandbox
import FerrySync
import Foundation
import Logging
import PostgresNIO
import Testing

@Suite("Table sync against real PostgreSQL and Redis", .timeLimit(.minutes(5)), .sandbox)
struct TableSyncTests {
    @Test func initialLoadThenIncrementalChanges() async throws {
        let world = try await SyncWorld.make("incremental", rows: 2_000) { $0.target.rowID = "sync_id" }
        let first = try await world.runOnce()
        #expect(try await world.int("SELECT count(DISTINCT sync_id) FROM \(world.mirror)") == 2_000, "the seed's sync_id numbers every row")
        #expect(first.produced >= 2_000)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 2_000)
        #expect(try await world.int("SELECT count(*) FROM \(world.companion)") == 2_000, "a companion row for every mirror row")
        try await world.expectMirrorEqualsSource()

        try await world.sql(
            """
            UPDATE \(world.table) SET "CLIENTE" = 'changed', "ULTIMA_MODIFICACION" = "ULTIMA_MODIFICACION" + interval '1 day' WHERE "CONDUCE" <= 'C-0000010'
            """)
        try await world.insert(2_001...2_050)
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE cliente = 'changed'") == 10)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 2_050)
        try await world.expectMirrorEqualsSource()
        let report = try await world.reconcile()
        #expect(report.differences == 0)
        #expect(report.sourceRows == 2_050)
        await world.close()
    }

    /// Range boundaries follow the key's own type: an integer key's ranges never overlap ("10" < "9" as text), and
    /// the report counts each row once.
    @Test func reconcileSplitsAnIntegerKeyInItsOwnOrder() async throws {
        let world = try await SyncWorld.make("intkey", companion: false) { pipeline in
            pipeline.source.table = "src_\(pipeline.name).NUMS"
            pipeline.source.key = ["id"]
            pipeline.source.watermark = "modified"
            pipeline.target.table = "nums"
        }
        try await world.sql(
            """
            CREATE TABLE "\(world.sourceSchema)"."NUMS" (id integer PRIMARY KEY, v text, modified timestamp(6) NOT NULL DEFAULT now());
            INSERT INTO "\(world.sourceSchema)"."NUMS" (id, v) SELECT g, 'v' || g FROM generate_series(1, 50) g
            """)
        _ = try await world.runOnce()
        let report = try await world.reconcile()
        #expect(report.differences == 0)
        #expect(report.sourceRows == 50)
        #expect(report.mirrorRows == 50)
        // Ferry's trigger protects the mirror from edits; a replica-role session passes it, to plant differences.
        try await world.sql(
            "SET session_replication_role = replica;\nUPDATE \"dst_\(world.name)\".nums SET v = 'changed' WHERE id IN (9, 10, 42);\nRESET session_replication_role"
        )
        let changed = try await world.reconcile()
        #expect(Set(changed.different) == [["9"], ["10"], ["42"]])
        #expect(changed.sourceRows == 50)
        await world.close()
    }

    /// Source and mirror order a text key by different collations (here ICU at the source, C in the mirror's database;
    /// in production, a case-insensitive SQL Server collation): a key range holds other keys on each side. Such keys
    /// are looked up by key before they count, so reconcile reports nothing and its repair soft-deletes nothing.
    @Test func keysOrderedByAnotherCollationAreNeverSoftDeleted() async throws {
        let world = try await SyncWorld.make("collate", companion: false) { pipeline in
            pipeline.source.table = "src_\(pipeline.name).CODES"
            pipeline.source.key = ["code"]
            pipeline.source.watermark = "modified"
            pipeline.target.table = "codes"
        }
        try await world.sql(
            """
            CREATE TABLE "\(world.sourceSchema)"."CODES" (code text COLLATE "und-x-icu" PRIMARY KEY, v text, modified timestamp(6) NOT NULL DEFAULT now());
            INSERT INTO "\(world.sourceSchema)"."CODES" (code, v)
              SELECT c || lpad(g::text, 3, '0'), 'v' || g FROM generate_series(1, 150) g, (VALUES ('k'), ('K')) AS cases(c)
            """)
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \"dst_\(world.name)\".codes") == 300)
        let report = try await world.reconcile(repair: true)
        #expect(
            report.differences == 0, "missing \(report.missing.prefix(3)), extra \(report.extra.prefix(3)), different \(report.different.prefix(3))")
        #expect(report.softDeleted == 0)
        #expect(try await world.int("SELECT count(*) FROM \"dst_\(world.name)\".codes WHERE deleted_at IS NULL") == 300)
        await world.close()
    }

    @Test func awkwardTextArrivesExactly() async throws {
        // Bound as text[] arrays: tabs, newlines, backslashes, the two characters \N, an empty string and NULL all
        // arrive as they are at the source.
        let world = try await SyncWorld.make("awkward", rows: 10)
        try await world.sql(
            """
            UPDATE \(world.table) SET "NUMERO_FACTURA" = (ARRAY[E'tab\\there', E'line\\nbreak', E'back\\\\slash', E'\\\\N', '', NULL, 'ñandú ✓',
              E'cr\\rlf\\n', E'\\\\x41', ' lead trail '])[substr("CONDUCE", 3)::int]
            """)
        _ = try await world.runOnce()
        #expect(
            try await world.strings("SELECT numero_factura FROM \(world.mirror) ORDER BY conduce") == [
                "tab\there", "line\nbreak", "back\\slash", "\\N", "", nil, "ñandú ✓", "cr\rlf\n", "\\x41", " lead trail ",
            ])
        try await world.expectMirrorEqualsSource()
        await world.close()
    }

    @Test func manyRowsWithTheSameWatermarkAreNeitherSkippedNorDuplicated() async throws {
        let world = try await SyncWorld.make("samewm") { $0.batchSize = 97 }
        try await world.insert(1...1_500, watermark: "2025-03-01 10:00:00")
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 1_500)
        try await world.insert(1_501...1_600, watermark: "2025-03-01 10:00:00")
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 1_600)
        try await world.expectMirrorEqualsSource()
        await world.close()
    }

    @Test func aTransactionThatCommitsLateInsideTheLookbackIsPickedUp() async throws {
        let world = try await SyncWorld.make("late", rows: 100) { $0.source.lookback = .seconds(60) }
        _ = try await world.runOnce()
        // A writer stamps its row with its transaction's start time but commits after later rows were synced.
        let postgres = try #require(world.sandbox.postgres)
        let late = PostgresSession(endpoint: postgres.endpoint, key: "late", logger: world.logger)
        try await late.withConnection { connection in
            try await connection.query("BEGIN", logger: world.logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(world.table) VALUES ('C-LATE', date '2025-01-01', false, NULL, 'CL', 'late', timestamp '2025-01-01' + interval '100 seconds' + interval '0.5 seconds')
                        """),
                logger: world.logger)
        }
        try await world.insert(101...120)
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-LATE'") == 0, "not committed yet")
        try await late.withConnection { connection in try await connection.query("COMMIT", logger: world.logger) }
        await late.close()
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-LATE'") == 1, "the lookback window found the late row")
        try await world.expectMirrorEqualsSource()
        await world.close()
    }

    /// The running producer sweeps the window in slices, each sweep reading only rows written since the previous
    /// one began: a late commit, including one made in a subtransaction, still reaches the mirror.
    @Test func aRunningPipelineFindsLateCommitsWithSlicedSweeps() async throws {
        let world = try await SyncWorld.make("sweep", rows: 50) {
            $0.source.lookback = .seconds(30)
            $0.source.lookbackEvery = .milliseconds(400)
        }
        let redis = RedisClient(configuration: .init(connection: RedisConnectionConfiguration(world.sandbox.redis!.endpoint)), logger: world.logger)
        let pipeline = try TableSyncPipeline(world.pipeline, configuration: world.configuration, redis: redis, logger: world.logger)
        let running = Task { try await pipeline.run() }
        defer { running.cancel() }  // a failing test leaves nothing running
        defer { running.cancel() }
        func waitFor(_ query: String, _ expected: Int, _ what: String) async throws {
            try await eventually(what, timeout: .seconds(60), every: .milliseconds(50)) { try await world.int(query) == expected }
        }
        try await waitFor("SELECT count(*) FROM \(world.mirror)", 50, "the first 50 rows")
        let postgres = try #require(world.sandbox.postgres)
        let late = PostgresSession(endpoint: postgres.endpoint, key: "late", logger: world.logger)
        try await late.withConnection { connection in
            try await connection.query("BEGIN", logger: world.logger)
            try await connection.query("SAVEPOINT s", logger: world.logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(world.table) VALUES ('C-LATE', date '2025-01-01', false, NULL, 'CL', 'late', localtimestamp - interval '1 second')
                        """),
                logger: world.logger)
            try await connection.query("RELEASE s", logger: world.logger)
            // Live rows move the checkpoint past the late row's watermark, and a few sweeps go by.
            for index in 51...70 {
                try await world.insert(index...index, now: true)
                try await Task.sleep(for: .milliseconds(50))
            }
            try await connection.query("COMMIT", logger: world.logger)
        }
        await late.close()
        try await waitFor("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-LATE'", 1, "a sweep to find the late row")
        try await waitFor("SELECT count(*) FROM \(world.mirror)", 71, "all 71 rows")
        running.cancel()
        _ = await running.result
        await redis.shutdown()
        try await world.expectMirrorEqualsSource()
        await world.close()
    }

    /// A change mark leaves out rows committed before it and keeps every row written by a transaction that was
    /// running when it was taken (also from a subtransaction) or started later; views have no mark.
    @Test func aChangeMarkSkipsRowsCommittedBeforeIt() async throws {
        let world = try await SyncWorld.make("mark", rows: 100)
        let postgres = try #require(world.sandbox.postgres)
        let source = try world.tableSource()
        let schema = try await source.describe()
        let upper = SourcePosition(watermark: "2030-01-01 00:00:00", key: ["Z"])
        func keys(since mark: String?) async throws -> [String] {
            var rows = CopyTextRows()
            try await source.readWindow(
                from: "2020-01-01", below: nil, through: upper, after: nil, changedSince: mark, tailReads: [], limit: 10_000, schema: schema,
                into: &rows)
            return (0..<rows.rowCount).map { rows.fields(ofRow: $0)[0] ?? "" }
        }
        #expect(try await keys(since: nil).count == 100)
        let first = try #require(try await source.changeMark())
        #expect(try await keys(since: first).isEmpty, "rows committed before the mark are left out")

        let open = PostgresSession(endpoint: postgres.endpoint, key: "open", logger: world.logger)
        try await open.withConnection { connection in
            try await connection.query("BEGIN", logger: world.logger)
            try await connection.query("SAVEPOINT s", logger: world.logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "INSERT INTO \(world.table) VALUES ('C-SUB', date '2025-01-01', false, NULL, 'CL', 'sub', timestamp '2025-01-01 00:00:05')"),
                logger: world.logger)
            try await connection.query("RELEASE s", logger: world.logger)
            let second = try #require(try await source.changeMark())
            try await world.sql("UPDATE \(world.table) SET \"CLIENTE\" = 'moved' WHERE \"CONDUCE\" = 'C-0000007'")
            try await connection.query("COMMIT", logger: world.logger)
            #expect(Set(try await keys(since: second)) == ["C-SUB", "C-0000007"], "the running transaction's row and a later update")
            #expect(Set(try await keys(since: first)) == ["C-SUB", "C-0000007"])
        }
        await open.close()

        try await world.sql("CREATE VIEW \"\(world.sourceSchema)\".ventas_view AS SELECT * FROM \(world.table)")
        let view = try world.tableSource("ventas_view")
        #expect(try await view.changeMark() == nil, "a view's rows carry no versions: every sweep reads the whole window")
        await view.close()
        await source.close()
        await world.close()
    }

    @Test func aSweepLeavesOutWhatATailReadSaw() async throws {
        let world = try await SyncWorld.make("tailread", rows: 100)
        let postgres = try #require(world.sandbox.postgres)
        let source = try world.tableSource()
        let schema = try await source.describe()
        let base = try #require(try await source.changeMark())
        var all = CopyTextRows()
        #expect(
            try await source.readChanges(after: nil, limit: 1_000, schema: schema, into: &all) != nil, "a table's read brings its snapshot's mark")
        #expect(all.rowCount == 100 && all.fields(ofRow: 0).count == 7, "the mark is not a row field")
        let last = all.fields(ofRow: 99)
        let tailStart = SourcePosition(watermark: last[6], key: [last[0] ?? ""])

        // Committed before the tail read: one above where it starts (it reads it), one below (a late commit it misses).
        try await world.sql("UPDATE \(world.table) SET \"ULTIMA_MODIFICACION\" = timestamp '2025-01-01 00:10:00' WHERE \"CONDUCE\" = 'C-0000090'")
        try await world.sql("UPDATE \(world.table) SET \"CLIENTE\" = 'late' WHERE \"CONDUCE\" = 'C-0000010'")
        // Running during the tail read: whatever its watermark, the read cannot have seen it.
        let open = PostgresSession(endpoint: postgres.endpoint, key: "open", logger: world.logger)
        try await open.withConnection { connection in
            try await connection.query("BEGIN", logger: world.logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: "UPDATE \(world.table) SET \"ULTIMA_MODIFICACION\" = timestamp '2025-01-01 00:11:00' WHERE \"CONDUCE\" = 'C-0000020'"),
                logger: world.logger)
            // Other tests' transactions on this server may hold the oldest running transaction back for a moment:
            // read until the read's mark is past the update (the same read, repeated, proves the same).
            let updated = try #require(try await world.strings("SELECT xmin::text FROM \(world.table) WHERE \"CONDUCE\" = 'C-0000090'").first)
            let updatedXID = try #require(updated.flatMap { Int64($0) })
            var mark = ""
            for _ in 0..<100 {
                var tail = CopyTextRows()
                mark = try #require(try await source.readChanges(after: tailStart, limit: 1_000, schema: schema, into: &tail))
                #expect((0..<tail.rowCount).map { tail.fields(ofRow: $0)[0] ?? "" } == ["C-0000090"])
                if let value = Int64(mark), value % 4_294_967_296 > updatedXID { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await connection.query("COMMIT", logger: world.logger)

            func keys(_ reads: [TailRead]) async throws -> Set<String> {
                var rows = CopyTextRows()
                try await source.readWindow(
                    from: "2020-01-01", below: nil, through: SourcePosition(watermark: "2030-01-01 00:00:00", key: ["Z"]), after: nil,
                    changedSince: base, tailReads: reads, limit: 10_000, schema: schema, into: &rows)
                return Set((0..<rows.rowCount).map { rows.fields(ofRow: $0)[0] ?? "" })
            }
            #expect(try await keys([]) == ["C-0000010", "C-0000020", "C-0000090"])
            #expect(
                try await keys([TailRead(mark: mark, position: tailStart)]) == ["C-0000010", "C-0000020"],
                "the version the tail read saw is left out; the late commit below it and the one running during it are not")
            let early = TailRead(mark: base, position: SourcePosition(watermark: "2020-01-01 00:00:00", key: [""]))
            #expect(try await keys([early]) == ["C-0000010", "C-0000020", "C-0000090"], "a read whose mark is not after the base proves nothing")
        }
        await open.close()
        await source.close()
        await world.close()
    }

    @Test func rowsOlderThanTheLookbackAreFoundByReconcile() async throws {
        let world = try await SyncWorld.make("older", rows: 300) { $0.source.lookback = .seconds(5) }
        _ = try await world.runOnce()
        try await world.sql(
            "INSERT INTO \(world.table) VALUES ('C-OLD', date '2025-01-01', false, NULL, 'CL', 'old', timestamp '2025-01-01 00:00:30')")
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-OLD'") == 0)
        let report = try await world.reconcile()
        #expect(report.missing == [["C-OLD"]])
        let repaired = try await world.reconcile(repair: true)
        #expect(repaired.repaired == 1)
        #expect(try await world.reconcile().differences == 0)
        #expect(try await world.int("SELECT count(*) FROM \(world.companion) WHERE conduce = 'C-OLD'") == 1)
        await world.close()
    }

    @Test func nullWatermarksAreLoadedByKeyOrRefused() async throws {
        let world = try await SyncWorld.make("nullwm", rows: 50)
        try await world.sql("UPDATE \(world.table) SET \"ULTIMA_MODIFICACION\" = NULL WHERE \"CONDUCE\" <= 'C-0000005'")
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 50)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE ultima_modificacion IS NULL") == 5)
        try await world.sql(
            "INSERT INTO \(world.table) VALUES ('C-NULL-LATER', date '2025-01-01', false, NULL, 'CL', 'n', NULL)")
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-NULL-LATER'") == 1)

        var refusing = world
        refusing.pipeline.source.nullWatermark = .refuse
        await #expect {
            _ = try await refusing.runOnce()
        } throws: { error in
            let description = "\(error)"
            return description.contains("6 source rows have a NULL ULTIMA_MODIFICACION") && description.contains("null_watermark")
        }
        await world.close()
    }

    @Test func aPoisonRowGoesToTheDeadLettersAndTheOthersApply() async throws {
        let world = try await SyncWorld.make("poison", rows: 400) { $0.columns = [.init(source: "NUMERO_FACTURA", type: "varchar(6)")] }
        try await world.sql("UPDATE \(world.table) SET \"NUMERO_FACTURA\" = 'F-TOO-LONG-FOR-SIX' WHERE \"CONDUCE\" = 'C-0000123'")
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 399)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-0000123'") == 0)
        let dead = try await world.strings(
            "SELECT row_data->>'CONDUCE' || ' | ' || reason || ' | ' || coalesce(sqlstate, '') FROM \"\(world.targetSchema)\".ferry_dead_letters WHERE pipeline = '\(world.name)'"
        )
        #expect(dead.count == 1)
        #expect(dead.first??.hasPrefix("C-0000123 | value too long for type character varying(6)") == true, "\(dead)")
        #expect(dead.first??.hasSuffix("| 22001") == true)
        let redis = try #require(world.sandbox.redis)
        let deadStream = try await RedisAdmin.send(redis, ["XLEN", "ferry:{\(world.name)}:dead"])
        #expect(try deadStream.decode(as: Int.self) == 1)
        // The queue is fully acknowledged: nothing is left pending.
        let pending = try await RedisAdmin.send(redis, ["XPENDING", "ferry:{\(world.name)}:changes", "ferry"])
        #expect(try pending.elements().first?.decode(as: Int.self) == 0)
        await world.close()
    }

    @Test func aMalformedQueueRowGoesToTheDeadLettersAndTheOthersApply() async throws {
        // Another program wrote an entry whose second row lacks fields: a data error like a value PostgreSQL refuses.
        let world = try await SyncWorld.make("malformed", rows: 10)
        _ = try await world.runOnce()
        let redis = try #require(world.sandbox.redis)
        let keys = QueueKeys(pipeline: world.name)
        let fingerprint = try #require(try await RedisAdmin.send(redis, ["HKEYS", keys.schemas]).elements().first?.decode(as: String.self))
        let data =
            "9000001\tC-GOOD\t2025-02-01\tf\t\\N\tCL-1\tgood\t2025-02-01 00:00:00\n"
            + "9000002\tC-SHORT\t2025-02-01\tf\n"
            + "9000003\tC-GOOD2\t2025-02-01\tt\tF-1\tCL-2\tgood too\t2025-02-01 00:00:01\n"
        _ = try await RedisAdmin.send(redis, ["XADD", keys.stream, "*", "v", "1", "schema", fingerprint, "rows", "3", "data", data])
        _ = try await world.runOnce()
        #expect(try await world.strings("SELECT conduce FROM \(world.mirror) WHERE conduce LIKE 'C-GOOD%' ORDER BY 1") == ["C-GOOD", "C-GOOD2"])
        let dead = try await world.strings(
            "SELECT row_data->>'CONDUCE' || ' | ' || reason FROM \"\(world.targetSchema)\".ferry_dead_letters WHERE pipeline = '\(world.name)'")
        #expect(dead.count == 1)
        #expect(dead.first??.hasPrefix("C-SHORT | the row starting \"9000002\" has 4 fields, not 8 (a malformed queue entry") == true, "\(dead)")
        let pending = try await RedisAdmin.send(redis, ["XPENDING", keys.stream, "ferry"])
        #expect(try pending.elements().first?.decode(as: Int.self) == 0)
        await world.close()
    }

    /// Consumers killed for reasons of their own (a crash loop, an OOM kill) raise the delivery counts of every
    /// entry they held; that alone must not push good rows aside. Only an entry whose solo attempts keep ending
    /// with the consumer stopped goes to the dead letters whole.
    @Test func deliveryCountsAloneNeverCondemnAnEntry() async throws {
        let world = try await SyncWorld.make("redeliver", rows: 1_000) {
            $0.rowsPerEntry = 100
            $0.claimIdle = .seconds(1)
            $0.consumers = 1  // two would race for the claimed entries on a loaded machine; one keeps the count exact
        }
        var produceOnly = TableSyncPipeline.Options()
        produceOnly.consume = false
        _ = try await world.runOnce(options: produceOnly)
        let redis = try #require(world.sandbox.redis)
        let stream = "ferry:{\(world.name)}:changes"
        let ids = try await RedisAdmin.send(redis, ["XRANGE", stream, "-", "+"]).elements().map {
            try $0.elements()[0].decode(as: String.self)
        }
        #expect(ids.count == 10)
        // Twelve consumers took every entry in turn and died without acknowledging: delivery count 12 each.
        _ = try await RedisAdmin.send(redis, ["XREADGROUP", "GROUP", "ferry", "gone-0", "STREAMS", stream, ">"])
        for index in 1..<12 {
            _ = try await RedisAdmin.send(redis, ["XCLAIM", stream, "ferry", "gone-\(index)", "0"] + ids)
        }
        // One entry also stopped the consumer on each of its max_deliveries solo attempts.
        let condemned = ids[4]
        _ = try await RedisAdmin.send(redis, ["HSET", "ferry:{\(world.name)}:attempts", "\(stream) \(condemned)", "\(world.pipeline.maxDeliveries)"])
        try await Task.sleep(for: .milliseconds(1_100))

        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 900)
        let dead = try await world.strings(
            "SELECT DISTINCT stream_id || ' | ' || reason FROM \"\(world.targetSchema)\".ferry_dead_letters WHERE pipeline = '\(world.name)'")
        #expect(dead.count == 1)
        #expect(dead.first??.hasPrefix("\(condemned) | a consumer stopped 5 times while applying this entry on its own") == true, "\(dead)")
        #expect(try await world.int("SELECT count(*) FROM \"\(world.targetSchema)\".ferry_dead_letters WHERE pipeline = '\(world.name)'") == 100)
        let attempts = try await RedisAdmin.send(redis, ["HLEN", "ferry:{\(world.name)}:attempts"])
        #expect(try attempts.decode(as: Int.self) == 0, "solo attempts are forgotten once an entry is settled")
        let pending = try await RedisAdmin.send(redis, ["XPENDING", stream, "ferry"])
        #expect(try pending.elements().first?.decode(as: Int.self) == 0)
        // The rows of the condemned entry come back with a repair, as for any dead letter.
        let repaired = try await world.reconcile(repair: true)
        #expect(repaired.differences == 100)
        try await world.expectMirrorEqualsSource()
        await world.close()
    }

    @Test func companionEditsSurviveSourceUpdatesAndSoftDeletes() async throws {
        let world = try await SyncWorld.make("companion", rows: 200)
        _ = try await world.runOnce()
        try await world.sql("UPDATE \(world.companion) SET nota = 'llamar antes', ruta = 'R7', trabajado = true WHERE conduce = 'C-0000042'")
        try await world.sql(
            "UPDATE \(world.table) SET \"FACTURADO\" = NOT \"FACTURADO\", \"ULTIMA_MODIFICACION\" = now() WHERE \"CONDUCE\" IN ('C-0000042', 'C-0000043')"
        )
        _ = try await world.runOnce()
        #expect(
            try await world.strings("SELECT nota || '/' || ruta || '/' || trabajado::text FROM \(world.companion) WHERE conduce = 'C-0000042'") == [
                "llamar antes/R7/true"
            ])
        try await world.expectMirrorEqualsSource()

        try await world.sql("DELETE FROM \(world.table) WHERE \"CONDUCE\" = 'C-0000042'")
        let report = try await world.reconcile()
        #expect(report.extra == [["C-0000042"]])
        let repaired = try await world.reconcile(repair: true)
        #expect(repaired.softDeleted == 1)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-0000042' AND deleted_at IS NOT NULL") == 1)
        #expect(
            try await world.strings("SELECT nota FROM \(world.companion) WHERE conduce = 'C-0000042'") == ["llamar antes"],
            "a soft delete keeps the companion row")
        #expect(try await world.reconcile().differences == 0)
        await world.close()
    }

    @Test func aColumnAddedAtTheSourceAppearsInTheMirror() async throws {
        let world = try await SyncWorld.make("addcol", rows: 100)
        _ = try await world.runOnce()
        try await world.sql(
            """
            ALTER TABLE \(world.table) ADD COLUMN "ZONA" text;
            UPDATE \(world.table) SET "ZONA" = 'norte', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" <= 'C-0000010'
            """)
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE zona = 'norte'") == 10)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE zona IS NULL") == 90)
        #expect(try await world.reconcile().differences == 0)
        await world.close()
    }

    @Test func anIncompatibleTypeChangeStopsThePipelineNamingTheColumn() async throws {
        let world = try await SyncWorld.make("typechange", rows: 20)
        _ = try await world.runOnce()
        try await world.sql(
            """
            ALTER TABLE \(world.table) ALTER COLUMN "FACTURADO" TYPE text;
            UPDATE \(world.table) SET "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000001'
            """)
        await #expect {
            _ = try await world.runOnce()
        } throws: { error in
            let text = "\(error)"
            return text.contains("source column \"FACTURADO\" is now text") && text.contains("datos_vista.facturado is boolean")
        }
        await world.close()
    }

    @Test func theMirrorRefusesEditsFromOtherSessions() async throws {
        let world = try await SyncWorld.make("protect", rows: 5)
        _ = try await world.runOnce()
        await #expect {
            try await world.sql("UPDATE \(world.mirror) SET cliente = 'manual'")
        } throws: { error in
            PostgresDiagnosis.serverMessage(of: error)?.contains("is written only by Ferry") == true
        }
        await world.close()
    }

    @Test func severalConsumersApplyEveryRowOnce() async throws {
        let world = try await SyncWorld.make("consumers", rows: 3_000) { $0.consumers = 4 }
        let result = try await world.runOnce()
        #expect(result.applied >= 3_000)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 3_000)
        try await world.expectMirrorEqualsSource()

        // Each consumer records what it applied in its own row of ferry_applied (no shared row lock between
        // their commits); the status adds them up, with what an older version recorded in ferry_pipelines.
        let applied = "\"\(world.targetSchema)\".ferry_applied"
        #expect(try await world.int("SELECT count(*) FROM \(applied) WHERE pipeline = '\(world.pipeline.name)'") >= 1)
        #expect(try await world.int("SELECT sum(applied_rows)::int FROM \(applied) WHERE pipeline = '\(world.pipeline.name)'") == result.applied)
        try await world.sql(
            "UPDATE \"\(world.targetSchema)\".ferry_pipelines SET applied_rows = 7, applied_seq = 1 WHERE pipeline = '\(world.pipeline.name)'")
        // The rate counts slots applied within the last minute: on a loaded machine the pass itself may take longer.
        try await world.sql("UPDATE \(applied) SET applied_at = now() WHERE pipeline = '\(world.pipeline.name)'")
        let redis = RedisClient(configuration: .init(connection: RedisConnectionConfiguration(world.sandbox.redis!.endpoint)), logger: world.logger)
        let status = await PipelineStatus.collect(world.pipeline, configuration: world.configuration, redis: redis, logger: world.logger)
        #expect(status.problems.isEmpty, "\(status.problems)")
        #expect(status.rowsApplied == Int64(result.applied + 7))
        #expect(status.lastApplied != nil)
        #expect((status.rowsPerSecond ?? 0) > 0, "the slots applied within the last minute")
        // A schema an older version set up, read by `ferry status` before any consumer ran: no ferry_applied yet.
        try await world.sql("DROP TABLE \(applied)")
        let older = await PipelineStatus.collect(world.pipeline, configuration: world.configuration, redis: redis, logger: world.logger)
        await redis.shutdown()
        #expect(older.problems.isEmpty, "\(older.problems)")
        #expect(older.rowsApplied == 7)
        await world.close()
    }

    @Test func aQueryCanBeTheSource() async throws {
        var world = try await SyncWorld.make("query", rows: 100)
        world.pipeline.source.table = nil
        world.pipeline.source.query = "SELECT * FROM \(world.table) WHERE \"FACTURADO\""
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 33)
        await world.close()
    }
}

@Suite(
    "Table sync refuses an unsafe Redis", .timeLimit(.minutes(2)),
    .sandbox { $0.redisConfiguration = ["maxmemory 64mb", "maxmemory-policy allkeys-lru"] })
struct UnsafeRedisTests {
    @Test func evictionPolicyIsRefusedUnlessAllowed() async throws {
        let world = try await SyncWorld.make("unsafe", rows: 10)
        await #expect {
            _ = try await world.runOnce()
        } throws: { error in
            let text = "\(error)"
            return text.contains("maxmemory-policy is allkeys-lru") && text.contains("--allow-unsafe-redis")
        }
        var options = TableSyncPipeline.Options()
        options.allowUnsafeRedis = true
        _ = try await world.runOnce(options: options)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 10)
        await world.close()
    }
}
