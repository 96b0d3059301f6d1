import DatabricksEmulator
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry extract` against a real PostgreSQL: the query library's parameters, every type into Parquet, checked value
/// by value by pyarrow against what psycopg2 reads from the same table.
@Suite(.sandbox) struct ExtractTests {
    struct World {
        let directory: String
        let environment: [String: String]
        let instance: PostgresInstanceInfo
    }

    struct PostgresInstanceInfo {
        let host: String
        let port: Int
        let user: String
        let password: String
        let database: String
    }

    static func world() async throws -> World {
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        let directory = try FerryProcess.scratchDirectory()
        let table = "extract_\(UInt32.random(in: 0..<UInt32.max))"
        _ = try await postgres.psql(
            """
            CREATE TABLE \(table) (
              id int8 PRIMARY KEY, flag bool, small int2, medium int4, real4 float4, real8 float8,
              price numeric(9,2), amount numeric(18,4), huge numeric(38,10), name text, code varchar(10), fixed char(3), blob bytea,
              day date, at timestamp, at_tz timestamptz, clock time, uid uuid, doc json, docb jsonb, pais text);
            INSERT INTO \(table) VALUES
              (1, true, -32768, 2147483647, 1.5, -2.25e300, -9999999.99, 99999999999999.9999, 9999999999999999999999999999.9999999999,
               'ñandú 漢字 🚢', 'abc', 'xy', '\\x00ff10', '0001-01-01', '1970-01-01 00:00:00.000001', '2024-02-29 23:59:59.999999+00',
               '23:59:59.999999', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": {"c": null}}', 'CO'),
              (2, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, 'CO'),
              (3, false, 0, -1, -0.0, 0.1, 0.01, -0.0001, -0.0000000001, '', 'quote''s', 'q', '', '9999-12-31', '2262-04-11 23:47:16.854775',
               '1900-01-01 00:00:00+05', '00:00:00', '00000000-0000-0000-0000-000000000000', '[]', '{}', 'CO'),
              (4, true, 1, 1, 1, 1, 1, 1, 1, 'other country', 'x', 'x', '', '2024-01-01', '2024-01-01', '2024-01-01 00:00:00+00', '12:00', null, null, null, 'MX');
            INSERT INTO \(table) (id, name, day, pais) SELECT g, 'row ' || g, date '2020-01-01' + g % 1000, 'CO' FROM generate_series(10, 25009) g;
            """)
        try FileManager.default.createDirectory(atPath: directory + "/queries", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/config", withIntermediateDirectories: true)
        try "SELECT * FROM {table} WHERE pais = '{country_code}' AND id >= {min_id} ORDER BY id\n"
            .write(toFile: directory + "/queries/everything.sql", atomically: true, encoding: .utf8)
        try "table: \(table)\nmin_id: 1\nsecret_token: do-not-show\n".write(
            toFile: directory + "/config/common_params.yaml", atomically: true, encoding: .utf8)
        try "country_code: CO\n".write(toFile: directory + "/config/Colombia.yaml", atomically: true, encoding: .utf8)
        let endpoint = postgres.endpoint
        let environment = [
            "PG_HOST": endpoint.host, "PG_PORT": "\(endpoint.port)", "PG_USER": endpoint.user, "PG_PASSWORD": endpoint.password?.value ?? "",
            "PG_DATABASE": endpoint.database,
        ]
        return World(
            directory: directory, environment: environment,
            instance: PostgresInstanceInfo(
                host: endpoint.host, port: endpoint.port, user: endpoint.user, password: endpoint.password?.value ?? "", database: endpoint.database))
    }

    /// PostgreSQL's own JSON of each row (row_to_json) against what pyarrow reads from the file.
    static let compare = #"""
        import sys, json, decimal, datetime, struct
        import pyarrow.parquet as pq
        expected_path, path = sys.argv[1:3]
        expected = [json.loads(line, parse_float=decimal.Decimal) for line in open(expected_path) if line.strip()]
        got = pq.read_table(path).to_pylist()
        assert len(got) == len(expected), f"{len(got)} rows, expected {len(expected)}"
        def f32(x): return struct.unpack('<f', struct.pack('<f', float(x)))[0]
        for row, want_row in zip(got, expected):
            for name, want in want_row.items():
                have = row[name]
                where = f"id {row['id']} {name}: {have!r} != {want!r}"
                if want is None or have is None:
                    assert want is None and have is None, where
                elif name == 'real4':
                    assert f32(have) == f32(want), where
                elif name == 'real8':
                    assert have == float(want), where
                elif name in ('price', 'amount', 'huge'):
                    assert have == decimal.Decimal(str(want)), where
                elif name in ('doc', 'docb'):
                    assert json.loads(have, parse_float=decimal.Decimal) == want, where
                elif name == 'blob':
                    assert have == bytes.fromhex(want[2:]), where
                elif name in ('day', 'clock'):
                    assert have.isoformat() == want, where
                elif name == 'at':
                    assert have == datetime.datetime.fromisoformat(want), where
                elif name == 'at_tz':
                    assert have == datetime.datetime.fromisoformat(want), where
                else:
                    assert have == want, where
        print(pq.read_schema(path))
        """#

    @Test func everyTypeReachesParquetExactly() async throws {
        let world = try await Self.world()
        defer { try? FileManager.default.removeItem(atPath: world.directory) }
        let run = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--destination", "out", "--json"], in: world.directory, environment: world.environment)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains(#""rows":25003"#) && run.stdout.contains(#""sha256":""#), "\(run.stdout)")
        let table =
            try String(contentsOfFile: world.directory + "/config/common_params.yaml", encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("table: ") }.map { String($0.dropFirst(7)) } ?? ""
        let postgres = try #require(try SandboxContext.require().postgres)
        // In slices: the sandbox's psql output is capped at 1 MiB.
        var rows = ""
        for start in stride(from: 0, to: 30_000, by: 3_000) {
            rows +=
                try await postgres.psql(
                    "SET TimeZone = 'UTC'; SELECT row_to_json(t) FROM \(table) t WHERE pais = 'CO' AND id >= \(start) AND id < \(start + 3_000) ORDER BY id"
                ) + "\n"
        }
        try rows.write(toFile: world.directory + "/expected.jsonl", atomically: true, encoding: .utf8)
        let check = try await ExternalClient.run(
            "python3", ["-c", Self.compare, world.directory + "/expected.jsonl", world.directory + "/out/everything.parquet"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("price: decimal128(9, 2)") && check.stdout.contains("at_tz: timestamp[us, tz=UTC]"), "\(check.stdout)")
        // The other reader (a bound query through postgres-nio) writes the same values.
        let bound = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--destination", "bound", "--reader", "query"], in: world.directory, environment: world.environment)
        #expect(bound.status == 0, "\(bound.stderr)")
        let boundCheck = try await ExternalClient.run(
            "python3", ["-c", Self.compare, world.directory + "/expected.jsonl", world.directory + "/bound/everything.parquet"])
        #expect(boundCheck.status == 0, "\(boundCheck.stdout)\(boundCheck.stderr)")
        let hidden = try FileManager.default.contentsOfDirectory(atPath: world.directory + "/out").filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "no temporary file is left: \(hidden)")

        // An existing file is kept without --overwrite, and nothing is half-written.
        let again = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--destination", "out"], in: world.directory, environment: world.environment)
        #expect(again.status != 0 && again.stderr.contains("exists") && again.stderr.contains("--overwrite"), "\(again.stderr)")
        // Split by rows: every file whole, the rows all there.
        let split = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--destination", "parts", "--max-rows-per-file", "10000", "--json"], in: world.directory,
            environment: world.environment)
        #expect(split.status == 0, "\(split.stderr)")
        let parts = try FileManager.default.contentsOfDirectory(atPath: world.directory + "/parts").sorted()
        #expect(parts == ["everything-00000.parquet", "everything-00001.parquet", "everything-00002.parquet"], "\(parts)")
    }

    @Test func parametersAreCheckedBeforeAnythingRuns() async throws {
        let world = try await Self.world()
        defer { try? FileManager.default.removeItem(atPath: world.directory) }
        let shown = try await FerryProcess.run(["show-params", "--country", "Colombia"], in: world.directory, environment: world.environment)
        #expect(shown.stdout.contains("***") && !shown.stdout.contains("do-not-show"), "secrets are masked: \(shown.stdout)")
        let dry = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--destination", "out", "--dry-run"], in: world.directory, environment: world.environment)
        #expect(dry.status == 0 && dry.stdout.contains("pais = $1") && dry.stdout.contains(#"$1 = "CO""#), "\(dry.stdout)")
        #expect(!FileManager.default.fileExists(atPath: world.directory + "/out/everything.parquet"))

        let traversal = try await FerryProcess.run(
            ["extract", "--country", "../config/common_params", "--destination", "out"], in: world.directory, environment: world.environment)
        #expect(traversal.status != 0 && traversal.stderr.contains("is not a name"), "\(traversal.stderr)")
        let unknownQuery = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--query", "nope", "--destination", "out"], in: world.directory, environment: world.environment)
        #expect(unknownQuery.status != 0 && unknownQuery.stderr.contains("use one of: everything"), "\(unknownQuery.stderr)")
        let injection = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--destination", "out", "--param", "min_id=1; DROP TABLE x"], in: world.directory,
            environment: world.environment)
        #expect(injection.status != 0 && injection.stderr.contains("{min_id} stands bare"), "\(injection.stderr)")
        try "SELECT {missing_one}, '{missing_two}'\n".write(toFile: world.directory + "/queries/broken.sql", atomically: true, encoding: .utf8)
        let missing = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--query", "broken", "--destination", "out"], in: world.directory, environment: world.environment)
        #expect(missing.status != 0 && missing.stderr.contains("{missing_one}, {missing_two}"), "\(missing.stderr)")
        let unused = try await FerryProcess.run(
            ["extract", "--country", "Colombia", "--query", "everything", "--destination", "out", "--param", "nobody=1", "--dry-run"],
            in: world.directory, environment: world.environment)
        #expect(unused.status != 0 && unused.stderr.contains("no selected query uses"), "\(unused.stderr)")
    }

    /// A Volume destination through the Files API emulator: the file arrives whole, is kept without --overwrite, and
    /// `ferry test-connection` tries both ends.
    @Test func aVolumeDestinationReceivesWholeFiles() async throws {
        let world = try await Self.world()
        defer { try? FileManager.default.removeItem(atPath: world.directory) }
        let emulator = DatabricksEmulator()
        try await emulator.start()
        emulator.addToken("dapi-extract-test-token")
        emulator.createVolume("/Volumes/main/sales/landing")
        var environment = world.environment
        environment["DATABRICKS_HOST"] = "http://127.0.0.1:\(emulator.port)"
        environment["DATABRICKS_TOKEN"] = "dapi-extract-test-token"
        do {
            let destination = "/Volumes/main/sales/landing/colombia"
            let run = try await FerryProcess.run(
                ["extract", "--country", "Colombia", "--destination", destination, "--json"], in: world.directory, environment: environment)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(#""path":"/Volumes/main/sales/landing/colombia/everything.parquet""#), "\(run.stdout)")
            let uploaded = try #require(emulator.file(destination + "/everything.parquet"))
            try Data(uploaded).write(to: URL(fileURLWithPath: world.directory + "/downloaded.parquet"))
            let rows = try await ExternalClient.run(
                "python3",
                ["-c", "import pyarrow.parquet as pq, sys; print(pq.read_metadata(sys.argv[1]).num_rows)", world.directory + "/downloaded.parquet"])
            #expect(rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "25003", "\(rows.stdout)\(rows.stderr)")
            #expect(!run.stdout.contains("dapi-extract-test-token") && !run.stderr.contains("dapi-extract-test-token"))

            let again = try await FerryProcess.run(
                ["extract", "--country", "Colombia", "--destination", destination], in: world.directory, environment: environment)
            #expect(again.status != 0 && again.stderr.contains("exists"), "\(again.stderr)")
            let missing = try await FerryProcess.run(
                ["extract", "--country", "Colombia", "--destination", "/Volumes/main/sales/nope"], in: world.directory, environment: environment)
            #expect(missing.status != 0 && missing.stderr.contains("CREATE VOLUME"), "\(missing.stderr)")

            let check = try await FerryProcess.run(
                ["test-connection", "--destination", destination, "--json"], in: world.directory, environment: environment)
            #expect(check.status == 0 && check.stdout.contains(#""kind":"databricks""#), "\(check.stdout)\(check.stderr)")
            var wrong = environment
            wrong["DATABRICKS_TOKEN"] = "dapi-wrong"
            let refused = try await FerryProcess.run(["test-connection", "--destination", destination], in: world.directory, environment: wrong)
            #expect(refused.status != 0 && !refused.stdout.contains("dapi-wrong"), "\(refused.stdout)")
        } catch {
            await emulator.stop()
            throw error
        }
        await emulator.stop()
    }

    /// Faults: the process killed with -9 mid-read, the server dropping the connection mid-read, a value Parquet cannot
    /// hold. After each, no file is published (a reader never sees part of one), and a run after the fault writes
    /// every row. A slow query (a row every 0.2 s) holds the read open without loading the machine.
    @Test func faultsNeverPublishPartOfAFile() async throws {
        let world = try await Self.world()
        defer { try? FileManager.default.removeItem(atPath: world.directory) }
        let postgres = try #require(try SandboxContext.require().postgres)
        let table = "extract_faults_\(UInt32.random(in: 0..<UInt32.max))"
        _ = try await postgres.psql("CREATE TABLE \(table) AS SELECT g AS id, 'name ' || g AS name, now() AS at FROM generate_series(1, 200000) g")
        // A marker in the query names this test's sessions: tests running beside it extract too, and are not to be ended.
        let marker = "faults_\(UInt32.random(in: 0..<UInt32.max))"
        try "SELECT g AS id, pg_sleep(0.2)::text AS pause /* \(marker) */ FROM generate_series(1, 100) g\n"
            .write(toFile: world.directory + "/queries/slow.sql", atomically: true, encoding: .utf8)
        try "SELECT * FROM \(table) ORDER BY id\n".write(toFile: world.directory + "/queries/big.sql", atomically: true, encoding: .utf8)
        let destination = world.directory + "/out"
        let slow = ["extract", "--query", "slow", "--destination", "out"]

        // kill -9 while the file is being written.
        var running = try FerryProcess.start(slow, in: world.directory, environment: world.environment)
        try await eventually("the extraction writes its temporary file", timeout: .seconds(60), every: .milliseconds(50)) {
            FileManager.default.fileExists(atPath: destination + "/.slow.parquet.partial")
        }
        running.signal(SIGKILL)
        _ = try await running.wait(timeout: .seconds(10))
        #expect(!FileManager.default.fileExists(atPath: destination + "/slow.parquet"), "nothing published by a killed run")
        // The killed run's server session goes on until it next flushes its output: end it before the next step.
        let mine = "application_name = 'ferry extract' AND query LIKE '%\(marker)%' AND pid <> pg_backend_pid()"
        let sessions = "SELECT count(*) FROM pg_stat_activity WHERE \(mine) AND query LIKE '%COPY%'"
        _ = try await postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE \(mine)")
        try await eventually("the killed run's session ends", timeout: .seconds(30), every: .milliseconds(200)) {
            (try? await postgres.psql(sessions)) == "0"
        }

        // The server ends the session mid-read.
        running = try FerryProcess.start(slow, in: world.directory, environment: world.environment)
        try await eventually("the extraction reads", timeout: .seconds(60), every: .milliseconds(200)) {
            (try? await postgres.psql(sessions + " AND state = 'active'")) == "1"
        }
        _ = try await postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE \(mine)")
        let dropped = try await running.wait(timeout: .seconds(60))
        #expect(dropped != 0, "a dropped connection fails the run: \(running.errors().suffix(500))")
        #expect(running.errors().contains("PostgreSQL"), "\(running.errors().suffix(500))")
        #expect(!FileManager.default.fileExists(atPath: destination + "/slow.parquet"))
        #expect(!FileManager.default.fileExists(atPath: destination + "/.slow.parquet.partial"), "a failed run removes its partial file")

        // A value Parquet cannot hold: the row and column are named, nothing is published.
        _ = try await postgres.psql("UPDATE \(table) SET at = 'infinity' WHERE id = 150000")
        let big = ["extract", "--query", "big", "--destination", "out"]
        let poisoned = try await FerryProcess.run(big, in: world.directory, environment: world.environment, timeout: .seconds(300))
        #expect(
            poisoned.status != 0 && poisoned.stderr.contains("row 150000, column at") && poisoned.stderr.contains("infinity"), "\(poisoned.stderr)")
        #expect(!FileManager.default.fileExists(atPath: destination + "/big.parquet"))

        // After the faults, a whole run.
        _ = try await postgres.psql("UPDATE \(table) SET at = now() WHERE id = 150000")
        let whole = try await FerryProcess.run(big + ["--json"], in: world.directory, environment: world.environment, timeout: .seconds(300))
        #expect(whole.status == 0 && whole.stdout.contains(#""rows":200000"#), "\(whole.stderr)")
        let rows = try await ExternalClient.run(
            "python3",
            [
                "-c", "import pyarrow.parquet as pq, sys; t = pq.read_table(sys.argv[1]); print(t.num_rows, len(set(t['id'].to_pylist())))",
                destination + "/big.parquet",
            ])
        #expect(rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "200000 200000", "\(rows.stdout)\(rows.stderr)")
    }
}
