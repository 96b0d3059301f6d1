import FerryCheck
import FerryCore
import FerrySQLServer
import FerrySandbox
import Logging
import TDSEmulator
import Testing

/// Ferry's SQL Server client (FreeTDS's DB-Library) against the TDS emulator, which tsql and python-tds vouch for
/// (``TDSEmulatorTests``): every type as PostgreSQL text, errors that name the fix, results cancelled half-way.
@Suite("SQL Server client on FreeTDS", .sandbox)
struct SQLServerClientTests {
    static func endpoint(_ emulator: TDSEmulatorHandle, password: String = "s3cret", database: String = "ventas") -> SQLServerEndpoint {
        var endpoint = SQLServerEndpoint()
        endpoint.host = "127.0.0.1"
        endpoint.port = emulator.port
        endpoint.database = database
        endpoint.user = "ferry"
        endpoint.password = Secret(password)
        endpoint.connectTimeout = .seconds(5)
        return endpoint
    }

    @Test func everyTypeArrivesAsPostgreSQLText() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let connection = try await SQLServerConnection.connect(Self.endpoint(TDSEmulatorHandle(emulator)))
            var kinds: [SQLServerText.Kind] = []
            let rows = try await connection.rows("SELECT * FROM [tipos] ORDER BY [id]")
            try await connection.query("SELECT * FROM [tipos] WHERE [id] = 1", columns: { kinds = $0.map(\.kind) }) { _ in }
            #expect(
                kinds == [
                    .int, .smallint, .bigint, .bit, .decimal, .decimal, .real, .float, .text, .text, .text, .binary, .date, .time, .datetime2,
                    .datetimeoffset, .uniqueidentifier,
                ])
            try #require(rows.count == 2)
            #expect(
                rows[0] == [
                    "1", "-32768", "9223372036854775807", "t", "99999999999999999999999999999999999999", "-12345678.91", "1.5", "2.25",
                    "ñandú 東京", String(repeating: "x", count: 9000), "ab   ", "\\x00ff10", "9999-12-31", "23:59:59.999999", "0001-01-01 00:00:00",
                    "2026-12-06 10:30:00.123456+00", "6f9619ff-8b86-d011-b42d-00c04fc964ff",
                ])
            #expect(rows[1] == ["2"] + Array(repeating: nil, count: 16))
            await connection.close()
        }
    }

    /// Values travel beside the statement (sp_executesql): a quote, a semicolon and Unicode arrive as they are, and
    /// SQL Server converts each to the declared type, so a timestamp compares as a timestamp.
    @Test func parametersAreBoundNeverSpliced() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let connection = try await SQLServerConnection.connect(Self.endpoint(TDSEmulatorHandle(emulator)))
            let hostile = "O'Brien'); DROP TABLE [tipos]; -- ñandú 東京"
            func rows(_ sql: String, _ parameters: [SQLServerParameter]) async throws -> [[String?]] {
                try await connection.rows(sql, parameters: parameters)
            }
            let echoed = try await rows("SELECT @p1", [SQLServerParameter(hostile, as: "nvarchar(100)")])
            #expect(echoed == [[hostile]])
            let byKey = try await rows("SELECT [nombre] FROM [tipos] WHERE [id] = @p1", [SQLServerParameter("1", as: "int")])
            #expect(byKey == [["ñandú 東京"]])
            let after = [SQLServerParameter("1999-12-31 23:59:59.9999999", as: "datetime2(7)")]
            let before = try await rows("SELECT count(*) FROM [tipos] WHERE [momento] < @p1", after)
            let later = try await rows("SELECT count(*) FROM [tipos] WHERE [momento] > @p1", after)
            #expect(before == [["1"]] && later == [["0"]], "\(before) \(later)")
            let two = [SQLServerParameter("1", as: "int"), SQLServerParameter("2", as: "int")]
            let range = try await rows("SELECT [id] FROM [tipos] WHERE [id] BETWEEN @p1 AND @p2 ORDER BY [id]", two)
            #expect(range == [["1"], ["2"]])
            let count = try await rows("SELECT count(*) FROM [tipos]", [])
            #expect(count == [["2"]], "the table is still there")
            await connection.close()
        }
    }

    /// FreeTDS 1.3 cuts an nvarchar RPC parameter at 4,000 characters without a word: a long statement (a user's `query:`,
    /// a batch of updates) or a long value lost its end. Longer texts go as ntext and arrive whole.
    @Test func statementsAndValuesLongerThan4000CharactersArriveWhole() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let connection = try await SQLServerConnection.connect(Self.endpoint(TDSEmulatorHandle(emulator)))
            let long = String(repeating: "ñandú 東京 ", count: 1000)
            let padding = String(repeating: " ", count: 5000)
            let rows = try await connection.rows(
                "SELECT @p1 AS a, \(padding) @p2 AS b",
                parameters: [SQLServerParameter(long, as: "nvarchar(max)"), SQLServerParameter("2", as: "int")])
            #expect(rows == [[long, "2"]])
            await connection.close()
        }
    }

    @Test func loginErrorsNameTheFix() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let handle = TDSEmulatorHandle(emulator)
            let wrongPassword = await #expect(throws: FerryError.self) {
                try await SQLServerConnection.connect(Self.endpoint(handle, password: "wrong-secret-42"))
            }
            #expect(wrongPassword?.code == .authentication)
            #expect(wrongPassword?.description.contains("18456") == true && wrongPassword?.description.contains("wrong-secret-42") == false)
            let wrongDatabase = await #expect(throws: FerryError.self) {
                try await SQLServerConnection.connect(Self.endpoint(handle, database: "otra"))
            }
            #expect(wrongDatabase?.code == .databaseMissing, "\(String(describing: wrongDatabase))")
            #expect(wrongDatabase?.description.contains("`otra`") == true)
        }
        var nowhere = SQLServerEndpoint()
        nowhere.host = "127.0.0.1"
        nowhere.port = try FreePort.find()
        nowhere.password = Secret("s3cret")
        nowhere.connectTimeout = .seconds(2)
        let unreachable = await #expect(throws: FerryError.self) { try await SQLServerConnection.connect(nowhere) }
        #expect(unreachable?.code == .unreachable, "\(String(describing: unreachable))")
        #expect(unreachable?.description.contains("127.0.0.1:\(nowhere.port)") == true)
    }

    /// FreeTDS 1.3's DB-Library cannot require encryption from a program: asked to, the connection refuses to log in
    /// unencrypted and says where encryption can be required instead.
    /// `encryption: require` against a server that offers no encryption: no login, and a message that says why.
    @Test func requiredEncryptionIsNeverSilentlyDropped() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            var endpoint = Self.endpoint(TDSEmulatorHandle(emulator))
            endpoint.encryption = .require
            do {
                _ = try await SQLServerConnection.connect(endpoint)
                Issue.record("logged in although encryption was required and the server offers none")
            } catch let error as FerryError {
                #expect(error.message.contains("encrypt"), "\(error)")
                #expect(error.fix?.contains("encryption") == true, "\(error)")
            }
        }
    }

    /// A server that forces encryption: every default and `require` log in over TLS (the whole session encrypted), and
    /// with `ca_file` the certificate must be signed by that CA and name the host.
    @Test func anEncryptedSessionWorksAndItsCertificateIsChecked() async throws {
        let certificate = try await TestCertificate.make()
        let stranger = try await TestCertificate.make("stranger")
        try await TDSEmulatorTests.withEmulatorConfiguration(tls: certificate) { emulator, _ in
            var endpoint = Self.endpoint(TDSEmulatorHandle(emulator))
            for (encryption, caFile) in [(SQLServerEndpoint.Encryption.request, nil), (.require, nil), (.require, certificate.certificate)] {
                endpoint.encryption = encryption
                endpoint.caFile = caFile
                let connection = try await SQLServerConnection.connect(endpoint)
                let rows = try await connection.rows("SELECT [nombre], [largo] FROM [tipos] WHERE [id] = 1")
                #expect(rows == [["ñandú 東京", String(repeating: "x", count: 9000)]], "\(encryption) \(caFile ?? "no CA")")
                await connection.close()
            }
            endpoint.caFile = stranger.certificate
            do {
                _ = try await SQLServerConnection.connect(endpoint)
                Issue.record("logged in although the certificate is not signed by ca_file")
            } catch let error as FerryError {
                #expect(error.message.contains("certificate") || error.message.contains("encrypt"), "\(error)")
                #expect(error.fix?.contains("ca_file") == true, "\(error)")
            }
            endpoint.encryption = .off
            endpoint.caFile = nil
            let off = await #expect(throws: FerryError.self, "a server that forces encryption refuses a client that has none") {
                try await SQLServerConnection.connect(endpoint)
            }
            #expect(off?.fix?.contains("encryption: request") == true, "\(String(describing: off))")
            #expect(off?.description.contains("ferry-") == false, "the freetds.conf section stays Ferry's business")
        }
    }

    /// A server that offers encryption without forcing it (most SQL Servers with a certificate): the default
    /// (`request`) encrypts the login alone — TLS inside the PRELOGIN packets, LOGIN7 in TLS, then plain TDS both ways
    /// (a client that kept sending TLS would not be understood) —, `require` encrypts the whole session, `off` none.
    @Test func aServerThatOffersEncryptionGetsTheLoginEncryptedByDefault() async throws {
        let certificate = try await TestCertificate.make()
        try await TDSEmulatorTests.withEmulatorConfiguration(tls: certificate, loginOnlyEncryption: true) { emulator, _ in
            var endpoint = Self.endpoint(TDSEmulatorHandle(emulator))
            for encryption in [SQLServerEndpoint.Encryption.request, .require, .off] {
                endpoint.encryption = encryption
                let connection = try await SQLServerConnection.connect(endpoint)
                for _ in 0..<2 {
                    let rows = try await connection.rows("SELECT [nombre], [largo] FROM [tipos] WHERE [id] = 1")
                    #expect(rows == [["ñandú 東京", String(repeating: "x", count: 9000)]], "\(encryption)")
                }
                await connection.close()
            }
        }
    }

    @Test func aFailedStatementOrAResultLeftHalfWayLeavesTheConnectionUsable() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let connection = try await SQLServerConnection.connect(Self.endpoint(TDSEmulatorHandle(emulator)))
            let missing = await #expect(throws: FerryError.self) { try await connection.rows("SELECT * FROM [no_existe]") }
            #expect(missing?.description.contains("Msg 208") == true, "\(String(describing: missing))")
            #expect(try await connection.rows("SELECT 1 + 1") == [["2"]])

            // A body that stops after the first batch of a 5,000-row result: the rest is cancelled on the server.
            struct Enough: Error {}
            var seen = 0
            await #expect(throws: Enough.self) {
                try await connection.query("SELECT g FROM generate_series(1, 5000) AS g", batchRows: 100) { rows in
                    seen += rows.rowCount
                    throw Enough()
                }
            }
            #expect(seen == 100)
            #expect(try await connection.rows("SELECT 40 + 2") == [["42"]])
            await connection.close()
        }
    }

    /// Rows are fetched one batch ahead of the one being rendered and handed on: they still arrive whole, in order, in
    /// batches of the size asked, the last one short.
    @Test func rowsFetchedAheadArriveInOrderAndWhole() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let connection = try await SQLServerConnection.connect(Self.endpoint(TDSEmulatorHandle(emulator)))
            var values: [String] = []
            var sizes: [Int] = []
            let read = try await connection.query(
                "SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE CONCAT('fila ', g) END FROM generate_series(1, 5050) AS g",
                batchRows: 100
            ) { rows in
                sizes.append(rows.rowCount)
                for index in 0..<rows.rowCount {
                    let fields = rows.fields(ofRow: index)
                    values.append("\(fields[0] ?? "NULL")|\(fields[1] ?? "NULL")")
                }
            }
            #expect(read.rows == 5050)
            #expect(sizes == Array(repeating: 100, count: 50) + [50])
            #expect(values == (1...5050).map { "\($0)|\($0 % 7 == 0 ? "NULL" : "fila \($0)")" })
            await connection.close()
        }
    }

    /// `ferry bench`'s replaying emulator (``TDSResultCache``) answers a query it served before from memory with the
    /// same rows; the same statement with another parameter value is a query of its own.
    @Test func aReplayingEmulatorAnswersARepeatedQueryWithTheSameRows() async throws {
        let cache = TDSResultCache()
        try await TDSEmulatorTests.withEmulatorConfiguration(resultCache: cache) { emulator, _ in
            let connection = try await SQLServerConnection.connect(Self.endpoint(TDSEmulatorHandle(emulator)))
            let sql = "SELECT * FROM [tipos] WHERE [id] >= @p1 ORDER BY [id]"
            let first = try await connection.rows(sql, parameters: [SQLServerParameter("1", as: "int")])
            let hitsBefore = cache.hitsAndMisses.hits
            let again = try await connection.rows(sql, parameters: [SQLServerParameter("1", as: "int")])
            #expect(first.count == 2)
            #expect(again == first)
            #expect(cache.hitsAndMisses.hits == hitsBefore + 1)
            let other = try await connection.rows(sql, parameters: [SQLServerParameter("2", as: "int")])
            #expect(other.map { $0.first } == [Optional("2")])
            #expect(cache.hitsAndMisses.hits == hitsBefore + 1)
            await connection.close()
        }
    }
}

/// The emulator's port, passed where the emulator type itself is not needed.
struct TDSEmulatorHandle {
    var port: Int
    init(_ emulator: TDSEmulator) { port = emulator.port }
}

/// `ferry check` on a SQL Server endpoint logs in with Ferry's client (against the emulator) and says what is wrong.
@Suite("ferry check on SQL Server", .sandbox)
struct SQLServerCheckTests {
    let checker = EndpointChecker(logger: Logger(label: "ferry.test.check"))

    @Test func eachProblemHasItsStatusAndFix() async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            let handle = TDSEmulatorHandle(emulator)
            let good = SQLServerClientTests.endpoint(handle)
            let ok = await checker.check(name: "sqlserver", endpoint: .sqlserver(good), sourceTables: ["dbo.tipos", "[tipos]"])
            #expect(ok.status == .ok, "\(ok.detail)")
            #expect(ok.detail.contains("Ferry TDS emulator") && ok.detail.contains("user "), "\(ok.detail)")
            #expect(ok.latency != nil)

            let login = await checker.check(name: "sqlserver", endpoint: .sqlserver(SQLServerClientTests.endpoint(handle, password: "nope")))
            #expect(login.status == .authenticationFailed, "\(login.detail)")
            #expect(login.fix?.contains("sqlserver.password") == true)

            let database = await checker.check(name: "sqlserver", endpoint: .sqlserver(SQLServerClientTests.endpoint(handle, database: "otra")))
            #expect(database.status == .databaseMissing, "\(database.detail)")

            let view = await checker.check(name: "sqlserver", endpoint: .sqlserver(good), sourceTables: ["dbo.VW_NO_EXISTE"])
            #expect(view.status == .permissionMissing, "\(view.detail)")
            #expect(view.detail.contains("[dbo].[VW_NO_EXISTE]") && view.fix?.contains("MSSQL_VIEW") == true, "\(view.detail)")

            // A pipeline with change_tracking: true on a table without it.
            let untracked = await checker.check(
                name: "sqlserver", endpoint: .sqlserver(good), sourceTables: ["dbo.tipos"], trackedTables: ["dbo.tipos"])
            #expect(untracked.status == .permissionMissing, "\(untracked.detail)")
            #expect(untracked.detail.contains("Change Tracking is not enabled on [dbo].[tipos]"), "\(untracked.detail)")
            #expect(untracked.fix?.contains("ALTER TABLE [dbo].[tipos] ENABLE CHANGE_TRACKING") == true, "\(String(describing: untracked.fix))")

            // Encryption required of a server that offers none: its own status line and fix.
            var encrypted = good
            encrypted.encryption = .require
            let tls = await checker.check(name: "sqlserver", endpoint: .sqlserver(encrypted))
            #expect(tls.status != .ok && tls.detail.contains("encrypted login failed"), "\(tls.detail)")
            #expect(tls.fix?.contains("sqlserver.encryption") == true, "\(String(describing: tls.fix))")
        }
        var nowhere = SQLServerEndpoint()
        nowhere.host = "127.0.0.1"
        nowhere.port = try FreePort.find()
        nowhere.connectTimeout = .seconds(2)
        let down = await checker.check(name: "sqlserver", endpoint: .sqlserver(nowhere))
        #expect(down.status == .unreachable, "\(down.detail)")
        #expect(down.detail.contains("127.0.0.1:\(nowhere.port)"))
    }
}
