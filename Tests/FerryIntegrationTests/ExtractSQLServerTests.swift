import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging
import PostgresNIO
import TDSEmulator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry extract` from SQL Server: FreeTDS against the TDS emulator (SQL Server itself cannot run here), every SQL
/// Server type into Parquet checked value by value by pyarrow, parameters bound through sp_executesql, and faults.
@Suite(.sandbox) struct ExtractSQLServerTests {
    struct World {
        let directory: String
        let environment: [String: String]
        let schema: String
        let emulator: TDSEmulator

        func close() async {
            await emulator.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static func world(bigRows: Int = 0) async throws -> World {
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        let schema = "mx_\(UInt32.random(in: 0..<UInt32.max))"
        let declared = [
            "ti": "tinyint", "m": "money", "sm": "smallmoney", "c": "char(5)", "vc": "varchar(20)", "nc": "nchar(3)", "vcmax": "varchar(max)",
            "bin": "binary(4)", "t": "time(7)", "dt2": "datetime2(7)", "dto": "datetimeoffset(7)", "dtm": "datetime", "sdt": "smalldatetime",
        ]
        _ = try await postgres.psql(
            """
            CREATE SCHEMA \(schema);
            CREATE TABLE \(schema).tipos (
              id int PRIMARY KEY, b boolean, ti smallint, si smallint, i int, bi bigint, d38 numeric(38,0), d numeric(12,4), m numeric(19,4),
              sm numeric(10,4), r real, f double precision, c char(5), vc varchar(20), nc char(3), nv varchar(30), vmax text, vcmax text,
              bin bytea, vb bytea, dt date, t time(6), dt2 timestamp(6), dto timestamptz, dtm timestamp, sdt timestamp, g uuid,
              pais varchar(2));
            INSERT INTO \(schema).tipos VALUES
              (1, true, 255, 32767, 2147483647, 9223372036854775807, 99999999999999999999999999999999999999, 12345678.1234,
               922337203685477.5807, 214748.3647, 1.5, 1.7976931348623157e+308, 'ab', 'ñandú', '東', '東京 ✓ ñ', repeat('x', 9000) || '東',
               repeat('a', 8001), '\\x00ff10', '\\xdeadbeef', '9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999',
               '2026-12-06 10:30:00.123456+00', '9999-12-31 23:59:59.996667', '2079-06-06 23:59:00', '6f9619ff-8b86-d011-b42d-00c04fc964ff', 'CO'),
              (2, false, 0, -32768, -2147483648, -9223372036854775808, -99999999999999999999999999999999999999, -0.0001,
               -922337203685477.5808, -214748.3648, -2.25e-10, -5e-324, '', '', '', '', '', '', '\\x', '\\x', '0001-01-01', '00:00:00',
               '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '1753-01-01 00:00:00.003333', '1900-01-01 00:00:00',
               '00000000-0000-0000-0000-000000000000', 'CO'),
              (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, 'CO'),
              (4, true, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 'x', 'x', 'x', 'x', 'x', 'x', '\\x01', '\\x01', '2024-01-01', '12:00', '2024-01-01',
               '2024-01-01 00:00:00+00', '2024-01-01', '2024-01-01', NULL, 'MX');
            CREATE TABLE \(schema).big AS SELECT g AS id, 'name ' || g AS name, timestamp '2024-01-01' + g * interval '1 second' AS at
              FROM generate_series(1, \(bigRows)) g;
            """)
        _ = try await postgres.psql(
            declared.map { "COMMENT ON COLUMN \(schema).tipos.\($0.key) IS 'tds:\($0.value)'" }.joined(separator: ";\n"))
        var configuration = try TDSEmulator.Configuration(
            postgres: postgres.endpoint.connectionConfiguration(), database: "ventas", logins: ["ferry": "s3cret"])
        configuration.postgres.options.additionalStartupParameters = [("search_path", schema)]
        let emulator = try await TDSEmulator.start(configuration, logger: Logger(label: "ferry.test.tds"))

        let directory = try FerryProcess.scratchDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/queries", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/config", withIntermediateDirectories: true)
        try "SELECT * FROM {schema}.tipos WHERE pais = '{country_code}' ORDER BY id\n"
            .write(toFile: directory + "/queries/tipos.sql", atomically: true, encoding: .utf8)
        try "country_code: CO\n".write(toFile: directory + "/config/Colombia.yaml", atomically: true, encoding: .utf8)
        try "schema: \(schema)\n".write(toFile: directory + "/config/common_params.yaml", atomically: true, encoding: .utf8)
        let endpoint = postgres.endpoint
        // Both servers configured: the default source is SQL Server, as the query library's original.
        let environment = [
            "MSSQL_HOST": "127.0.0.1", "MSSQL_PORT": "\(emulator.port)", "MSSQL_DATABASE": "ventas", "MSSQL_USER": "ferry",
            "MSSQL_PASSWORD": "s3cret", "PG_HOST": endpoint.host, "PG_PORT": "\(endpoint.port)", "PG_USER": endpoint.user,
            "PG_PASSWORD": endpoint.password?.value ?? "", "PG_DATABASE": endpoint.database,
        ]
        return World(directory: directory, environment: environment, schema: schema, emulator: emulator)
    }

    /// The values SQL Server holds for rows 1–3, as pyarrow must read them.
    static let compare = #"""
        import sys, struct, datetime as dt
        from decimal import Decimal as D
        import pyarrow.parquet as pq
        utc = dt.timezone.utc
        def f32(x): return struct.unpack('<f', struct.pack('<f', x))[0]
        expected = [
            dict(id=1, b=True, ti=255, si=32767, i=2147483647, bi=9223372036854775807, d38=D('99999999999999999999999999999999999999'),
                 d=D('12345678.1234'), m=D('922337203685477.5807'), sm=D('214748.3647'), r=1.5, f=1.7976931348623157e+308, c='ab   ',
                 vc='ñandú', nc='東  ', nv='東京 ✓ ñ', vmax='x' * 9000 + '東', vcmax='a' * 8001, bin=b'\x00\xff\x10\x00', vb=b'\xde\xad\xbe\xef',
                 dt=dt.date(9999, 12, 31), t=dt.time(23, 59, 59, 999999), dt2=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                 dto=dt.datetime(2026, 12, 6, 10, 30, 0, 123456, tzinfo=utc), dtm=dt.datetime(9999, 12, 31, 23, 59, 59, 996667),
                 sdt=dt.datetime(2079, 6, 6, 23, 59), g='6f9619ff-8b86-d011-b42d-00c04fc964ff', pais='CO'),
            dict(id=2, b=False, ti=0, si=-32768, i=-2147483648, bi=-9223372036854775808, d38=D('-99999999999999999999999999999999999999'),
                 d=D('-0.0001'), m=D('-922337203685477.5808'), sm=D('-214748.3648'), r=f32(-2.25e-10), f=-5e-324, c='     ', vc='', nc='   ',
                 nv='', vmax='', vcmax='', bin=b'\x00\x00\x00\x00', vb=b'', dt=dt.date(1, 1, 1), t=dt.time(0), dt2=dt.datetime(1, 1, 1),
                 dto=dt.datetime(1, 1, 1, tzinfo=utc), dtm=dt.datetime(1753, 1, 1, 0, 0, 0, 3333), sdt=dt.datetime(1900, 1, 1),
                 g='00000000-0000-0000-0000-000000000000', pais='CO'),
            dict(id=3, pais='CO'),
        ]
        table = pq.read_table(sys.argv[1])
        got = table.to_pylist()
        assert len(got) == len(expected), f"{len(got)} rows"
        for row, want in zip(got, expected):
            for name, have in row.items():
                w = want.get(name)
                assert have == w and type(have) == type(w), f"id {row['id']} {name}: {have!r} != {w!r}"
        print(table.schema)
        """#

    @Test func everySQLServerTypeReachesParquetExactly() async throws {
        let world = try await Self.world()
        do {
            let dry = try await FerryProcess.run(
                ["extract", "--country", "Colombia", "--destination", "out", "--dry-run"], in: world.directory, environment: world.environment)
            #expect(dry.status == 0 && dry.stdout.contains("pais = @p1") && dry.stdout.contains(#"@p1 = "CO""#), "\(dry.stdout)\(dry.stderr)")
            let run = try await FerryProcess.run(
                ["extract", "--country", "Colombia", "--destination", "out", "--json"], in: world.directory, environment: world.environment)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(#""rows":3"#), "\(run.stdout)")
            let check = try await ExternalClient.run("python3", ["-c", Self.compare, world.directory + "/out/tipos.parquet"])
            #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            for column in [
                "ti: int16", "d38: decimal128(38, 0)", "m: decimal128(19, 4)", "sm: decimal128(10, 4)", "r: float", "f: double", "c: string",
                "bin: binary", "dt: date32[day]", "t: time64[us]", "dt2: timestamp[us]", "dto: timestamp[us, tz=UTC]", "dtm: timestamp[us]",
                "g: string",
            ] {
                #expect(check.stdout.contains(column + "\n"), "\(column) in \(check.stdout)")
            }
            // DuckDB reads the same file.
            let duck = try await ExternalClient.run(
                "python3",
                [
                    "-c", "import duckdb, sys; print(duckdb.sql(f\"SELECT count(*), sum(bi::hugeint), max(m) FROM '{sys.argv[1]}'\").fetchall())",
                    world.directory + "/out/tipos.parquet",
                ])
            #expect(duck.stdout.contains("(3, -1, Decimal('922337203685477.5807'))"), "\(duck.stdout)\(duck.stderr)")

            // A value outside ASCII is bound as nvarchar, and one with a quote travels as it is: neither is spliced.
            try "SELECT id, nv FROM tipos WHERE nv = '{name}' OR vc = '{other}' ORDER BY id\n"
                .write(toFile: world.directory + "/queries/named.sql", atomically: true, encoding: .utf8)
            let named = try await FerryProcess.run(
                [
                    "extract", "--query", "named", "--destination", "named", "--param", "name=東京 ✓ ñ", "--param", "other=x' OR '1'='1",
                    "--json",
                ], in: world.directory, environment: world.environment)
            #expect(named.status == 0 && named.stdout.contains(#""rows":1"#), "\(named.stdout)\(named.stderr)")

            // The same query on PostgreSQL, by --source.
            let postgres = try await FerryProcess.run(
                ["extract", "--country", "Colombia", "--query", "tipos", "--destination", "pg", "--source", "postgres", "--json"],
                in: world.directory,
                environment: world.environment)
            #expect(postgres.status == 0 && postgres.stdout.contains(#""rows":3"#), "\(postgres.stdout)\(postgres.stderr)")
            let unknown = try await FerryProcess.run(
                ["extract", "--country", "Colombia", "--destination", "pg", "--source", "erp"], in: world.directory, environment: world.environment)
            #expect(unknown.status != 0 && unknown.stderr.contains("use one of sqlserver, postgres"), "\(unknown.stderr)")

            // test-connection logs in to the SQL Server source.
            let tried = try await FerryProcess.run(["test-connection", "--json"], in: world.directory, environment: world.environment)
            #expect(tried.status == 0 && tried.stdout.contains(#""kind":"sqlserver""#), "\(tried.stdout)\(tried.stderr)")
            var wrong = world.environment
            wrong["MSSQL_PASSWORD"] = "not-the-password"
            let refused = try await FerryProcess.run(["test-connection"], in: world.directory, environment: wrong)
            #expect(refused.status != 0 && !refused.stdout.contains("not-the-password"), "\(refused.stdout)")
        } catch {
            await world.close()
            throw error
        }
        await world.close()
    }

    /// Faults: kill -9 mid-read, the server going away mid-read (the emulator closed, then started again on its port),
    /// a statement SQL Server refuses. After each, no file is published and no partial file is left by a run that
    /// ended itself; then a whole run writes every row once.
    @Test func faultsNeverPublishPartOfAFileFromSQLServer() async throws {
        let rows = 150_000
        var world = try await Self.world(bigRows: rows)
        let destination = world.directory + "/out"
        let big = ["extract", "--query", "big", "--destination", "out"]
        do {
            try "SELECT * FROM big ORDER BY id\n".write(toFile: world.directory + "/queries/big.sql", atomically: true, encoding: .utf8)
            try "SELECT * FROM no_such_table\n".write(toFile: world.directory + "/queries/missing.sql", atomically: true, encoding: .utf8)

            // kill -9 while the file is being written.
            var running = try FerryProcess.start(big, in: world.directory, environment: world.environment)
            try await eventually("the extraction writes its temporary file", timeout: .seconds(60), every: .milliseconds(20)) {
                FileManager.default.fileExists(atPath: destination + "/.big.parquet.partial")
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
            running.signal(SIGKILL)
            _ = try await running.wait(timeout: .seconds(10))
            #expect(!FileManager.default.fileExists(atPath: destination + "/big.parquet"), "nothing published by a killed run")
            // What the killed run leaves is a hidden partial file, which the next run writes over; removed here so that
            // the next step sees its own.
            try FileManager.default.removeItem(atPath: destination + "/.big.parquet.partial")

            // The server goes away mid-read.
            running = try FerryProcess.start(big, in: world.directory, environment: world.environment)
            try await eventually("the extraction reads", timeout: .seconds(60), every: .milliseconds(20)) {
                FileManager.default.fileExists(atPath: destination + "/.big.parquet.partial")
            }
            let configuration = world.emulator.configuration
            let port = world.emulator.port
            await world.emulator.close()
            let dropped = try await running.wait(timeout: .seconds(60))
            #expect(dropped != 0, "a dropped connection fails the run: \(running.errors().suffix(500))")
            #expect(running.errors().contains("big:") && running.errors().contains("127.0.0.1:\(port)"), "\(running.errors().suffix(800))")
            #expect(!FileManager.default.fileExists(atPath: destination + "/big.parquet"))
            #expect(!FileManager.default.fileExists(atPath: destination + "/.big.parquet.partial"), "a failed run removes its partial file")
            world = World(
                directory: world.directory, environment: world.environment, schema: world.schema,
                emulator: try await TDSEmulator.start(configuration, port: port, logger: Logger(label: "ferry.test.tds")))

            // A statement SQL Server refuses: its message and the query's name, nothing written.
            let refused = try await FerryProcess.run(
                ["extract", "--query", "missing", "--destination", "out"], in: world.directory, environment: world.environment)
            #expect(refused.status != 0 && refused.stderr.contains("missing:") && refused.stderr.contains("no_such_table"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: destination + "/missing.parquet"))

            // After the faults, a whole run (in row groups of 50,000 rows, as asked).
            let whole = try await FerryProcess.run(
                big + ["--json", "--row-group-rows", "50000", "--page-bytes", "65536"], in: world.directory, environment: world.environment,
                timeout: .seconds(300))
            #expect(whole.status == 0 && whole.stdout.contains(#""rows":\#(rows)"#), "\(whole.stderr)")
            let check = try await ExternalClient.run(
                "python3",
                [
                    "-c",
                    "import pyarrow.parquet as pq, sys; f = pq.ParquetFile(sys.argv[1]); t = f.read(); ids = t['id'].to_pylist(); print(t.num_rows, len(set(ids)), ids == sorted(ids), f.metadata.num_row_groups)",
                    destination + "/big.parquet",
                ])
            #expect(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(rows) \(rows) True 3", "\(check.stdout)\(check.stderr)")
            let hidden = try FileManager.default.contentsOfDirectory(atPath: destination).filter { $0.hasPrefix(".") }
            #expect(hidden.isEmpty, "no temporary file is left: \(hidden)")
        } catch {
            await world.close()
            throw error
        }
        await world.close()
    }
}
