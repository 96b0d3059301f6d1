import CFreeTDS
import FerryCore
import NIOCore
import Testing

@testable import FerrySQLServer

/// The pieces of the SQL Server source that need no server: mirror types, how positions are bound back, and the
/// watermark arithmetic of the lookback window.
@Suite("SQL Server source: types, parameters, time arithmetic")
struct SQLServerSourceSQLTests {
    @Test func everySQLServerTypeHasTheMirrorTypeAUserWouldPick() {
        let expected: [String: String?] = [
            "bit": "boolean", "tinyint": "smallint", "smallint": "smallint", "int": "integer", "bigint": "bigint",
            "decimal(38,0)": "numeric(38,0)", "numeric(12, 2)": "numeric(12,2)", "money": "numeric(19,4)", "smallmoney": "numeric(10,4)",
            "real": "real", "float": "double precision", "float(24)": "real", "char(5)": "character(5)", "nchar(3)": "character(3)",
            "varchar(20)": "character varying(20)", "nvarchar(50)": "character varying(50)", "nvarchar(max)": "text", "varchar(max)": "text",
            "text": "text", "ntext": "text", "sysname": "character varying(128)", "binary(4)": "bytea", "varbinary(max)": "bytea",
            "image": "bytea", "timestamp": "bytea", "uniqueidentifier": "uuid", "date": "date", "time(7)": "time(6) without time zone",
            "time(3)": "time(3) without time zone", "datetime2(7)": "timestamp(6) without time zone",
            "datetime2(0)": "timestamp(0) without time zone", "datetime": "timestamp without time zone",
            "smalldatetime": "timestamp(0) without time zone", "datetimeoffset(7)": "timestamp(6) with time zone",
            "sql_variant": nil, "xml": nil, "geography": nil, "hierarchyid": nil,
        ]
        for (name, postgres) in expected {
            #expect(SQLServerColumnType(name).postgresType == postgres, "\(name)")
        }
        #expect(SQLServerColumnType("DateTime2(7)").hasSubMicroseconds)
        #expect(!SQLServerColumnType("datetime2(6)").hasSubMicroseconds)
        #expect(!SQLServerColumnType("datetime").hasSubMicroseconds)
    }

    /// Values come back as PostgreSQL printed them; each is rewritten as SQL Server reads its column's type.
    @Test func positionsAreBoundAsTheirColumnsOwnType() {
        #expect(SQLServerColumnType("datetime").parameter("@p1") == ("datetime2(7)", "CAST(@p1 AS datetime)"))
        #expect(SQLServerColumnType("smalldatetime").parameter("@p2") == ("datetime2(7)", "CAST(@p2 AS smalldatetime)"))
        #expect(SQLServerColumnType("nvarchar(20)").parameter("@p3") == ("nvarchar(20)", "@p3"))
        #expect(SQLServerColumnType("varbinary(16)").parameter("@p4") == ("varchar(max)", "CONVERT(varbinary(max), @p4, 1)"))
        #expect(SQLServerColumnType("bit").parameterText("t") == "1")
        #expect(SQLServerColumnType("bit").parameterText("f") == "0")
        #expect(SQLServerColumnType("varbinary(16)").parameterText("\\x00ff") == "0x00ff")
        #expect(SQLServerColumnType("datetimeoffset(7)").parameterText("2026-12-06 10:30:00.123456+00") == "2026-12-06 10:30:00.123456 +00:00")
        #expect(SQLServerColumnType("datetimeoffset(7)").parameterText("2026-12-06 10:30:00-05:30") == "2026-12-06 10:30:00 -05:30")
        #expect(SQLServerColumnType("datetime2(7)").parameterText("2026-12-06 10:30:00.1234567") == "2026-12-06 10:30:00.1234567")
    }

    @Test func watermarkArithmeticCrossesDaysAndYears() throws {
        let value = try #require(SQLServerTimeText("2026-01-01 00:00:10.5"))
        #expect(value.adding(units: -30 * 10_000_000).text() == "2025-12-31 23:59:40.5")
        #expect(value.adding(units: 10).text(digits: 7) == "2026-01-01 00:00:10.5000010")
        #expect(value.text(digits: 7) == "2026-01-01 00:00:10.5000000", "full precision is fixed-width")
        #expect(try #require(SQLServerTimeText("2024-03-01")).adding(units: -1).text() == "2024-02-29", "a date less a moment is the day before")
        #expect(try #require(SQLServerTimeText("9999-12-31 23:59:59.9999999")).text() == "9999-12-31 23:59:59.999999", "the 7th digit is cut")
        #expect(try #require(SQLServerTimeText("2026-12-06 10:30:00+00")).adding(units: -600_000_000).text() == "2026-12-06 10:29:00+00")
        #expect(SQLServerTimeText("not a time") == nil)
        #expect(SQLServerTimeText("2026-13-01") == nil)
    }

    @Test func fullPrecisionKeepsTheSeventhDigit() throws {
        // DBDATETIMEALL: 100 ns units since midnight, then the day.
        var value = DBDATETIMEALL()
        value.time = 863_999_999_999  // 23:59:59.9999999
        value.date = 2_958_463  // 9999-12-31, days since 1900-01-01 as DB-Library gives them
        func render(_ fullPrecision: Bool) throws -> String {
            var buffer = ByteBuffer()
            try withUnsafeBytes(of: value) { raw in
                try SQLServerText.append(.datetime2, raw, into: &buffer, fullPrecision: fullPrecision) { _, _ in false }
            }
            return String(buffer: buffer)
        }
        #expect(try render(false) == "9999-12-31 23:59:59.999999")
        #expect(try render(true) == "9999-12-31 23:59:59.9999999")
    }
}
