import FerryCore
import FerryPostgres
import FerrySync
import Foundation
import PostgresNIO
import Testing

@Suite("Table sync: source schema changes", .timeLimit(.minutes(5)), .sandbox)
struct SchemaChangeTests {
    /// A read names the schema its rows will be queued under; a source whose columns changed since returns nothing
    /// and says what it has now, so no page is ever labelled with a schema it was not read with.
    @Test func aReadUnderAnOutdatedSchemaReturnsNothing() async throws {
        let world = try await SyncWorld.make("readschema", rows: 20)
        let source = try world.tableSource()
        let before = try await source.describe()
        try await world.sql(#"ALTER TABLE \#(world.table) ALTER COLUMN "CODIGO_CLIENTE" TYPE text USING 'X' || "CODIGO_CLIENTE""#)
        var rows = CopyTextRows()
        do {
            try await source.readChanges(after: nil, limit: 100, schema: before, into: &rows)
            Issue.record("a read under the old schema returned \(rows.rowCount) rows")
        } catch let changed as SourceSchemaChanged {
            #expect(changed.current.columns.first { $0.name == "CODIGO_CLIENTE" }?.type == "text")
            #expect(rows.isEmpty, "nothing of the read is kept")
            try await source.readChanges(after: nil, limit: 100, schema: changed.current, into: &rows)
            #expect(rows.rowCount == 20)
        }
        // A dropped column: the read fails inside PostgreSQL, and says the same.
        let current = try await source.describe()
        try await world.sql(#"ALTER TABLE \#(world.table) DROP COLUMN "NUMERO_FACTURA""#)
        await #expect(throws: SourceSchemaChanged.self) {
            var more = CopyTextRows()
            try await source.readRange(.all, schema: current, into: &more)
        }
        await source.close()
        await world.close()
    }

    /// The issue's sequence: a column becomes text with values the mirror's bigint cannot hold, rows change, the
    /// pipeline stops naming the column and sends nothing to the dead letters; the column goes back, and the
    /// entries queued under the intermediate schema are read again under the current one, recorded.
    @Test func entriesOfASchemaTheSourceNoLongerHasAreReadAgain() async throws {
        let world = try await SyncWorld.make("typeback", rows: 200)
        try await world.sql(#"ALTER TABLE \#(world.table) ALTER COLUMN "CODIGO_CLIENTE" TYPE bigint USING 600 + substr("CODIGO_CLIENTE", 4)::bigint"#)
        _ = try await world.runOnce()
        try await world.sql(
            #"""
            ALTER TABLE \#(world.table) ALTER COLUMN "CODIGO_CLIENTE" TYPE text USING 'X' || "CODIGO_CLIENTE";
            UPDATE \#(world.table) SET "CLIENTE" = 'while text', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" <= 'C-0000010'
            """#)
        await #expect {
            _ = try await world.runOnce()
        } throws: { error in
            let text = "\(error)"
            return text.contains(#"source column "CODIGO_CLIENTE" is now text"#) && text.contains("codigo_cliente is bigint")
                && text.contains("queue entries from")
        }
        #expect(try await world.int("SELECT count(*) FROM \(world.deadLetters)") == 0, "no row went to the dead letters")

        try await world.sql(
            #"""
            ALTER TABLE \#(world.table) ALTER COLUMN "CODIGO_CLIENTE" TYPE bigint USING substr("CODIGO_CLIENTE", 2)::bigint;
            UPDATE \#(world.table) SET "CLIENTE" = 'after', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" BETWEEN 'C-0000100' AND 'C-0000104'
            """#)
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE cliente = 'while text'") == 10)
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE cliente = 'after'") == 5)
        #expect(try await world.int("SELECT count(*) FROM \(world.deadLetters)") == 0)
        // Recorded: the ten rows read again, in one event or, when the consumer met their entries in two reads (seen once
        // on CI's loaded machine), in more, never twice.
        let events = try await world.strings("SELECT entries::text || ' rows ' || rows FROM \(world.events) WHERE event = 'read_again'")
        #expect(
            try await world.int("SELECT COALESCE(sum(rows), 0)::int FROM \(world.events) WHERE event = 'read_again'") == 10, "recorded: \(events)")
        #expect(try await world.reconcile().differences == 0)
        await world.close()
    }

    /// Widening changes migrate the mirror (a key column too, with the companion's copy); entries queued under the
    /// narrower schema before the change are still applied.
    @Test func aWideningChangeWidensTheMirror() async throws {
        let world = try await SyncWorld.make("widen", rows: 100)
        _ = try await world.runOnce()
        var produceOnly = TableSyncPipeline.Options()
        produceOnly.consume = false
        try await world.sql(#"UPDATE \#(world.table) SET "CLIENTE" = 'queued narrow', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" <= 'C-0000005'"#)
        _ = try await world.runOnce(options: produceOnly)
        let long = String(repeating: "L", count: 35)
        try await world.sql(
            #"""
            ALTER TABLE \#(world.table) ALTER COLUMN "CODIGO_CLIENTE" TYPE varchar(50), ALTER COLUMN "CONDUCE" TYPE varchar(40), ALTER COLUMN "ULTIMA_MODIFICACION" TYPE timestamp(6);
            UPDATE \#(world.table) SET "CODIGO_CLIENTE" = '\#(long)', "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000050';
            INSERT INTO \#(world.table) VALUES ('\#(long)', date '2025-01-01', false, NULL, 'CL', 'long key', now())
            """#)
        _ = try await world.runOnce()
        let types = try await world.strings(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\(world.mirror)'::regclass AND attname IN ('codigo_cliente', 'conduce') ORDER BY attname"
        )
        #expect(types == ["character varying(50)", "character varying(40)"])
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE cliente = 'queued narrow'") == 5)
        #expect(try await world.int("SELECT count(*) FROM \(world.companion) WHERE conduce = '\(long)'") == 1)
        try await world.expectMirrorEqualsSource()
        #expect(try await world.reconcile().differences == 0)
        await world.close()
    }

    @Test func withWidenColumnsOffAWideningStopsThePipeline() async throws {
        let world = try await SyncWorld.make("nowiden", rows: 10) { $0.widenColumns = false }
        _ = try await world.runOnce()
        try await world.sql(
            #"""
            ALTER TABLE \#(world.table) ALTER COLUMN "CODIGO_CLIENTE" TYPE varchar(50);
            UPDATE \#(world.table) SET "ULTIMA_MODIFICACION" = now() WHERE "CONDUCE" = 'C-0000001'
            """#)
        await #expect {
            _ = try await world.runOnce()
        } throws: { error in
            "\(error)".contains("widen_columns is false") && "\(error)".contains("widen_columns: true")
        }
        await world.close()
    }
}

extension SchemaChangeTests {
    /// A column added at the source with values for every row (none of which changed its watermark) is backfilled:
    /// the source is read again by key, the rows the mirror had get the column's values, reconcile finds nothing,
    /// and `ferry status` shows the backfill. While it runs, reconcile says the differences are the new column.
    @Test func aNewColumnIsBackfilledForTheRowsTheMirrorHas() async throws {
        let world = try await SyncWorld.make("backfill", rows: 3_000)
        _ = try await world.runOnce()
        try await world.sql(#"ALTER TABLE \#(world.table) ADD COLUMN "ZONA" text NOT NULL DEFAULT 'sur'"#)
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE zona = 'sur'") == 3_000, "every row backfilled")
        #expect(try await world.reconcile().differences == 0)
        #expect(try await world.int("SELECT rows FROM \(world.backfills) WHERE finished_at IS NOT NULL AND columns = '{ZONA}'") == 3_000)
        #expect(try await world.strings("SELECT event FROM \(world.events) ORDER BY id") == ["backfill_started", "backfill_done"])

        let directory = try FerryProcess.scratchDirectory()
        _ = try TableSyncFaultTests.configurationFile(world, directory: directory)
        let status = try await FerryProcess.run(["status", "--json"], in: directory)
        #expect(status.stdout.contains(#""backfill":{"columns":["ZONA"],"rows":3000"#), "\(status.stdout)")
        #expect(!status.stdout.contains(#""finished_at":null"#), "\(status.stdout)")

        // Another column, seen while the mirror lags behind it: reconcile names the backfill as the cause.
        var produceOnly = TableSyncPipeline.Options()
        produceOnly.consume = false
        try await world.sql(#"ALTER TABLE \#(world.table) ADD COLUMN "RUTA" integer NOT NULL DEFAULT 7"#)
        _ = try await world.runOnce(options: produceOnly)
        try await world.sql("UPDATE \(world.backfills) SET finished_at = NULL")
        let text = try await FerryProcess.run(["reconcile", world.pipeline.name], in: directory)
        #expect(text.status == 1)
        #expect(text.stdout.contains("a backfill of new column(s) RUTA is under way"), "\(text.stdout)")
        let running = try await FerryProcess.run(["status"], in: directory)
        #expect(running.stdout.contains("backfilling new column(s) RUTA: 3,000"), "\(running.stdout)")
        // Resumed where Redis says it got to (the end): the queued entries are applied and it finishes.
        _ = try await world.runOnce()
        #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE ruta = 7") == 3_000)
        #expect(try await world.reconcile().differences == 0)
        #expect(try await world.int("SELECT count(*) FROM \(world.backfills) WHERE finished_at IS NOT NULL") == 1)
        try? FileManager.default.removeItem(atPath: directory)
        await world.close()
    }
}

extension SyncWorld {
    var deadLetters: String { "\"\(targetSchema)\".ferry_dead_letters" }
    var events: String { "\"\(targetSchema)\".ferry_pipeline_events" }
    var backfills: String { "\"\(targetSchema)\".ferry_backfills" }
}
