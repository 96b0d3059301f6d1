import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerryRedis
import FerrySandbox
import FerrySync
import Foundation
import PostgresNIO
import Testing

@Suite("Table sync for operators: exit codes, progress, errors that clear", .timeLimit(.minutes(5)), .sandbox)
struct TableSyncOperationsTests {
    /// `ferry sync --once` that moved rows to the dead letters exits 3 and says how many and where, in text and
    /// in --json; with --quiet (and no terminal) it prints no progress.
    @Test func deadLettersMakeSyncOnceExitThree() async throws {
        let world = try await SyncWorld.make("exit3", rows: 50)
        let directory = try FerryProcess.scratchDirectory()
        _ = try TableSyncFaultTests.configurationFile(world, directory: directory)
        let first = try await FerryProcess.run(["sync", world.pipeline.name, "--once", "--quiet"], in: directory)
        #expect(first.status == 0, "\(first.stderr.suffix(2000))")
        #expect(!first.stderr.contains("rows/s"), "--quiet prints no progress")

        try await world.sql(
            """
            ALTER TABLE \(world.mirror) ADD CONSTRAINT no_poison CHECK (cliente <> 'poison');
            UPDATE \(world.table) SET "CLIENTE" = 'poison', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000007';
            UPDATE \(world.table) SET "CLIENTE" = 'fine', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000008'
            """)
        let text = try await FerryProcess.run(["sync", world.pipeline.name, "--once"], in: directory)
        #expect(text.status == 3, "\(text.stderr.suffix(2000))")
        #expect(text.stderr.contains("1 rows went to the dead letters (\"\(world.targetSchema)\".\"ferry_dead_letters\")"), "\(text.stderr)")
        #expect(text.stderr.contains("ferry reconcile \(world.pipeline.name) --repair"))
        #expect(try await world.strings("SELECT cliente FROM \(world.mirror) WHERE conduce = 'C-0000008'") == ["fine"], "the rest applied")

        try await world.sql(
            #"UPDATE \#(world.table) SET "CLIENTE" = 'poison', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000009'"#)
        let json = try await FerryProcess.run(["sync", world.pipeline.name, "--once", "--json"], in: directory)
        #expect(json.status == 3)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)")
        // The earlier poison row is in the lookback window, so it may be read (and refused) again.
        #expect((object["dead_lettered"] as? Int ?? 0) >= 1, "\(json.stdout)")
        #expect((object["dead_letters"] as? String)?.contains("ferry_dead_letters") == true)
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }

    /// Without a terminal, progress is a plain line at most every 5 seconds: no carriage returns or escapes.
    @Test func progressWithoutATerminalIsPlainLines() async throws {
        let world = try await SyncWorld.make("plainprogress", rows: 20_000)
        let directory = try FerryProcess.scratchDirectory()
        _ = try TableSyncFaultTests.configurationFile(world, directory: directory)
        let started = ContinuousClock.now
        let run = try await FerryProcess.run(["sync", world.pipeline.name, "--once"], in: directory)
        let seconds = (ContinuousClock.now - started).components.seconds
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        let progress = run.stderr.split(separator: "\n").filter { $0.contains("rows/s") }
        #expect(progress.count >= 1 && progress.count <= 1 + Int(seconds) / 5, "\(seconds)s: \(run.stderr)")
        #expect(!run.stderr.contains("\r") && !run.stderr.contains("\u{1B}["), "no terminal control on a pipe")
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }

    /// A retried error shows in `ferry status` with its time and is cleared once the pipeline applies rows again.
    @Test func aRetriedErrorClearsOnceRowsApplyAgain() async throws {
        let world = try await SyncWorld.make("clearerror", rows: 10)
        _ = try await world.runOnce()
        try await world.sql(
            #"UPDATE "\#(world.targetSchema)".ferry_pipelines SET last_error = 'Connection reset by peer', last_error_at = now() WHERE pipeline = '\#(world.pipeline.name)'"#
        )
        let directory = try FerryProcess.scratchDirectory()
        _ = try TableSyncFaultTests.configurationFile(world, directory: directory)
        let before = try await FerryProcess.run(["status"], in: directory)
        #expect(before.stdout.contains("last error ("), "shown with its time: \(before.stdout)")
        try await world.sql(#"UPDATE \#(world.table) SET "CLIENTE" = 'x', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000001'"#)
        _ = try await world.runOnce()
        #expect(try await world.strings(#"SELECT last_error FROM "\#(world.targetSchema)".ferry_pipelines"#) == [nil])
        let after = try await FerryProcess.run(["status", "--json"], in: directory)
        #expect(after.stdout.contains(#""last_error":null"#), "\(after.stdout)")
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }
}

extension TableSyncOperationsTests {
    /// `ferry pipeline reset` asks (and refuses on a pipe without --yes), then starts over from the whole source,
    /// keeping the mirror and the companion's edits; `ferry pipeline drop` removes everything.
    @Test func resetStartsOverAndDropRemovesEverything() async throws {
        let world = try await SyncWorld.make("reset", rows: 300)
        let directory = try FerryProcess.scratchDirectory()
        _ = try TableSyncFaultTests.configurationFile(world, directory: directory)
        let name = world.pipeline.name
        #expect(try await FerryProcess.run(["sync", name, "--once", "--quiet"], in: directory).status == 0)
        try await world.sql("UPDATE \(world.companion) SET nota = 'kept' WHERE conduce = 'C-0000001'")

        let unconfirmed = try await FerryProcess.run(["pipeline", "reset", name], in: directory)
        #expect(unconfirmed.status == 1 && unconfirmed.stderr.contains("add --yes"), "\(unconfirmed.stderr)")
        #expect(try await world.int(#"SELECT count(*) FROM "\#(world.targetSchema)".ferry_pipelines"#) == 1, "nothing changed")

        let reset = try await FerryProcess.run(["pipeline", "reset", name, "--yes", "--json"], in: directory)
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stdout.contains(#""redis_keys_deleted":"#) && reset.stdout.contains(#""tables_dropped":[]"#), "\(reset.stdout)")
        #expect(try await world.int(#"SELECT count(*) FROM "\#(world.targetSchema)".ferry_pipelines"#) == 0)
        #expect(try await world.int("SELECT count(*) FROM \(world.events) WHERE event = 'reset'") == 1, "recorded")

        let again = try await FerryProcess.run(["sync", name, "--once", "--json"], in: directory)
        #expect(again.status == 0, "\(again.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any], "\(again.stdout)")
        #expect((object["queued"] as? Int ?? 0) >= 300, "the whole source was read again: \(again.stdout)")
        try await world.expectMirrorEqualsSource()
        #expect(try await world.strings("SELECT nota FROM \(world.companion) WHERE conduce = 'C-0000001'") == ["kept"], "edits kept")

        let running = try FerryProcess.start(["sync", name], in: directory)
        try await world.sql(#"UPDATE \#(world.table) SET "CLIENTE" = 'live', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000002'"#)
        try await eventually("the running pipeline applies a change", timeout: .seconds(60), diagnostics: running.errors()) {
            try await world.strings("SELECT cliente FROM \(world.mirror) WHERE conduce = 'C-0000002'") == ["live"]
        }
        let refused = try await FerryProcess.run(["pipeline", "drop", name, "--yes"], in: directory)
        #expect(refused.status == 1 && refused.stderr.contains("is running"), "\(refused.stderr)")
        running.signal(SIGTERM)
        _ = try await running.wait(timeout: .seconds(30))

        let drop = try await FerryProcess.run(["pipeline", "drop", name, "--yes"], in: directory)
        #expect(drop.status == 0, "\(drop.stderr)")
        #expect(try await world.int("SELECT count(*) FROM pg_tables WHERE schemaname = '\(world.targetSchema)' AND tablename LIKE 'datos_%'") == 0)
        #expect(try await world.int("SELECT count(*) FROM \(world.events)") == 0)
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }
}

extension TableSyncOperationsTests {
    /// `ferry sync NAME --skip-entry ID` takes an entry out of the queue, reads its rows again from the source,
    /// applies them and records it; the rest of the queue is applied as usual.
    @Test func aSkippedEntryIsReadAgainAndRecorded() async throws {
        let world = try await SyncWorld.make("skip", rows: 300)
        var produceOnly = TableSyncPipeline.Options()
        produceOnly.consume = false
        _ = try await world.runOnce(options: produceOnly)
        let redis = RedisClient(configuration: .init(connection: RedisConnectionConfiguration(world.sandbox.redis!.endpoint)), logger: world.logger)
        let stream = QueueKeys(pipeline: world.pipeline.name).stream
        let first = try #require(try await redis.send(XRANGE(stream, count: 1)).first?.id)
        let directory = try FerryProcess.scratchDirectory()
        _ = try TableSyncFaultTests.configurationFile(world, directory: directory)

        let missing = try await FerryProcess.run(["sync", world.pipeline.name, "--once", "--skip-entry", "1-1"], in: directory)
        #expect(missing.status == 1 && missing.stderr.contains("there is no entry 1-1"), "\(missing.stderr)")

        let run = try await FerryProcess.run(["sync", world.pipeline.name, "--once", "--quiet", "--skip-entry", first], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("skipped entry \(first) (100 keys, 100 rows read again from the source)"), "\(run.stderr)")
        #expect(try await redis.send(XRANGE(stream, start: first, end: first)).isEmpty, "deleted from the stream")
        #expect(
            try await world.int("SELECT count(*) FROM \(world.events) WHERE event = 'skipped' AND rows = 100 AND entries = ARRAY['\(first)']") == 1)
        try await world.expectMirrorEqualsSource()
        await redis.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }
}

extension TableSyncOperationsTests {
    /// With `protect_mirror`, privileges keep other roles off the mirror: readers read it, editors edit only the
    /// companion, `SET ferry.sync = on` lets no one else through the trigger, `ferry check` names a role that was
    /// granted writes by hand, and the next start revokes the grant.
    @Test func privilegesKeepOtherRolesOffTheMirror() async throws {
        let suffix = UInt32.random(in: 0..<UInt32.max)
        let (reader, editor, rogue) = ("reader_\(suffix)", "editor_\(suffix)", "rogue_\(suffix)")
        let world = try await SyncWorld.make("privileges", rows: 5) {
            $0.target.readers = [reader]
            $0.companion?.editors = [editor]
        }
        await #expect {
            _ = try await world.runOnce()
        } throws: { error in
            "\(error)".contains("target.readers names role \"\(reader)\", which does not exist") && "\(error)".contains("CREATE ROLE")
        }
        try await world.sql(
            """
            CREATE ROLE "\(reader)" LOGIN PASSWORD 'pw';
            CREATE ROLE "\(editor)" LOGIN PASSWORD 'pw';
            CREATE ROLE "\(rogue)" LOGIN PASSWORD 'pw'
            """)
        _ = try await world.runOnce()

        func run(as role: String, _ sql: String) async throws {
            var endpoint = try #require(world.sandbox.postgres).endpoint
            endpoint.user = role
            endpoint.password = Secret("pw")
            let session = PostgresSession(endpoint: endpoint, key: "postgres", logger: world.logger)
            do {
                try await session.withConnection { connection in
                    for statement in sql.split(separator: ";\n") {
                        try await connection.query(PostgresQuery(unsafeSQL: String(statement)), logger: world.logger)
                    }
                }
            } catch {
                await session.close()
                throw error
            }
            await session.close()
        }
        func refused(_ role: String, _ sql: String, saying: String) async {
            await #expect("\(role): \(sql)") {
                try await run(as: role, sql)
            } throws: { error in
                let message = PostgresDiagnosis.serverMessage(of: error) ?? String(reflecting: error)
                if !message.contains(saying) { Issue.record("\(role): \(message)") }
                return message.contains(saying)
            }
        }
        let write = "SET ferry.sync = 'on';\nUPDATE \(world.mirror) SET cliente = 'manual'"
        try await run(as: reader, "SELECT count(*) FROM \(world.mirror);\nSELECT count(*) FROM \(world.companion)")
        await refused(reader, "UPDATE \(world.companion) SET nota = 'x'", saying: "permission denied")
        try await run(as: editor, "UPDATE \(world.companion) SET nota = 'edited' WHERE conduce = 'C-0000001'")
        await refused(editor, write, saying: "permission denied")
        #expect(try await world.strings("SELECT nota FROM \(world.companion) WHERE conduce = 'C-0000001'") == ["edited"])

        // A write grant made by hand: the trigger still refuses the role, and `ferry check` names it.
        try await world.sql("GRANT USAGE ON SCHEMA \"\(world.targetSchema)\" TO \"\(rogue)\";\nGRANT UPDATE ON \(world.mirror) TO \"\(rogue)\"")
        await refused(rogue, write, saying: "is written only by Ferry")
        let directory = try FerryProcess.scratchDirectory()
        _ = try TableSyncFaultTests.configurationFile(world, directory: directory)
        let check = try await FerryProcess.run(["check", "--json"], in: directory)
        #expect(check.status == 1, "\(check.stdout) \(check.stderr)")
        #expect(check.stdout.contains(#""status":"mirror_writable""#) && check.stdout.contains(rogue), "\(check.stdout)")
        #expect(
            check.stdout.contains("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON \\\"\(world.targetSchema)\\\".\\\"datos_vista\\\""), "\(check.stdout)")

        // The next start revokes it.
        _ = try await world.runOnce()
        #expect(try await world.strings("SELECT has_table_privilege('\(rogue)', '\(world.mirror)', 'UPDATE')::text") == ["false"])
        let clean = try await FerryProcess.run(["check", "--json"], in: directory)
        #expect(clean.status == 0, "\(clean.stdout)")
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE cliente = 'manual'") == 0)
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }
}
