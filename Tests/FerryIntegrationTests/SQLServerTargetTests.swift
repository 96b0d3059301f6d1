import FerryCore
import FerrySQLServer
import FerrySandbox
import Logging
import TDSEmulator
import Testing

/// The SQL Server target (the reverse sync's writer) against the TDS emulator: bulk copy, updates and deletes by key in
/// one transaction, every type exact, all or nothing.
@Suite("SQL Server target: bulk copy, update and delete by key", .sandbox)
struct SQLServerTargetTests {
    static let columns = [
        "id", "chico", "grande", "activo", "enorme", "precio", "dinero", "real4", "doble", "nombre", "largo", "latin", "fijo", "datos", "dia",
        "hora", "momento", "viejo", "instante", "guid",
    ]

    /// The target table, made through the emulator (PostgreSQL DDL passes through; comments give SQL Server's own types).
    static let ddl = [
        """
        CREATE TABLE destino (
        id int PRIMARY KEY, serie int GENERATED ALWAYS AS IDENTITY, chico smallint, grande bigint, activo boolean, enorme numeric(38,0),
        precio numeric(12,2), dinero numeric(19,4), real4 real, doble double precision, nombre varchar(50), largo text, latin varchar(20),
        fijo char(5), datos bytea, dia date, hora time(6), momento timestamp(6), viejo timestamp(6), instante timestamptz, guid uuid)
        """,
        "COMMENT ON COLUMN destino.dinero IS 'tds:money'",
        "COMMENT ON COLUMN destino.latin IS 'tds:varchar(20)'",
        "COMMENT ON COLUMN destino.viejo IS 'tds:datetime'",
    ]

    /// Row `id` as PostgreSQL text, the form Ferry moves and reads back. Row 2 holds empty strings (which bulk copy cannot
    /// send), row 3 NULLs, row 1 the boundaries.
    static func row(_ id: Int, version: Int = 0) -> [String?] {
        if id == 3 { return ["3"] + Array(repeating: nil, count: columns.count - 1) }
        let tag = version == 0 ? "\(id)" : "\(id) v\(version)"
        return [
            "\(id)", id == 1 ? "-32768" : "\(id % 1000)", id == 1 ? "9223372036854775807" : "-\(id)", id % 2 == 0 ? "t" : "f",
            id == 1 ? "99999999999999999999999999999999999999" : "\(id)\(version)", id == 1 ? "-1234567890.12" : "\(id).5\(version)",
            id == 1 ? "922337203685477.5807" : "-\(id).0001", "1.5", "2.25", id == 2 ? "" : "ñandú 東京 \(tag)",
            id == 1 ? String(repeating: "x", count: 9000) : id == 2 ? "" : "línea \(tag)", "café \(tag)", "ab   ", "\\x00ff10",
            id == 1 ? "9999-12-31" : "2026-12-0\(1 + id % 5)", id == 1 ? "23:59:59.999999" : "10:00:00", "2026-12-06 10:30:00.123456",
            "2026-01-01 10:00:00.003333", "2026-12-06 10:30:00.123456+00", "6f9619ff-8b86-d011-b42d-00c04fc964ff",
        ]
    }

    static func withTarget(_ body: (SQLServerSession, SQLServerConnection) async throws -> Void) async throws {
        try await TDSEmulatorTests.withEmulator { emulator in
            var options = SQLServerOptions()
            options.bulkCopy = true
            let endpoint = SQLServerClientTests.endpoint(TDSEmulatorHandle(emulator))
            let session = SQLServerSession(endpoint: endpoint, key: "sqlserver", options: options)
            let reader = try await SQLServerConnection.connect(endpoint)
            for statement in ddl { try await reader.execute(statement) }
            try await body(session, reader)
            await reader.close()
            await session.close()
        }
    }

    static func table(_ reader: SQLServerConnection) async throws -> [[String?]] {
        try await reader.rows("SELECT \(columns.map { "[\($0)]" }.joined(separator: ", ")) FROM [destino] ORDER BY [id]")
    }

    @Test func insertsUpdatesAndDeletesArriveExactlyInOneTransaction() async throws {
        try await Self.withTarget { session, reader in
            let target = SQLServerTableTarget(session: session, table: "dbo.destino", key: ["id"])
            let first = try await target.apply(SQLServerChanges(columns: Self.columns, inserts: (1...3000).map { Self.row($0) }))
            #expect(first == SQLServerApplied(inserted: 3000))
            var expected = (1...3000).map { Self.row($0) }
            #expect(try await Self.table(reader) == expected)
            // Identity columns are left to SQL Server.
            #expect(try await reader.rows("SELECT count(*) FROM [destino] WHERE [serie] IS NOT NULL") == [["3000"]])

            // Updates of every column but the key, deletes, and new rows, at once; a key that is not there is counted.
            let updated = Array(stride(from: 4, through: 3000, by: 3))
            let deleted = Array(stride(from: 5, through: 3000, by: 7)).filter { !updated.contains($0) }
            let second = try await target.apply(
                SQLServerChanges(
                    columns: Self.columns, inserts: (3001...3100).map { Self.row($0) },
                    updates: updated.map { Self.row($0, version: 1) } + [Self.row(9999)],
                    deletes: deleted.map { ["\($0)"] } + [["8888"]]))
            #expect(second == SQLServerApplied(inserted: 100, updated: updated.count, deleted: deleted.count, missing: 2))
            for id in updated { expected[id - 1] = Self.row(id, version: 1) }
            let gone = Set(deleted)
            expected = expected.filter { !gone.contains(Int($0[0]!)!) } + (3001...3100).map { Self.row($0) }
            #expect(try await Self.table(reader) == expected)
        }
    }

    /// A batch that fails half-way (a key that is already there, met by the bulk copy after the deletes and updates ran)
    /// leaves the table as it was, and the session's next batch works.
    @Test func aFailureLeavesNothingWritten() async throws {
        try await Self.withTarget { session, reader in
            let target = SQLServerTableTarget(session: session, table: "destino", key: ["id"])
            _ = try await target.apply(SQLServerChanges(columns: Self.columns, inserts: (1...50).map { Self.row($0) }))
            let before = try await Self.table(reader)
            let error = await #expect(throws: FerryError.self) {
                try await target.apply(
                    SQLServerChanges(
                        columns: Self.columns, inserts: [Self.row(60), Self.row(10)], updates: [Self.row(20, version: 2)], deletes: [["30"], ["31"]]))
            }
            #expect(error?.description.contains("2627") == true, "\(String(describing: error))")
            #expect(try await Self.table(reader) == before)
            let after = try await target.apply(SQLServerChanges(columns: Self.columns, deletes: [["30"]]))
            #expect(after == SQLServerApplied(deleted: 1))
        }
    }

    /// The server stops in the middle of a batch (the emulator closed while the bulk copy streams): the batch fails as
    /// unreachable, nothing of it is kept, and once the server is back the same batch applied again lands whole.
    @Test func aServerRestartedMidBatchKeepsNothingOfIt() async throws {
        try await TDSEmulatorTests.withEmulatorConfiguration { emulator, configuration in
            var options = SQLServerOptions()
            options.bulkCopy = true
            let endpoint = SQLServerClientTests.endpoint(TDSEmulatorHandle(emulator))
            let session = SQLServerSession(endpoint: endpoint, key: "sqlserver", options: options)
            let setup = try await SQLServerConnection.connect(endpoint)
            for statement in Self.ddl { try await setup.execute(statement) }
            await setup.close()
            let target = SQLServerTableTarget(session: session, table: "destino", key: ["id"])
            _ = try await target.apply(SQLServerChanges(columns: Self.columns, inserts: (1...10).map { Self.row($0) }))
            let batch = SQLServerChanges(
                columns: Self.columns, inserts: (11...15_000).map { Self.row($0) }, updates: [Self.row(4, version: 1)], deletes: [["5"]])
            let applying = Task { try await target.apply(batch) }
            try await Task.sleep(for: .milliseconds(300))
            await emulator.close()
            let outcome = await applying.result
            guard case .failure(let error) = outcome else {
                Issue.record("the batch finished before the server stopped; make it larger")
                return
            }
            #expect(error is FerryError, "\(error)")
            let restarted = try await TDSEmulator.start(configuration, port: emulator.port, logger: Logger(label: "ferry.test.tds"))
            let reader = try await SQLServerConnection.connect(endpoint)
            #expect(try await Self.table(reader) == (1...10).map { Self.row($0) })
            let again = try await target.apply(batch)
            #expect(again == SQLServerApplied(inserted: 14_990, updated: 1, deleted: 1))
            var expected = (1...15_000).map { Self.row($0) }
            expected[3] = Self.row(4, version: 1)
            expected.remove(at: 4)
            #expect(try await Self.table(reader) == expected)
            await reader.close()
            await session.close()
            await restarted.close()
        }
    }

    @Test func mistakesAreRefusedByNameBeforeAnythingIsWritten() async throws {
        try await Self.withTarget { session, reader in
            var target = SQLServerTableTarget(session: session, table: "destino", key: ["id"], maxDeleteRows: 2)
            _ = try await target.apply(SQLServerChanges(columns: Self.columns, inserts: (1...5).map { Self.row($0) }))
            let before = try await Self.table(reader)
            let tooMany = await #expect(throws: FerryError.self) {
                try await target.apply(SQLServerChanges(columns: Self.columns, deletes: [["1"], ["2"], ["4"]]))
            }
            #expect(tooMany?.description.contains("max_delete_rows (2)") == true)
            let generated = await #expect(throws: FerryError.self) {
                try await target.apply(SQLServerChanges(columns: ["id", "serie"], inserts: [["9", "9"]]))
            }
            #expect(generated?.description.contains("serie") == true && generated?.description.contains("identity") == true)
            let unknown = await #expect(throws: FerryError.self) {
                try await target.apply(SQLServerChanges(columns: ["id", "apellido"], inserts: [["9", "x"]]))
            }
            #expect(unknown?.description.contains("apellido") == true)
            // A value that is not of its column's type: FreeTDS refuses to convert it, the copy stops, nothing is kept.
            var wrong = Self.row(9)
            wrong[1] = "not a number"
            let unconvertible = await #expect(throws: FerryError.self) {
                try await target.apply(SQLServerChanges(columns: Self.columns, inserts: [Self.row(8), wrong], deletes: [["1"]]))
            }
            #expect(
                unconvertible?.description.contains("bulk copy into [destino] stopped at one of rows 1…2") == true,
                "\(String(describing: unconvertible))")
            #expect(try await target.apply(SQLServerChanges(columns: Self.columns, inserts: [Self.row(8)])) == SQLServerApplied(inserted: 1))
            _ = try await target.apply(SQLServerChanges(columns: Self.columns, deletes: [["8"]]))
            target = SQLServerTableTarget(session: session, table: "no_existe", key: ["id"])
            let missing = await #expect(throws: FerryError.self) {
                try await target.apply(SQLServerChanges(columns: ["id"], inserts: [["9"]]))
            }
            #expect(missing?.description.contains("no_existe does not exist") == true, "\(String(describing: missing))")
            #expect(try await Self.table(reader) == before)
        }
    }
}
