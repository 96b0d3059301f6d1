import FerryCore
import Testing

@testable import FerrySync

@Suite("Mirror layout and SQL")
struct MirrorLayoutTests {
    static let schema = SourceSchema(columns: [
        SourceColumn(name: "CONDUCE", type: "character varying(20)"), SourceColumn(name: "FECHA_EMISION", type: "date"),
        SourceColumn(name: "CLIENTE", type: "text"), SourceColumn(name: "ULTIMA_MODIFICACION", type: "timestamp without time zone"),
    ])

    func pipeline(_ adjust: (inout PipelineConfiguration) -> Void = { _ in }) -> PipelineConfiguration {
        var pipeline = PipelineConfiguration(
            name: "ventas",
            source: .init(connection: "postgres", table: "VW_VENTAS_SYNC", query: nil, key: ["CONDUCE"], watermark: "ULTIMA_MODIFICACION"),
            target: .init(schema: "public", table: "datos_vista"),
            batchSize: 100,
            interval: .seconds(1)
        )
        adjust(&pipeline)
        return pipeline
    }

    @Test func namesAreLowercasedRenamedAndRetyped() throws {
        let layout = try MirrorLayout(
            pipeline: pipeline {
                $0.columns = [.init(source: "CLIENTE", name: "customer"), .init(source: "FECHA_EMISION", type: "timestamp")]
            },
            schema: Self.schema
        )
        #expect(layout.columns.map(\.name) == ["conduce", "fecha_emision", "customer", "ultima_modificacion"])
        #expect(layout.columns[1].type == "timestamp")
        #expect(layout.mirrorTypes == [nil, "timestamp", nil, nil])
        #expect(layout.keyIndexes == [0])
        #expect(layout.watermarkIndex == 3)
        #expect(layout.mirrorTable == "\"public\".\"datos_vista\"")
    }

    @Test func castsDropTypeModifiersSoTooLongValuesAreRejectedNotTruncated() {
        #expect(MirrorLayout.baseType("character varying(20)") == "character varying")
        #expect(MirrorLayout.baseType("timestamp(6) without time zone") == "timestamp without time zone")
        #expect(MirrorLayout.baseType("numeric(12,2)[]") == "numeric[]")
        #expect(MirrorLayout.baseType("text") == "text")
        // Without its length, character means character(1): a cast to it would cut the value.
        #expect(MirrorLayout.baseType("character(5)") == "bpchar")
        #expect(MirrorLayout.baseType("character(5)[]") == "bpchar[]")
        #expect(MirrorLayout.baseType("bit(8)") == "bit varying")
    }

    @Test func clashingAndReservedNamesAreRejected() {
        #expect(throws: FerryError.self) {
            try MirrorLayout(pipeline: pipeline { $0.columns = [.init(source: "CLIENTE", name: "conduce")] }, schema: Self.schema)
        }
        #expect(throws: FerryError.self) {
            try MirrorLayout(pipeline: pipeline { $0.columns = [.init(source: "CLIENTE", name: "updated_at")] }, schema: Self.schema)
        }
        // The companion's own id beside a key (or editable column) called id.
        let companion = PipelineConfiguration.Companion(table: "datos_seguimiento", columns: [("nota", "text")])
        #expect(throws: FerryError.self) {
            try MirrorLayout(
                pipeline: pipeline {
                    $0.companion = companion
                    $0.columns = [.init(source: "CONDUCE", name: "id")]
                }, schema: Self.schema)
        }
        #expect(throws: FerryError.self) {
            try MirrorLayout(pipeline: pipeline { $0.companion = .init(table: "datos_seguimiento", columns: [("id", "int")]) }, schema: Self.schema)
        }
        #expect(throws: Never.self) {
            try MirrorLayout(pipeline: pipeline { $0.columns = [.init(source: "CONDUCE", name: "id")] }, schema: Self.schema)
        }
    }

    /// A source that sees deletes (Change Tracking): a negative sequence number is a delete, applied as a soft delete
    /// that keeps the row's values and takes its version; the plain insert of an initial load marks them too.
    @Test func deletesAreSoftAndVersioned() throws {
        let layout = try MirrorLayout(
            pipeline: pipeline {
                $0.source.changeTracking = true
                $0.companion = .init(table: "datos_seguimiento", columns: [("nota", "text")])
            }, schema: Self.schema)
        let statements = MirrorStatements(layout: layout, control: ControlTables(schema: "public", pipeline: "ventas"))
        #expect(statements.upsert.contains("abs(s::int8) AS ferry_seq"))
        #expect(statements.upsert.contains("CASE WHEN s::int8 < 0 THEN now() END AS deleted_at"))
        #expect(statements.upsert.contains("\"cliente\" = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.\"cliente\" ELSE m.\"cliente\" END"))
        #expect(!statements.upsert.contains("\"conduce\" = CASE"), "the key is never assigned")
        #expect(statements.upsert.contains("WHERE m.ferry_seq < EXCLUDED.ferry_seq"))
        #expect(statements.upsert.contains("SELECT \"conduce\" FROM written WHERE inserted"))
        #expect(statements.insertAll.contains("abs(s::int8), CASE WHEN s::int8 < 0 THEN now() END FROM unnest("))
        // Without deletes, the statements stay as they were.
        let plain = MirrorStatements(
            layout: try MirrorLayout(pipeline: pipeline(), schema: Self.schema), control: ControlTables(schema: "public", pipeline: "ventas"))
        #expect(!plain.upsert.contains("abs("))
    }

    @Test func upsertIsGuardedAndCompanionGetsNewKeys() throws {
        let layout = try MirrorLayout(
            pipeline: pipeline { $0.companion = .init(table: "datos_seguimiento", columns: [("nota", "text")]) }, schema: Self.schema)
        let statements = MirrorStatements(layout: layout, control: ControlTables(schema: "public", pipeline: "ventas"))
        #expect(statements.upsert.contains("DISTINCT ON (c0::character varying)"))
        #expect(statements.upsert.contains("ORDER BY c0::character varying, s::int8 DESC"))
        #expect(statements.upsert.contains("WHERE m.ferry_seq < EXCLUDED.ferry_seq"))
        #expect(statements.upsert.contains("IS DISTINCT FROM"))
        #expect(statements.upsert.contains("deleted_at = NULL"))
        // One statement: the companion rows of the keys it inserted, the applied position, the staging emptied.
        #expect(
            statements.upsert.contains("INSERT INTO \"public\".\"datos_seguimiento\" (\"conduce\") SELECT \"conduce\" FROM written WHERE inserted"))
        #expect(statements.upsert.contains("INSERT INTO \"public\".\"ferry_applied\""))
        // The rows are bound arrays after the five binds of the applied position.
        #expect(statements.upsert.contains("FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS staged(s, c0, c1, c2, c3)"))
        #expect(statements.insertAll.hasPrefix("WITH recorded AS (INSERT INTO \"public\".\"ferry_applied\""))
        #expect(statements.companionInsertAll?.hasSuffix("FROM unnest($1::text[]) AS staged(c0)") == true)
    }

    @Test func identifiersAreQuotedEverywhere() throws {
        let hostile = SourceSchema(columns: [SourceColumn(name: "id\"; DROP TABLE x; --", type: "int"), SourceColumn(name: "w", type: "timestamp")])
        let layout = try MirrorLayout(
            pipeline: pipeline {
                $0.source.key = ["id\"; DROP TABLE x; --"]
                $0.source.watermark = "w"
            },
            schema: hostile
        )
        let statements = MirrorStatements(layout: layout, control: ControlTables(schema: "public", pipeline: "ventas"))
        #expect(statements.upsert.contains("\"id\"\"; drop table x; --\""))
        #expect(!statements.upsert.contains("\"id\"; DROP"))
    }
}
