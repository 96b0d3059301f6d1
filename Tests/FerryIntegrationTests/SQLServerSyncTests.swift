import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerrySQLServer
import FerrySandbox
import FerrySync
import Foundation
import Logging
import PostgresNIO
import TDSEmulator
import Testing

/// The table sync with SQL Server as its source (the original design's job): Ferry's SQL Server connector reads the
/// source through the TDS emulator, which serves tables of a real PostgreSQL; mirror, queue and consumers are the same
/// as for a PostgreSQL source.
@Suite("Table sync from SQL Server", .timeLimit(.minutes(5)), .sandbox)
struct SQLServerSyncTests {
    @Test func initialLoadIncrementalChangesAndReconcile() async throws {
        let base = try await SyncWorld.make("mssql", rows: 2_000) { $0.target.rowID = "sync_id" }
        try await base.withSQLServerSource { world, _ in
            let first = try await world.runOnce()
            #expect(first.produced >= 2_000)
            #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 2_000)
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
            #expect(report.mirrorRows == 2_050)
        }
        await base.close()
    }

    /// Every SQL Server type, at its boundaries and as NULL, lands in the mirror as the type a user would pick, with
    /// the value SQL Server holds; reconcile (hashing both sides in PostgreSQL) finds no difference.
    @Test func everyTypeRoundTripsToTheMirror() async throws {
        let base = try await SyncWorld.make("mstypes", companion: false) { pipeline in
            pipeline.source.table = "tipos"
            pipeline.source.key = ["id"]
            pipeline.source.watermark = "modified"
            pipeline.target.table = "tipos"
        }
        let declared = [
            "ti": "tinyint", "m": "money", "sm": "smallmoney", "c": "char(5)", "vc": "varchar(20)", "nc": "nchar(3)", "vcmax": "varchar(max)",
            "bin": "binary(4)", "t": "time(7)", "dt2": "datetime2(7)", "dto": "datetimeoffset(7)", "dtm": "datetime", "sdt": "smalldatetime",
        ]
        try await base.sql(
            """
            CREATE TABLE "\(base.sourceSchema)".tipos (
              id int PRIMARY KEY, b boolean, ti smallint, si smallint, i int, bi bigint, d38 numeric(38,0), d numeric(12,4), m numeric(19,4),
              sm numeric(10,4), r real, f double precision, c char(5), vc varchar(20), nc char(3), nv varchar(30), vmax text, vcmax text,
              bin bytea, vb bytea, dt date, t time(6), dt2 timestamp(6), dto timestamptz, dtm timestamp, sdt timestamp, g uuid,
              modified timestamp(6) NOT NULL);
            INSERT INTO "\(base.sourceSchema)".tipos VALUES
              (1, true, 255, 32767, 2147483647, 9223372036854775807, 99999999999999999999999999999999999999, 12345678.1234,
               922337203685477.5807, 214748.3647, 1.5, 1.7976931348623157e+308, 'ab', 'ñandú', '東', '東京 ✓ ñ', repeat('x', 9000) || '東',
               repeat('a', 8001), '\\x00ff10', '\\xdeadbeef', '9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999',
               '2026-12-06 10:30:00.123456+00', '9999-12-31 23:59:59.996667', '2079-06-06 23:59:00', '6f9619ff-8b86-d011-b42d-00c04fc964ff',
               '2025-01-01 00:00:01'),
              (2, false, 0, -32768, -2147483648, -9223372036854775808, -99999999999999999999999999999999999999, -0.0001,
               -922337203685477.5808, -214748.3648, -2.25e-10, -5e-324, '', '', '', '', '', '', '\\x', '\\x', '0001-01-01', '00:00:00',
               '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '1753-01-01 00:00:00.003333', '1900-01-01 00:00:00',
               '00000000-0000-0000-0000-000000000000', '2025-01-01 00:00:02'),
              (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, '2025-01-01 00:00:03')
            """)
        try await base.sql(
            declared.map { "COMMENT ON COLUMN \"\(base.sourceSchema)\".tipos.\($0.key) IS 'tds:\($0.value)'" }.joined(separator: ";\n"))
        try await base.withSQLServerSource { world, _ in
            _ = try await world.runOnce()
            let mirror = "\"\(world.targetSchema)\".tipos"
            let types = try await world.strings(
                """
                SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
                WHERE attrelid = '\(mirror)'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE 'ferry%' ORDER BY attnum
                """)
            for expected in [
                "b boolean", "ti smallint", "si smallint", "i integer", "bi bigint", "d38 numeric(38,0)", "d numeric(12,4)", "m numeric(19,4)",
                "sm numeric(10,4)", "r real", "f double precision", "c character(5)", "vc character varying(20)", "nc character(3)",
                "nv character varying(30)", "vmax text", "vcmax text", "bin bytea", "vb bytea", "dt date", "t time(6) without time zone",
                "dt2 timestamp(6) without time zone", "dto timestamp(6) with time zone", "dtm timestamp without time zone",
                "sdt timestamp(0) without time zone", "g uuid",
            ] {
                #expect(types.contains(expected), "mirror column \(expected): \(types)")
            }
            // character(n) prints without its padding as text; the padding is in the column (checked below).
            #expect(try await world.strings("SELECT octet_length(c) || ' ' || octet_length(nc) FROM \(mirror) WHERE id = 1") == ["5 5"])
            let columns = "b, ti, si, i, bi, d38, d, m, sm, r, f, c, vc, nc, nv, vmax, vcmax, bin, vb, dt, t, dt2, dto, dtm, sdt, g"
            func row(_ id: Int) async throws -> [String?] {
                try await world.strings(
                    "SELECT unnest(ARRAY[\(columns.split(separator: ",").map { "\($0.trimmingCharacters(in: .whitespaces))::text" }.joined(separator: ", "))]) FROM \(mirror) WHERE id = \(id)"
                )
            }
            #expect(
                try await row(1) == [
                    "true", "255", "32767", "2147483647", "9223372036854775807", "99999999999999999999999999999999999999", "12345678.1234",
                    "922337203685477.5807", "214748.3647", "1.5", "1.7976931348623157e+308", "ab", "ñandú", "東", "東京 ✓ ñ",
                    String(repeating: "x", count: 9000) + "東", String(repeating: "a", count: 8001), "\\x00ff1000", "\\xdeadbeef", "9999-12-31",
                    "23:59:59.999999", "9999-12-31 23:59:59.999999", "2026-12-06 10:30:00.123456+00", "9999-12-31 23:59:59.996667",
                    "2079-06-06 23:59:00", "6f9619ff-8b86-d011-b42d-00c04fc964ff",
                ])
            #expect(
                try await row(2) == [
                    "false", "0", "-32768", "-2147483648", "-9223372036854775808", "-99999999999999999999999999999999999999", "-0.0001",
                    "-922337203685477.5808", "-214748.3648", "-2.25e-10", "-5e-324", "", "", "", "", "", "", "\\x00000000", "\\x",
                    "0001-01-01", "00:00:00", "0001-01-01 00:00:00", "0001-01-01 00:00:00+00", "1753-01-01 00:00:00.003333",
                    "1900-01-01 00:00:00", "00000000-0000-0000-0000-000000000000",
                ])
            #expect(try await row(3) == Array(repeating: nil, count: 26))
            let report = try await world.reconcile()
            #expect(report.differences == 0, "\(report.different) \(report.missing) \(report.extra)")
            #expect(report.sourceRows == 3)
        }
        await base.close()
    }

    /// Many rows on one watermark, read in small pages: the written-out keyset condition neither skips nor repeats.
    @Test func manyRowsWithTheSameWatermarkAreNeitherSkippedNorDuplicated() async throws {
        let base = try await SyncWorld.make("mssamewm") { $0.batchSize = 97 }
        try await base.insert(1...1_500, watermark: "2025-03-01 10:00:00")
        try await base.withSQLServerSource { world, _ in
            let first = try await world.runOnce()
            #expect(first.produced == 1_500)
            try await world.insert(1_501...1_600, watermark: "2025-03-01 10:00:00")
            _ = try await world.runOnce()
            #expect(try await world.int("SELECT count(*) FROM \(world.mirror)") == 1_600)
            try await world.expectMirrorEqualsSource()
        }
        await base.close()
    }

    /// A row committed after later rows were read, inside the lookback window, still reaches the mirror: SQL Server
    /// has no transaction ids to compare, so each sweep re-reads the whole window.
    @Test func aTransactionThatCommitsLateInsideTheLookbackIsPickedUp() async throws {
        let base = try await SyncWorld.make("mslate", rows: 100) { $0.source.lookback = .seconds(60) }
        try await base.withSQLServerSource { world, _ in
            _ = try await world.runOnce()
            let postgres = try #require(world.sandbox.postgres)
            let late = PostgresSession(endpoint: postgres.endpoint, key: "late", logger: world.logger)
            try await late.withConnection { connection in
                try await connection.query("BEGIN", logger: world.logger)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO \(world.table) VALUES ('C-LATE', date '2025-01-01', false, NULL, 'CL', 'late', timestamp '2025-01-01' + interval '100.5 seconds')
                            """),
                    logger: world.logger)
            }
            try await world.insert(101...120)
            _ = try await world.runOnce()
            #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-LATE'") == 0, "not committed yet")
            try await late.withConnection { connection in try await connection.query("COMMIT", logger: world.logger) }
            await late.close()
            _ = try await world.runOnce()
            #expect(try await world.int("SELECT count(*) FROM \(world.mirror) WHERE conduce = 'C-LATE'") == 1, "the lookback window found it")
            try await world.expectMirrorEqualsSource()
        }
        await base.close()
    }

    /// A `datetime2(7)` watermark, SQL Server's default: the mirror keeps microseconds, but positions keep all seven
    /// digits, so rows whose watermarks differ only in the 7th digit, read one per page, are each read once, none
    /// skipped; after a restart (no exact position known) the rows of the checkpoint's microsecond are read again.
    @Test func aSeventhFractionalDigitNeitherRepeatsNorSkipsARow() async throws {
        let base = try await SyncWorld.make("ms7", companion: false) { pipeline in
            pipeline.source.table = "hechos"
            pipeline.source.key = ["id"]
            pipeline.source.watermark = "w"
            pipeline.target.table = "hechos"
            pipeline.batchSize = 1
        }
        // The emulator serves a text column declared datetime2(7) with all seven digits (PostgreSQL keeps six).
        try await base.sql(
            """
            CREATE TABLE "\(base.sourceSchema)".hechos (id int PRIMARY KEY, v text NOT NULL, w text NOT NULL);
            COMMENT ON COLUMN "\(base.sourceSchema)".hechos.w IS 'tds:datetime2(7)';
            INSERT INTO "\(base.sourceSchema)".hechos VALUES (1, 'a', '2025-01-01 10:00:00.1234567'), (2, 'b', '2025-01-01 10:00:00.1234561'),
              (3, 'c', '2025-01-01 10:00:00.1234565'), (4, 'd', '2025-01-01 10:00:00.1234569'), (5, 'e', '2025-01-01 10:00:01.0000000')
            """)
        try await base.withSQLServerSource { world, _ in
            let mirror = "\"\(world.targetSchema)\".hechos"
            let first = try await world.runOnce()
            #expect(first.produced == 5, "each row read once")
            #expect(
                try await world.strings("SELECT id || ' ' || v || ' ' || w FROM \(mirror) ORDER BY id") == [
                    "1 a 2025-01-01 10:00:00.123456", "2 b 2025-01-01 10:00:00.123456", "3 c 2025-01-01 10:00:00.123456",
                    "4 d 2025-01-01 10:00:00.123456", "5 e 2025-01-01 10:00:01",
                ])
            try await world.sql(
                """
                UPDATE "\(world.sourceSchema)".hechos SET v = 'c2', w = '2025-01-01 10:00:01.0000003' WHERE id = 3;
                INSERT INTO "\(world.sourceSchema)".hechos VALUES (6, 'f', '2025-01-01 10:00:01.0000001')
                """)
            _ = try await world.runOnce()
            #expect(
                try await world.strings("SELECT id || ' ' || v FROM \(mirror) ORDER BY id") == ["1 a", "2 b", "3 c2", "4 d", "5 e", "6 f"])
            #expect(try await world.reconcile().differences == 0)
        }
        await base.close()
    }

    /// A `rowversion` watermark (SQL Server's write counter): the tail is read below `MIN_ACTIVE_ROWVERSION()`, the
    /// mirror gets the version as bytea, updates follow, and no lookback window is read.
    @Test func aRowversionWatermarkIsFollowedWithoutALookback() async throws {
        let base = try await SyncWorld.make("msrv", companion: false) { pipeline in
            pipeline.source.table = "pedidos"
            pipeline.source.key = ["id"]
            pipeline.source.watermark = "rv"
            pipeline.target.table = "pedidos"
            pipeline.batchSize = 100
        }
        let schema = "\"\(base.sourceSchema)\""
        // rowversion as SQL Server keeps it: 8 bytes, big-endian, from a counter bumped by every insert and update.
        try await base.sql(
            """
            CREATE SEQUENCE \(schema).rv_seq;
            CREATE TABLE \(schema).pedidos (id int PRIMARY KEY, estado text NOT NULL, rv bytea NOT NULL DEFAULT int8send(nextval('\(schema).rv_seq')));
            CREATE FUNCTION \(schema).bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.rv := int8send(nextval('\(schema).rv_seq')); RETURN NEW; END $$;
            CREATE TRIGGER bump BEFORE UPDATE ON \(schema).pedidos FOR EACH ROW EXECUTE FUNCTION \(schema).bump();
            COMMENT ON COLUMN \(schema).pedidos.rv IS 'tds:timestamp';
            INSERT INTO \(schema).pedidos (id, estado) SELECT g, 'nuevo' FROM generate_series(1, 500) g
            """)
        try await base.withSQLServerSource { world, _ in
            let mirror = "\"\(world.targetSchema)\".pedidos"
            let first = try await world.runOnce()
            #expect(first.produced == 500)
            #expect(
                try await world.strings(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\(mirror)'::regclass AND attname = 'rv'") == [
                        "bytea"
                    ])
            try await world.sql("UPDATE \(schema).pedidos SET estado = 'enviado' WHERE id % 25 = 0")
            let second = try await world.runOnce()
            #expect(second.produced == 20, "only the 20 changed rows: no lookback window re-read")
            #expect(try await world.int("SELECT count(*) FROM \(mirror) WHERE estado = 'enviado'") == 20)
            #expect(
                try await world.int(
                    "SELECT count(*) FROM (SELECT id, estado, rv FROM \(schema).pedidos EXCEPT SELECT id, estado, rv FROM \(mirror)) d") == 0)
            #expect(try await world.reconcile().differences == 0)
        }
        await base.close()
    }

    /// Change Tracking instead of a watermark column: rows changed since tracking began come from `CHANGETABLE(CHANGES …)`
    /// in (version, key) order, the others by key; deletes arrive as deletes (the mirror row soft-deleted, its values
    /// kept; a key the mirror never had kept as a deleted row so no older version can bring it back); a deleted key
    /// inserted again comes back; a pipeline behind the retention stops with the fix.
    @Test func changeTrackingBringsInsertsUpdatesAndDeletes() async throws {
        let base = try await SyncWorld.make("msct") { pipeline in
            pipeline.source.table = "clientes_ct"
            pipeline.source.key = ["codigo"]
            pipeline.source.watermark = PipelineConfiguration.Source.changeVersionColumn
            pipeline.source.changeTracking = true
            pipeline.source.lookback = .zero
            pipeline.target.table = "clientes"
            pipeline.batchSize = 50
        }
        let table = "\"\(base.sourceSchema)\".clientes_ct"
        try await base.sql(
            """
            CREATE TABLE \(table) (codigo int PRIMARY KEY, nombre text NOT NULL, saldo numeric(12,2));
            INSERT INTO \(table) SELECT g, 'cliente ' || g, g * 1.5 FROM generate_series(1, 300) g
            """)
        try await base.withSQLServerSource { world, _ in
            // The emulator's catalog has Change Tracking once it runs.
            try await world.sql(
                """
                SELECT sys.enable_change_tracking('\(table)');
                UPDATE \(table) SET saldo = 0 WHERE codigo <= 10;
                INSERT INTO \(table) SELECT g, 'nuevo ' || g, NULL FROM generate_series(301, 320) g
                """)
            let mirror = "\"\(world.targetSchema)\".clientes"
            let differing = """
                SELECT count(*) FROM ((SELECT codigo, nombre, saldo FROM \(table) EXCEPT SELECT codigo, nombre, saldo FROM \(mirror) WHERE deleted_at IS NULL)
                UNION ALL (SELECT codigo, nombre, saldo FROM \(mirror) WHERE deleted_at IS NULL EXCEPT SELECT codigo, nombre, saldo FROM \(table))) d
                """
            let first = try await world.runOnce()
            #expect(first.produced == 320)
            #expect(try await world.int(differing) == 0)
            #expect(try await world.int("SELECT count(*) FROM \(mirror) WHERE ferry_change_version IS NULL") == 290, "rows never changed: no version")

            // Deletes of rows loaded by key and of rows read as changes, updates, inserts, and a key inserted and
            // deleted between two runs (never in the mirror).
            try await world.sql(
                """
                DELETE FROM \(table) WHERE codigo IN (5, 6, 100, 101, 102, 250, 310);
                UPDATE \(table) SET nombre = 'cambiado' WHERE codigo IN (7, 200, 315);
                INSERT INTO \(table) VALUES (321, 'otro', 1), (9999, 'efímero', 2);
                DELETE FROM \(table) WHERE codigo = 9999
                """)
            let second = try await world.runOnce()
            #expect(second.produced == 12, "only the changed keys: 7 deletes, 3 updates, 1 insert, 1 insert-and-delete")
            #expect(try await world.int(differing) == 0)
            #expect(try await world.int("SELECT count(*) FROM \(mirror) WHERE deleted_at IS NOT NULL") == 8)
            #expect(try await world.strings("SELECT nombre FROM \(mirror) WHERE codigo = 100") == ["cliente 100"], "a deleted row keeps its values")
            #expect(try await world.strings("SELECT nombre FROM \(mirror) WHERE codigo = 9999 AND deleted_at IS NOT NULL") == [nil])
            #expect(try await world.int("SELECT count(*) FROM \(world.companion) WHERE codigo = 9999") == 1, "every mirror row has its companion row")

            // A deleted key comes back.
            try await world.sql("INSERT INTO \(table) VALUES (100, 'de vuelta', 3)")
            _ = try await world.runOnce()
            #expect(try await world.strings("SELECT nombre FROM \(mirror) WHERE codigo = 100 AND deleted_at IS NULL") == ["de vuelta"])
            #expect(try await world.int(differing) == 0)
            #expect(try await world.reconcile().differences == 0)

            // One transaction changing every row (over 500: one version, more than ten pages of 50): read eight pages
            // at a time, handed out page by page, each row once.
            try await world.sql(
                """
                INSERT INTO \(table) SELECT g, 'lote ' || g, 1 FROM generate_series(1001, 1200) g;
                UPDATE \(table) SET saldo = coalesce(saldo, 0) + 1
                """)
            let everyRow = try await world.int("SELECT count(*) FROM \(table)")
            #expect(everyRow > 500)
            let many = try await world.runOnce()
            #expect(many.produced == everyRow)
            #expect(try await world.int(differing) == 0)

            // Retention cleans up changes the pipeline has not read: it stops and says how to recover.
            try await world.sql(
                """
                UPDATE \(table) SET saldo = 7 WHERE codigo = 1;
                SELECT sys.change_tracking_cleanup('\(table)', sys.change_tracking_current_version())
                """)
            await #expect {
                _ = try await world.runOnce()
            } throws: { error in
                let text = "\(error)"
                return text.contains("cleaned up") && text.contains("ferry pipeline reset")
            }

            // A key other than the primary key: CHANGETABLE does not carry it, and the error says so.
            var otherKey = world
            otherKey.pipeline.name += "_nombre"
            otherKey.pipeline.source.key = ["nombre"]
            otherKey.pipeline.target.table = "clientes_por_nombre"
            otherKey.pipeline.companion = nil
            await #expect {
                _ = try await otherKey.runOnce()
            } throws: { error in
                "\(error)".contains("must be the primary key")
            }
        }
        await base.close()
    }

    /// SQL Server text may hold a NUL character, which PostgreSQL's cannot: that row goes to the dead letters with the
    /// reason (the NUL shown as \u0000, the Redis dead-letter stream keeping the row as read), the others apply.
    @Test func aNulCharacterCostsItsRowOnly() async throws {
        let base = try await SyncWorld.make("msnul", companion: false) { pipeline in
            pipeline.source.table = "notas"
            pipeline.source.key = ["id"]
            pipeline.source.watermark = "modified"
            pipeline.target.table = "notas"
        }
        // The emulator serves the bytes of a bytea column declared nvarchar as text: here 'a', NUL, 'b'.
        try await base.sql(
            """
            CREATE TABLE "\(base.sourceSchema)".notas (id int PRIMARY KEY, nota bytea, modified timestamp(6) NOT NULL);
            COMMENT ON COLUMN "\(base.sourceSchema)".notas.nota IS 'tds:nvarchar(50)';
            INSERT INTO "\(base.sourceSchema)".notas
              SELECT g, CASE WHEN g = 25 THEN '\\x610062'::bytea ELSE convert_to('nota ' || g, 'UTF8') END,
                timestamp '2025-01-01' + g * interval '1 second' FROM generate_series(1, 50) g
            """)
        try await base.withSQLServerSource { world, _ in
            _ = try await world.runOnce()
            let mirror = "\"\(world.targetSchema)\".notas"
            #expect(try await world.int("SELECT count(*) FROM \(mirror)") == 49)
            let dead = try await world.strings(
                "SELECT (row_data->>'id') || ' ' || (row_data->>'nota') || ' | ' || reason FROM \"\(world.targetSchema)\".ferry_dead_letters")
            #expect(dead.count == 1)
            #expect(dead.first??.hasPrefix(#"25 a\u0000b | "#) == true, "\(dead)")
            #expect(dead.first??.contains("0x00") == true, "PostgreSQL's reason: \(dead)")
        }
        await base.close()
    }
}
