import FerryCore
import Testing

@testable import FerryExtract

/// How the query library's placeholders are filled: bound where a value stands, escaped inside literals, plain SQL
/// only where it stands bare.
@Suite struct SQLTemplateTests {
    @Test func theSeedsQueryBindsItsLiteralsAndKeepsItsNames() throws {
        let template = try SQLTemplate(
            """
            SELECT id, {factor} as factor_expansion FROM {database}.{schema}.{sales_table}
            WHERE pais = '{country_code}' AND fecha >= '{start_date}' AND name LIKE '%{pattern}%' -- {not_a_placeholder}
            """, file: "ventas.sql")
        #expect(template.names == ["factor", "database", "schema", "sales_table", "country_code", "start_date", "pattern"])
        let values = [
            "factor": "factor_rw1 as factor_rw", "database": "KWP_Colombia", "schema": "dbo", "sales_table": "J_Ventas_CO",
            "country_code": "CO", "start_date": "2024-01-01", "pattern": "o'brien",
        ]
        let postgres = try template.render(values, dialect: .postgres, file: "ventas.sql")
        #expect(postgres.sql.contains("SELECT id, factor_rw1 as factor_rw as factor_expansion FROM KWP_Colombia.dbo.J_Ventas_CO"))
        #expect(postgres.sql.contains("pais = $1 AND fecha >= $2 AND name LIKE '%o''brien%' -- {not_a_placeholder}"), "\(postgres.sql)")
        #expect(postgres.bindings == ["CO", "2024-01-01"])
        let sqlserver = try template.render(values, dialect: .sqlserver, file: "ventas.sql")
        #expect(sqlserver.sql.contains("pais = @p1 AND fecha >= @p2"))
        #expect(sqlserver.bindings == ["CO", "2024-01-01"])
        // DB-Library sends an empty parameter as NULL: an empty value is an empty literal instead.
        var empty = values
        empty["country_code"] = ""
        let withEmpty = try template.render(empty, dialect: .sqlserver, file: "ventas.sql")
        #expect(withEmpty.sql.contains("pais = '' AND fecha >= @p1"), "\(withEmpty.sql)")
        #expect(withEmpty.bindings == ["2024-01-01"])
    }

    @Test func bareValuesMustBePlainSQL() throws {
        let template = try SQLTemplate("SELECT * FROM t WHERE id > {min}", file: "q.sql")
        for hostile in ["1; DROP TABLE t", "1 -- ", "'x'", "1/*", "a\"b", ""] {
            #expect(throws: FerryError.self, "\(hostile)") { try template.render(["min": hostile], dialect: .postgres, file: "q.sql") }
        }
        #expect(try template.render(["min": "coalesce(a, 0)"], dialect: .postgres, file: "q.sql").sql.hasSuffix("coalesce(a, 0)"))
    }

    @Test func missingValuesAreListedAndBracesEscape() throws {
        let template = try SQLTemplate("SELECT '{{literal}}', {{x}}, {a}, '{b}' /* {c} */", file: "q.sql")
        #expect(template.names == ["a", "b"])
        do {
            _ = try template.render([:], dialect: .postgres, file: "q.sql")
            Issue.record("missing values must fail")
        } catch {
            #expect(error.message.contains("{a}, {b}"))
        }
        #expect(throws: FerryError.self) { try SQLTemplate("SELECT 'open", file: "q.sql") }
        #expect(try template.render(["a": "1", "b": "x"], dialect: .postgres, file: "q.sql").sql == "SELECT '{literal}', {x}, 1, $1 /* {c} */")
    }

    @Test func namesCannotEscapeTheirDirectories() {
        for name in ["../etc/passwd", "a/b", "", ".hidden", "-rf", "a b", "ñ"] {
            #expect(throws: FerryError.self, "\(name)") { try QueryLibrary.checkName(name, what: "query") }
        }
        #expect(throws: Never.self) { try QueryLibrary.checkName("Colombia_2024-v1", what: "country") }
        #expect(QueryLibrary.isSecret("db_password") && QueryLibrary.isSecret("API_TOKEN") && !QueryLibrary.isSecret("country_code"))
    }
}
