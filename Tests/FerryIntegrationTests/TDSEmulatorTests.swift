import FerryPostgres
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging
import PostgresNIO
import TDSEmulator
import Testing

/// The TDS emulator is trusted only because clients that are not Ferry's work against it: FreeTDS's `tsql` and
/// python-tds (a pure-Python TDS implementation) log in, read every served type and NULLs, and get SQL Server's
/// errors for a wrong password, a wrong database and a missing table.
@Suite("TDS emulator", .sandbox)
struct TDSEmulatorTests {
    /// A table of every type the emulator serves from PostgreSQL's own types: one row of boundary values, one of NULLs.
    static func table(in schema: String) -> [String] {
        [
            """
            CREATE TABLE \(schema).tipos (
            id int PRIMARY KEY, chico smallint, grande bigint, activo boolean, enorme numeric(38,0), precio numeric(10,2),
            real4 real, doble double precision, nombre varchar(20), largo text, fijo char(5), datos bytea, dia date,
            hora time(6), momento timestamp(6), instante timestamptz, guid uuid
            )
            """,
            """
            INSERT INTO \(schema).tipos VALUES
            (1, -32768, 9223372036854775807, true, 99999999999999999999999999999999999999, -12345678.91, 1.5, 2.25,
             'ñandú 東京', repeat('x', 9000), 'ab', '\\x00ff10', '9999-12-31', '23:59:59.999999', '0001-01-01 00:00:00',
             '2026-12-06 10:30:00.123456+00', '6f9619ff-8b86-d011-b42d-00c04fc964ff'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
            """,
        ]
    }

    /// An emulator on a fresh schema of the suite's PostgreSQL holding `table`; logins: ferry / s3cret.
    static func withEmulator(_ body: (TDSEmulator) async throws -> Void) async throws {
        try await withEmulatorConfiguration { emulator, _ in try await body(emulator) }
    }

    /// ``withEmulator(_:)`` with the emulator's configuration, to start another one on the same database (a restart).
    /// `tls`: the emulator forces encryption with that certificate (``TestCertificate``).
    static func withEmulatorConfiguration(
        tls: TestCertificate? = nil, loginOnlyEncryption: Bool = false, resultCache: TDSResultCache? = nil,
        _ body: (TDSEmulator, TDSEmulator.Configuration) async throws -> Void
    ) async throws {
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        let schema = "tds_\(UInt32.random(in: 0..<UInt32.max))"
        let logger = Logger(label: "ferry.test.tds")
        try await PostgresSession.using(postgres.endpoint, key: "postgres", logger: logger) { session in
            try await session.withConnection { connection in
                for statement in ["CREATE SCHEMA \(schema)"] + table(in: schema) {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
        }
        var configuration = try TDSEmulator.Configuration(
            postgres: postgres.endpoint.connectionConfiguration(), database: "ventas", logins: ["ferry": "s3cret"])
        configuration.postgres.options.additionalStartupParameters = [("search_path", schema)]
        configuration.tls = tls.map { ($0.certificate, $0.key) }
        configuration.loginOnlyEncryption = loginOnlyEncryption
        configuration.resultCache = resultCache
        let emulator = try await TDSEmulator.start(configuration, logger: logger)
        do {
            try await body(emulator, configuration)
        } catch {
            await emulator.close()
            throw error
        }
        await emulator.close()
    }

    @Test func tsqlReadsEveryTypeAndNull() async throws {
        try await Self.withEmulator { emulator in
            let result = try await ExternalClient.run(
                "tsql", ["-H", "127.0.0.1", "-p", "\(emulator.port)", "-U", "ferry", "-P", "s3cret", "-D", "ventas", "-o", "q"],
                input:
                    "SELECT [id], [chico], [grande], [activo], [enorme], [precio], [nombre], [fijo], [datos], [dia], [hora], [momento], [guid] FROM [tipos] ORDER BY [id]\ngo\nexit\n"
            )
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let first = try #require(lines.first { $0.hasPrefix("1\t") }, "\(result.stdout)\n\(result.stderr)")
            #expect(
                first.split(separator: "\t", omittingEmptySubsequences: false) == [
                    "1", "-32768", "9223372036854775807", "1", "99999999999999999999999999999999999999", "-12345678.91", "ñandú 東京", "ab   ",
                    "00ff10", "Dec 31 9999 12:00AM", "Jan  1 1900 11:59PM", "Jan  1 1 12:00AM", "6F9619FF-8B86-D011-B42D-00C04FC964FF",
                ])
            let second = try #require(lines.first { $0.hasPrefix("2\t") })
            #expect(second.split(separator: "\t", omittingEmptySubsequences: false).dropFirst().allSatisfy { $0 == "NULL" }, "\(second)")
        }
    }

    /// The benchmark's reader of the emulator alone: logs in by hand and counts rows from the final DONE.
    @Test func theRawReaderCountsTheRows() async throws {
        try await Self.withEmulator { emulator in
            let count = try await TDSRawReader.read("SELECT * FROM [tipos]", port: emulator.port)
            #expect(count == 2)
            await #expect(throws: TDSProtocolError.self) { try await TDSRawReader.read("SELECT 1", port: emulator.port, password: "wrong") }
        }
    }

    @Test func pythonTDSReadsEveryTypeAndNull() async throws {
        try await Self.withEmulator { emulator in
            let script = """
                import sys, datetime, pytds
                def show(v):
                    if isinstance(v, datetime.datetime) and v.tzinfo is not None:
                        return 'utc ' + v.astimezone(datetime.timezone.utc).isoformat()
                    return repr(v)
                with pytds.connect(server='127.0.0.1', port=int(sys.argv[1]), database='ventas', user='ferry', password='s3cret', autocommit=False) as c:
                    cur = c.cursor()
                    cur.execute('SELECT * FROM [tipos] ORDER BY [id]')
                    for row in cur.fetchall():
                        print('|'.join(show(v) for v in row))
                    c.commit()
                """
            let result = try await ExternalClient.run("python3", ["-c", script, "\(emulator.port)"])
            #expect(result.status == 0, "\(result.stderr)")
            let rows = result.stdout.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
            try #require(rows.count == 2, "\(result.stdout)\n\(result.stderr)")
            #expect(
                rows[0] == [
                    "1", "-32768", "9223372036854775807", "True", "Decimal('99999999999999999999999999999999999999')", "Decimal('-12345678.91')",
                    "1.5", "2.25", "'ñandú 東京'", "'" + String(repeating: "x", count: 9000) + "'", "'ab   '", "b'\\x00\\xff\\x10'",
                    "datetime.date(9999, 12, 31)", "datetime.time(23, 59, 59, 999999)", "datetime.datetime(1, 1, 1, 0, 0)",
                    "utc 2026-12-06T10:30:00.123456+00:00", "UUID('6f9619ff-8b86-d011-b42d-00c04fc964ff')",
                ])
            #expect(rows[1] == ["2"] + Array(repeating: "None", count: 16))
        }
    }

    /// Bulk copy as python-tds does it (`copy_to`: `INSERT BULK` and a BULK LOAD message with typed columns and a DONE),
    /// independently of FreeTDS: the emulator's BULK LOAD reading follows the protocol, not one client's habits.
    @Test func pythonTDSBulkCopies() async throws {
        try await Self.withEmulator { emulator in
            let script = """
                import sys, datetime, decimal, uuid, pytds
                from pytds.tds_base import Column
                from pytds.tds_types import IntType, BigIntType, NVarCharType, NVarCharMaxType, DecimalType, DateTime2Type, VarBinaryType, BitType, UniqueIdentifierType
                with pytds.connect(server='127.0.0.1', port=int(sys.argv[1]), database='ventas', user='ferry', password='s3cret', autocommit=True) as c:
                    cur = c.cursor()
                    cur.execute('CREATE TABLE carga (id int PRIMARY KEY, nombre varchar(50), largo text, precio numeric(12,2), momento timestamp(6), datos bytea, activo boolean, guid uuid, grande bigint)')
                    columns = [Column('id', IntType(), 0), Column('nombre', NVarCharType(size=50)), Column('largo', NVarCharMaxType()),
                        Column('precio', DecimalType(precision=12, scale=2)), Column('momento', DateTime2Type(precision=6)), Column('datos', VarBinaryType(size=100)),
                        Column('activo', BitType()), Column('guid', UniqueIdentifierType()), Column('grande', BigIntType())]
                    rows = [
                        (1, 'ñandú 東京', 'x' * 9000, decimal.Decimal('-1234567890.12'), datetime.datetime(2026, 12, 6, 10, 30, 0, 123456), b'\\x00\\xff\\x10', True,
                         uuid.UUID('6f9619ff-8b86-d011-b42d-00c04fc964ff'), 9223372036854775807),
                        (2, '', '', decimal.Decimal('0.50'), datetime.datetime(1, 1, 1), b'', False, None, -1),
                        (3, None, None, None, None, None, None, None, None)]
                    cur.copy_to(table_or_view='carga', columns=columns, data=rows)
                    cur.execute('SELECT id, nombre, largo, precio, momento, datos, activo, guid, grande FROM carga ORDER BY id')
                    got = [tuple(row) for row in cur.fetchall()]
                    print('same' if got == rows else 'different: %r' % (got,))
                """
            let result = try await ExternalClient.run("python3", ["-c", script, "\(emulator.port)"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "same", "\(result.stdout)\n\(result.stderr)")
        }
    }

    /// Forced encryption as python-tds speaks it (its own TLS over the PRELOGIN framing, pyOpenSSL), checking the
    /// certificate against its CA: the emulator's TLS follows the protocol, not FreeTDS's habits.
    /// python-tds's own TLS through the emulator: the whole session against a server that forces encryption, and the
    /// login alone (`enc_login_only`) against one that only offers it.
    @Test(arguments: [false, true]) func pythonTDSReadsOverTLS(loginOnly: Bool) async throws {
        let certificate = try await TestCertificate.make()
        try await Self.withEmulatorConfiguration(tls: certificate, loginOnlyEncryption: loginOnly) { emulator, _ in
            let script = """
                import sys, pytds
                with pytds.connect(server='127.0.0.1', port=int(sys.argv[1]), database='ventas', user='ferry', password='s3cret',
                                   cafile=sys.argv[2], validate_host=False, enc_login_only=sys.argv[3] == 'yes', autocommit=True) as c:
                    cur = c.cursor()
                    for _ in range(2):
                        cur.execute('SELECT [nombre] FROM [tipos] WHERE [id] = 1')
                        print(cur.fetchall()[0][0])
                """
            let result = try await ExternalClient.run(
                "python3", ["-c", script, "\(emulator.port)", certificate.certificate, loginOnly ? "yes" : "no"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(
                result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ñandú 東京\nñandú 東京", "\(result.stdout)\n\(result.stderr)")
        }
    }

    @Test func loginAndQueryErrorsAreSQLServers() async throws {
        try await Self.withEmulator { emulator in
            let script = """
                import sys, pytds
                port = int(sys.argv[1])
                try:
                    pytds.connect(server='127.0.0.1', port=port, database='ventas', user='ferry', password='wrong')
                except pytds.Error as e:
                    print(e.msg_no, e.args[0])
                with pytds.connect(server='127.0.0.1', port=port, database='ventas', user='ferry', password='s3cret', autocommit=True) as c:
                    cur = c.cursor()
                    try:
                        cur.execute('SELECT * FROM [no_existe]')
                    except pytds.Error as e:
                        print(e.msg_no)
                    cur.execute('SELECT 1 + 1')
                    print(cur.fetchone()[0])
                """
            let parameters = """
                import sys, datetime, decimal, pytds
                with pytds.connect(server='127.0.0.1', port=int(sys.argv[1]), database='ventas', user='ferry', password='s3cret', autocommit=True) as c:
                    cur = c.cursor()
                    # python-tds sends these through sp_executesql with typed parameters: int, nvarchar, datetime2,
                    # date, decimal, bytes, bool, float, NULL.
                    checks = [
                        ('SELECT [nombre] FROM [tipos] WHERE [id] = %s', (1,)),
                        ('SELECT %s', ("O'Brien; ñandú 東京",)),
                        ('SELECT count(*) FROM [tipos] WHERE [momento] < %s', (datetime.datetime(1999, 12, 31, 23, 59, 59, 999999),)),
                        ('SELECT count(*) FROM [tipos] WHERE [dia] = %s', (datetime.date(9999, 12, 31),)),
                        ('SELECT count(*) FROM [tipos] WHERE [precio] = %s', (decimal.Decimal('-12345678.91'),)),
                        ('SELECT count(*) FROM [tipos] WHERE [datos] = %s', (pytds.Binary(b'\\x00\\xff\\x10'),)),
                        ('SELECT count(*) FROM [tipos] WHERE [activo] = %s AND [doble] = %s', (True, 2.25)),
                        ('SELECT count(*) FROM [tipos] WHERE [id] = %s OR %s IS NULL', (2, None)),
                    ]
                    for sql, values in checks:
                        cur.execute(sql, values)
                        print(cur.fetchone()[0])
                """
            let result = try await ExternalClient.run("python3", ["-c", script, "\(emulator.port)"])
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3, "\(result.stdout)\n\(result.stderr)")
            #expect(lines.first == "18456 Login failed for user 'ferry'.")
            #expect(lines.suffix(2) == ["208", "2"], "a failed statement leaves the connection usable")
            let bound = try await ExternalClient.run("python3", ["-c", parameters, "\(emulator.port)"])
            #expect(bound.status == 0, "\(bound.stderr)")
            #expect(
                bound.stdout.split(separator: "\n").map(String.init) == ["ñandú 東京", "O'Brien; ñandú 東京", "1", "1", "1", "1", "1", "2"],
                "\(bound.stdout)\n\(bound.stderr)")
            // A database the server does not have, through FreeTDS (python-tds retries it until its login timeout).
            let database = try await ExternalClient.run(
                "tsql", ["-H", "127.0.0.1", "-p", "\(emulator.port)", "-U", "ferry", "-P", "s3cret", "-D", "otra"], input: "exit\n")
            let said = database.stdout + database.stderr
            #expect(said.contains("Msg 4060") && said.contains("Cannot open database \"otra\""), "\(said)")
        }
    }
}

/// Runs a program that is not Ferry (a peer client) with `input` on its standard input, output to files.
/// A self-signed certificate for 127.0.0.1 and localhost, made with openssl in a scratch directory.
struct TestCertificate {
    var certificate: String
    var key: String

    static func make(_ name: String = "server") async throws -> TestCertificate {
        let directory = try FerryProcess.scratchDirectory()
        let certificate = directory + "/\(name).pem"
        let key = directory + "/\(name).key"
        let result = try await ExternalClient.run(
            "openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ])
        try #require(result.status == 0, "openssl: \(result.stderr)")
        return TestCertificate(certificate: certificate, key: key)
    }
}

enum ExternalClient {
    static func run(_ program: String, _ arguments: [String], input: String = "", timeout: Duration = .seconds(60)) async throws
        -> FerryProcess.Result
    {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let inputFile = directory + "/stdin"
        try input.write(toFile: inputFile, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        _ = FileManager.default.createFile(atPath: directory + "/stdout", contents: nil)
        _ = FileManager.default.createFile(atPath: directory + "/stderr", contents: nil)
        process.standardInput = FileHandle(forReadingAtPath: inputFile)
        process.standardOutput = FileHandle(forWritingAtPath: directory + "/stdout")
        process.standardError = FileHandle(forWritingAtPath: directory + "/stderr")
        try process.run()
        try await FerryProcess.finish(process, within: timeout, what: program)
        return FerryProcess.Result(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: directory + "/stdout", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? "")
    }
}
