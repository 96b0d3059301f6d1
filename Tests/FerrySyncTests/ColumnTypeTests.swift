import Testing

@testable import FerrySync

@Suite("Column types: same type, widening, anything else")
struct ColumnTypeTests {
    @Test(arguments: [
        ("varchar(10)", "character varying(10)"), ("timestamp(3) without time zone", "timestamp(3)"), ("int8", "bigint"),
        ("timestamptz", "timestamp with time zone"), ("decimal(12, 2)", "numeric(12,2)"), ("int4[]", "integer[]"),
    ])
    func spellingsOfOneType(_ first: String, _ second: String) {
        #expect(ColumnType(first) == ColumnType(second))
    }

    @Test(arguments: [
        ("smallint", "integer", true), ("integer", "bigint", true), ("bigint", "integer", false), ("integer", "numeric", true),
        ("integer", "numeric(12,0)", true), ("bigint", "numeric(12,0)", false), ("varchar(10)", "varchar(50)", true),
        ("varchar(50)", "varchar(10)", false), ("varchar(10)", "text", true), ("varchar(10)", "varchar", true), ("varchar", "varchar(10)", false),
        ("text", "varchar(10)", false), ("timestamp(3)", "timestamp(6)", true), ("timestamp(3)", "timestamp", true),
        ("timestamp", "timestamp(3)", false), ("timestamp", "timestamptz", false), ("numeric(10,2)", "numeric(12,2)", true),
        ("numeric(10,2)", "numeric(12,4)", true), ("numeric(10,2)", "numeric(10,4)", false), ("numeric(10,2)", "numeric", true),
        ("numeric", "numeric(38,10)", false), ("real", "double precision", false), ("bigint", "text", false), ("text", "bigint", false),
        ("boolean", "boolean", true),
    ])
    func widening(_ from: String, _ to: String, _ widens: Bool) {
        #expect(ColumnType(from).widens(to: ColumnType(to)) == widens, "\(from) → \(to)")
    }
}
