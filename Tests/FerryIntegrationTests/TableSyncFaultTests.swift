import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRedis
import FerrySandbox
import FerrySync
import Foundation
import Logging
import PostgresNIO
import Synchronization
import TDSEmulator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Faults while rows move: the ferry process killed with SIGKILL at random moments, Redis and PostgreSQL
/// restarted. After each, the mirror must equal the source (nothing lost, nothing stale) and no companion edit
/// may be lost.
@Suite("Table sync under faults", .serialized, .timeLimit(.minutes(20)), .sandbox)
struct TableSyncFaultTests {
    /// Changes source rows (and adds some) until stopped; each change bumps the watermark like a real writer.
    final class SourceWriter: Sendable {
        let world: SyncWorld
        /// Whether some changes are deletes (of a few rows; rows inserted later take new keys).
        let deletes: Bool
        let stopped = Atomic(false)
        let changes = Atomic(0)
        let deleted = Atomic(0)

        init(world: SyncWorld, deletes: Bool = false) {
            self.world = world
            self.deletes = deletes
        }

        func run(rows: Int, seed: UInt64) async {
            var generator = SeededRandom(seed: seed)
            var next = rows + 1
            while !stopped.load(ordering: .relaxed), !Task.isCancelled {  // a test that fails cancels its writers: they must end
                let low = Int.random(in: 1...max(1, rows - 40), using: &generator)
                let value = Int.random(in: 0..<1_000_000, using: &generator)
                do {
                    try await world.sql(
                        """
                        UPDATE \(world.table) SET "CLIENTE" = 'v\(value)', "FACTURADO" = NOT "FACTURADO", "ULTIMA_MODIFICACION" = clock_timestamp()
                        WHERE "CONDUCE" BETWEEN '\(SyncWorld.key(low))' AND '\(SyncWorld.key(low + 30))'
                        """)
                    if value % 4 == 0 {
                        try await world.insert(next...(next + 4), now: true)
                        next += 5
                    }
                    if deletes, value % 3 == 0 {
                        let gone = try await world.int(
                            """
                            WITH d AS (DELETE FROM \(world.table) WHERE "CONDUCE" BETWEEN '\(SyncWorld.key(low + 31))' AND '\(SyncWorld.key(low + 33))' RETURNING 1)
                            SELECT count(*) FROM d
                            """)
                        deleted.add(gone, ordering: .relaxed)
                    }
                    changes.add(1, ordering: .relaxed)
                } catch {
                    // The database may be restarting; try again shortly.
                }
                try? await Task.sleep(for: .milliseconds(15))
            }
        }

        func stop() { stopped.store(true, ordering: .relaxed) }
    }

    /// Edits companion rows (like NocoDB users) and remembers the last note written to each key.
    final class CompanionEditor: Sendable {
        let world: SyncWorld
        let stopped = Atomic(false)
        let notes = Mutex<[String: String]>([:])

        init(world: SyncWorld) { self.world = world }

        func run(rows: Int, seed: UInt64) async {
            var generator = SeededRandom(seed: seed)
            var edit = 0
            while !stopped.load(ordering: .relaxed), !Task.isCancelled {  // a test that fails cancels its writers: they must end
                let key = SyncWorld.key(Int.random(in: 1...rows, using: &generator))
                edit += 1
                let note = "edit-\(edit)"
                if let updated = try? await world.int(
                    "WITH u AS (UPDATE \(world.companion) SET nota = '\(note)' WHERE conduce = '\(key)' RETURNING 1) SELECT count(*) FROM u"),
                    updated == 1
                {
                    notes.withLock { $0[key] = note }
                }
                try? await Task.sleep(for: .milliseconds(40))
            }
        }

        func stop() { stopped.store(true, ordering: .relaxed) }

        func verify(_ world: SyncWorld, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let expected = notes.withLock { $0 }
            #expect(!expected.isEmpty, "the editor edited something", sourceLocation: sourceLocation)
            var lost: [String] = []
            for (key, note) in expected {
                let actual = try await world.strings("SELECT nota FROM \(world.companion) WHERE conduce = '\(key)'")
                if actual != [note] { lost.append("\(key): expected \(note), found \(actual)") }
            }
            #expect(lost.isEmpty, "companion edits lost: \(lost.prefix(5))", sourceLocation: sourceLocation)
        }
    }

    /// The configuration as a file for a `ferry` process.
    static func configurationFile(_ world: SyncWorld, directory: String, changeTracking: Bool = false) throws -> String {
        let postgres = world.sandbox.postgres!
        let redis = world.sandbox.redis!
        var sqlserver = ""
        var source = "connection: postgres\n      table: \(world.sourceSchema).VW_VENTAS_SYNC"
        if let endpoint = world.sqlserver {
            sqlserver = """
                sqlserver:
                  host: \(endpoint.host)
                  port: \(endpoint.port)
                  database: \(endpoint.database)
                  user: \(endpoint.user)
                  password: "\(endpoint.password?.value ?? "")"

                """
            source = "connection: sqlserver\n      table: \(world.pipeline.source.table ?? "")"
        }
        let yaml = """
            log:
              level: info
            http:
              enabled: false
            postgres:
              host: 127.0.0.1
              port: \(postgres.port)
              database: \(postgres.database)
              user: \(postgres.user)
              password: "\(postgres.password)"
              schema: \(world.targetSchema)
              tls: disable
            redis:
              host: 127.0.0.1
              port: \(redis.port)
              password: "\(redis.password ?? "")"
            \(sqlserver)pipelines:
              - name: \(world.pipeline.name)
                source:
                  \(source)
                  key: [CONDUCE]
                  \(changeTracking ? "change_tracking: true" : "watermark: ULTIMA_MODIFICACION\n      lookback: 10s")
                target:
                  schema: \(world.targetSchema)
                  table: datos_vista
                interval: 100ms
                batch_size: 2000
                rows_per_entry: 250
                apply_batch_rows: 2000
                claim_idle: 2s
                max_wait: 50ms
                companion:
                  table: datos_seguimiento
                  columns:
                    nota: text
                    ruta: text
                    trabajado: boolean
                    preparador: text
            """
        let path = directory + "/ferry.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// What the kill -9 tests start from: a world of `rows` rows, a scratch directory with its ferry.yaml, and a seed
    /// for the random moments (printed: a failure can be replayed).
    static func killTest(_ name: String, rows: Int) async throws -> (world: SyncWorld, directory: String, seed: UInt64) {
        let world = try await SyncWorld.make(name, rows: rows)
        let directory = try FerryProcess.scratchDirectory()
        _ = try Self.configurationFile(world, directory: directory)
        let seed = UInt64.random(in: 0..<UInt64.max)
        print("\(name): kill -9 test seed \(seed)")
        return (world, directory, seed)
    }

    /// How the kill -9 tests end: one `ferry sync --once` applies what the kills left, then the mirror must equal the
    /// source and reconcile find nothing. Returns reconcile's differences.
    static func drainAndCompare(_ world: SyncWorld, directory: String, timeout: Duration) async throws -> Int {
        let drain = try await FerryProcess.run(["sync", world.pipeline.name, "--once", "--quiet"], in: directory, timeout: timeout)
        #expect(drain.status == 0, "\(drain.stderr.suffix(3000))")
        try await world.expectMirrorEqualsSource()
        let differences = try await world.reconcile().differences
        #expect(differences == 0)
        return differences
    }

    @Test func killNineAtTwentyRandomMomentsLosesNothing() async throws {
        let (world, directory, seed) = try await Self.killTest("kill9", rows: 200_000)
        try await Self.killNineRounds(world, rows: 200_000, rounds: 22, directory: directory, seed: seed)
        await world.close()
    }

    /// The same with the source read from SQL Server (the TDS emulator): kills while pages are read through FreeTDS.
    @Test func killNineWithASQLServerSourceLosesNothing() async throws {
        let base = try await SyncWorld.make("kill9mssql", rows: 50_000)
        try await base.withSQLServerSource { world, _ in
            let directory = try FerryProcess.scratchDirectory()
            _ = try Self.configurationFile(world, directory: directory)
            let seed = UInt64.random(in: 0..<UInt64.max)
            print("kill9mssql: kill -9 test seed \(seed)")
            try await Self.killNineRounds(world, rows: 50_000, rounds: 12, directory: directory, seed: seed)
        }
        await base.close()
    }

    /// The same with SQL Server's Change Tracking instead of a watermark, and a writer that deletes rows too: every
    /// delete reaches the mirror (soft-deleted), none is undone by an older version queued before it.
    @Test func killNineWithChangeTrackingLosesNothing() async throws {
        let base = try await SyncWorld.make("kill9ct", rows: 20_000)
        try await base.withSQLServerSource { world, _ in
            try await world.sql("SELECT sys.enable_change_tracking('\(world.table)')")
            var world = world
            world.pipeline.source.changeTracking = true
            world.pipeline.source.watermark = PipelineConfiguration.Source.changeVersionColumn
            world.pipeline.source.lookback = .zero
            let directory = try FerryProcess.scratchDirectory()
            _ = try Self.configurationFile(world, directory: directory, changeTracking: true)
            let seed = UInt64.random(in: 0..<UInt64.max)
            print("kill9ct: kill -9 test seed \(seed)")
            let deleted = try await Self.killNineRounds(world, rows: 20_000, rounds: 8, directory: directory, seed: seed, deletes: true)
            #expect(deleted > 0, "the writer deleted rows")
            let source = try await world.int("SELECT count(*) FROM \(world.table)")
            let live = try await world.int("SELECT count(*) FROM \(world.mirror) WHERE deleted_at IS NULL")
            #expect(live == source)
            let stillLive = try await world.int(
                "SELECT count(*) FROM \(world.mirror) m WHERE deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM \(world.table) s WHERE s.\"CONDUCE\" = m.conduce)"
            )
            #expect(stillLive == 0, "rows deleted at the source are deleted in the mirror")
        }
        await base.close()
    }

    /// `ferry sync` started and killed with SIGKILL `rounds` times at random moments while a writer changes source rows
    /// and an editor edits companion rows; then drained: the mirror equals the source, no edit lost, no dead letter.
    /// Returns how many rows the writer deleted (with `deletes`).
    @discardableResult
    static func killNineRounds(_ world: SyncWorld, rows: Int, rounds: Int, directory: String, seed: UInt64, deletes: Bool = false) async throws
        -> Int
    {
        var generator = SeededRandom(seed: seed)

        let writer = SourceWriter(world: world, deletes: deletes)
        let editor = CompanionEditor(world: world)
        async let writing: Void = writer.run(rows: rows, seed: seed &+ 1)
        async let editing: Void = editor.run(rows: rows, seed: seed &+ 2)

        var kills = 0
        for round in 0..<rounds {
            let process = try FerryProcess.start(["sync", world.pipeline.name], in: directory)
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...2_500, using: &generator)))
            if round == 0 {
                // The editor needs companion rows to edit: on a loaded machine the first rows may take longer
                // than one random interval. The first kill waits for them (mid-load: the rest are still coming).
                try await eventually("the first companion rows", timeout: .seconds(60), every: .milliseconds(50)) {
                    try await world.int("SELECT count(*) FROM \(world.companion)") > 0
                }
            }
            process.signal(SIGKILL)
            _ = try await process.wait(timeout: .seconds(10))
            #expect(!process.errors().contains("Fatal error"), "\(process.errors().suffix(2000))")
            kills += 1
        }
        writer.stop()
        editor.stop()
        _ = await (writing, editing)
        #expect(kills == rounds)
        #expect(writer.changes.load(ordering: .relaxed) > 20, "the source changed while ferry was killed")

        let differences = try await Self.drainAndCompare(world, directory: directory, timeout: .seconds(600))
        #expect(try await world.int("SELECT count(*) FROM \(world.companion)") == world.int("SELECT count(*) FROM \(world.mirror)"))
        try await editor.verify(world)
        // Nothing in this load is poison: a dead letter here would be a good row a crash pushed aside.
        let dead = try await world.int("SELECT count(*) FROM \"\(world.targetSchema)\".ferry_dead_letters")
        #expect(dead == 0, "kills must not push good entries into the dead letters")
        if differences == 0 && dead == 0 {
            try? FileManager.default.removeItem(atPath: directory)
        } else {
            print("kill -9 test kept its logs in \(directory); dead letters: \(dead)")
        }
        return writer.deleted.load(ordering: .relaxed)
    }

    /// Issue 18's schema-change run: a writer changes rows throughout while the source's columns widen, a column is
    /// added (with a value for every row: backfilled), one becomes text with values the mirror cannot hold (the pipeline stops on its own) and goes back, with
    /// `ferry sync` killed at random moments in between. It ends with the mirror equal to the source, reconcile
    /// finding nothing, and no row in the dead letters.
    @Test func schemaChangesBetweenKillNinesLoseNothing() async throws {
        let rows = 20_000
        let (world, directory, seed) = try await Self.killTest("schemakill", rows: rows)
        var generator = SeededRandom(seed: seed)
        let writer = SourceWriter(world: world)
        async let writing: Void = writer.run(rows: rows, seed: seed &+ 1)
        let changes: [Int: String] = [
            2: #"ALTER TABLE \#(world.table) ALTER COLUMN "CODIGO_CLIENTE" TYPE varchar(60), ALTER COLUMN "NUMERO_FACTURA" TYPE text"#,
            4: #"ALTER TABLE \#(world.table) ADD COLUMN "ZONA" text NOT NULL DEFAULT 'sur'"#,
            6: #"ALTER TABLE \#(world.table) ALTER COLUMN "FECHA_EMISION" TYPE text USING 'X' || "FECHA_EMISION""#,
            9: #"""
            ALTER TABLE \#(world.table) ALTER COLUMN "FECHA_EMISION" TYPE date
              USING (CASE WHEN "FECHA_EMISION" LIKE 'X%' THEN substr("FECHA_EMISION", 2) ELSE "FECHA_EMISION" END)::date
            """#,
        ]
        var stoppedOnTheirOwn = 0
        for round in 0..<13 {
            if let change = changes[round] { try await world.sql(change) }
            let process = try FerryProcess.start(["sync", world.pipeline.name], in: directory)
            if round == 7 {
                // The column is text now: the pipeline stops on its own once it reaches the rows read since.
                let status = try await process.wait(timeout: .seconds(120))
                #expect(status == 1, "\(process.errors().suffix(1500))")
                #expect(process.errors().contains(#"source column "FECHA_EMISION" is now text"#), "\(process.errors().suffix(1500))")
                stoppedOnTheirOwn += 1
                continue
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 500...2_000, using: &generator)))
            process.signal(SIGKILL)
            _ = try await process.wait(timeout: .seconds(10))
            #expect(!process.errors().contains("Fatal error"), "\(process.errors().suffix(2000))")
        }
        writer.stop()
        _ = await writing
        #expect(stoppedOnTheirOwn >= 1, "while the column was text the pipeline stopped, naming it")
        let differences = try await Self.drainAndCompare(world, directory: directory, timeout: .seconds(300))
        #expect(try await world.int("SELECT count(*) FROM \(world.deadLetters)") == 0, "no row went to the dead letters")
        #expect(try await world.int("SELECT count(*) FROM \(world.events) WHERE event = 'read_again'") >= 1, "the text entries were read again")
        #expect(
            try await world.int("SELECT count(*) FROM \(world.mirror) WHERE zona IS DISTINCT FROM 'sur' AND deleted_at IS NULL") == 0,
            "the column added at round 4 was backfilled for every row, across the kills")
        #expect(
            try await world.strings(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\(world.mirror)'::regclass AND attname = 'codigo_cliente'"
            ) == ["character varying(60)"])
        if differences == 0 { try? FileManager.default.removeItem(atPath: directory) }
        await world.close()
    }

    @Test(arguments: [SIGKILL, SIGTERM])
    func redisRestartedMidRunLosesNothing(signal: Int32) async throws {
        let world = try await SyncWorld.make("redisrestart", rows: 30_000)
        let redisInstance = try #require(world.sandbox.redis)
        let writer = SourceWriter(world: world)
        async let writing: Void = writer.run(rows: 30_000, seed: 7)
        let running = Task { try await Self.runPipeline(world) }
        defer { running.cancel() }  // a failing test leaves nothing running
        try await Task.sleep(for: .seconds(2))
        let pid = try #require(redisInstance.pid)
        ProcessTable.signal(pid, signal)
        #expect(await ProcessTable.waitForExit(pid, timeout: .seconds(15)))
        try await Task.sleep(for: .seconds(1))
        try await redisInstance.start()
        try await Task.sleep(for: .seconds(3))
        writer.stop()
        _ = await writing
        running.cancel()
        _ = await running.result
        _ = try await world.runOnce()
        try await world.expectMirrorEqualsSource()
        #expect(try await world.reconcile().differences == 0)
        await world.close()
    }

    /// PostgreSQL (source and target: one server) killed with SIGKILL three times at random moments while the initial
    /// load is applied and a writer changes rows: batches in flight fail with an error (they are bound statements,
    /// not COPYs, which postgres-nio could not survive), nothing is lost, and the pipeline resumes by itself.
    @Test func postgresRestartedMidRunLosesNothing() async throws {
        let world = try await SyncWorld.make("pgrestart", rows: 60_000)
        let postgres = try #require(world.sandbox.postgres)
        let ended = Shared<String?>(nil)
        let running = Task {
            do {
                try await Self.runPipeline(world)
                ended.update { $0 = "returned" }
            } catch {
                ended.update { $0 = "threw \(error)" }
            }
        }
        defer { running.cancel() }  // a failing test leaves nothing running
        let writer = SourceWriter(world: world)
        async let writing: Void = writer.run(rows: 60_000, seed: 11)
        var generator = SeededRandom(seed: 29)
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...1_500, using: &generator)))
            await postgres.kill()
            try await Task.sleep(for: .milliseconds(300))
            try await postgres.start()
        }
        // Writes after the last restart reach the mirror too: the pipeline resumed by itself.
        try await Task.sleep(for: .seconds(3))
        writer.stop()
        _ = await writing
        #expect(ended.value == nil, "the pipeline keeps running through the restarts, but it \(ended.value ?? "")")
        running.cancel()
        _ = await running.result
        _ = try await world.runOnce()
        try await world.expectMirrorEqualsSource()
        #expect(try await world.reconcile().differences == 0)
        await world.close()
    }

    /// The SQL Server (the emulator) stopped twice while the initial load is read and a writer changes rows: reads in
    /// flight fail, the pipeline waits for the server and goes on from its checkpoint, nothing is lost.
    @Test func sqlServerRestartedMidRunLosesNothing() async throws {
        let base = try await SyncWorld.make("mssqlrestart", rows: 40_000) { $0.batchSize = 1_000 }
        try await base.withSQLServerSource { world, emulator in
            let ended = Shared<String?>(nil)
            let running = Task {
                do {
                    try await Self.runPipeline(world)
                    ended.update { $0 = "returned" }
                } catch {
                    ended.update { $0 = "threw \(error)" }
                }
            }
            defer { running.cancel() }  // a failing test leaves nothing running
            let writer = SourceWriter(world: world)
            async let writing: Void = writer.run(rows: 40_000, seed: 13)
            var current = emulator
            for pause in [400, 900] {
                try await Task.sleep(for: .milliseconds(pause))
                let port = current.port
                let configuration = current.configuration
                await current.close()
                try await Task.sleep(for: .milliseconds(800))
                current = try await TDSEmulator.start(configuration, port: port, logger: world.logger)
            }
            try await Task.sleep(for: .seconds(3))
            writer.stop()
            _ = await writing
            #expect(ended.value == nil, "the pipeline keeps running through the outages, but it \(ended.value ?? "")")
            running.cancel()
            _ = await running.result
            _ = try await world.runOnce()
            try await world.expectMirrorEqualsSource()
            #expect(try await world.reconcile().differences == 0)
            if current !== emulator { await current.close() }
        }
        await base.close()
    }

    /// Runs the pipeline in this process until cancelled.
    static func runPipeline(_ world: SyncWorld) async throws {
        var configuration = RedisClient.Configuration(connection: RedisConnectionConfiguration(world.sandbox.redis!.endpoint))
        configuration.reconnectTimeout = .seconds(60)
        let redis = RedisClient(configuration: configuration, logger: world.logger)
        do {
            try await TableSyncPipeline(world.pipeline, configuration: world.configuration, redis: redis, logger: world.logger).run()
        } catch {
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
    }
}

/// Reproducible random numbers (SplitMix64).
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
