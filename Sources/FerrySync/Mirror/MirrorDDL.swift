import FerryCore
import FerryPostgres
import Foundation
import Logging
import PostgresNIO

/// Creates and migrates a pipeline's mirror and companion tables. All DDL of the table sync lives here.
///
/// The mirror gets the source columns plus `ferry_seq` (the version of the row last written, so an older
/// version never overwrites a newer one), `created_at`, `updated_at` (a trigger keeps it for writes made outside
/// Ferry) and `deleted_at` (soft delete). The companion gets its own `id`, the key as a UNIQUE foreign key to
/// the mirror, the editable columns and timestamps. New source columns are added to the mirror (nullable); a
/// source column whose type changed stops the pipeline with an error naming it.
enum MirrorDDL {
    static func ensure(_ layout: MirrorLayout, connection: PostgresConnection, logger: Logger) async throws {
        let schema = SQLIdentifier.quote(layout.targetSchema)
        try await run("CREATE SCHEMA IF NOT EXISTS \(schema)", connection, logger, what: "create schema \(layout.targetSchema)")
        try await run(
            """
            CREATE OR REPLACE FUNCTION \(schema).ferry_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.updated_at := now(); RETURN NEW; END $$
            """,
            connection, logger, what: "create function ferry_touch_updated_at"
        )
        try await run(
            """
            CREATE OR REPLACE FUNCTION \(schema).ferry_protect_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'table %.% is written only by Ferry''s sync', TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING HINT = 'edit the companion table instead, or disable protection with protect_mirror: false';
            END $$
            """,
            connection, logger, what: "create function ferry_protect_mirror"
        )

        let existing = try await columns(of: layout.mirrorTable, connection: connection, logger: logger)
        let table = layout.pipeline.target.table
        if existing.isEmpty {
            let definitions = layout.columns.map { "\(layout.quoted($0)) \($0.type)" + (layout.keyColumns.contains($0) ? " NOT NULL" : "") }
            try await run(
                """
                CREATE TABLE IF NOT EXISTS \(layout.mirrorTable) (
                  \(definitions.joined(separator: ",\n  ")),
                  ferry_seq bigint NOT NULL DEFAULT 0,
                  created_at timestamptz NOT NULL DEFAULT now(),
                  updated_at timestamptz NOT NULL DEFAULT now(),
                  deleted_at timestamptz,
                  PRIMARY KEY (\(layout.keyList))
                )
                """,
                connection, logger, what: "create the mirror table \(layout.targetSchema).\(table)"
            )
            try await run(
                "COMMENT ON COLUMN \(layout.mirrorTable).ferry_seq IS \(SQLIdentifier.literal("Ferry: version of the row last written (never decreases)"))",
                connection, logger, what: "comment the mirror table")
        } else {
            for column in layout.columns {
                guard let current = existing.first(where: { $0.name == column.name }) else {
                    try await run(
                        "ALTER TABLE \(layout.mirrorTable) ADD COLUMN IF NOT EXISTS \(layout.quoted(column)) \(column.type)",
                        connection, logger, what: "add column \(column.name) to \(table)")
                    logger.notice(
                        "added a new source column to the mirror",
                        metadata: ["ferry.pipeline": "\(layout.pipeline.name)", "ferry.column": "\(column.name)"])
                    continue
                }
                if normalize(current.type) != normalize(column.type) {
                    throw FerryError(
                        .invalidInput,
                        "pipelines \(layout.pipeline.name): source column \"\(column.source)\" is now \(column.type) but the mirror column \(table).\(column.name) is \(current.type)",
                        fix:
                            "change the mirror column (`ALTER TABLE \(layout.mirrorTable) ALTER COLUMN \(layout.quoted(column)) TYPE \(column.type)`) or keep the mirror's type with a column mapping (`\(column.source): {type: \(current.type)}`)"
                    )
                }
            }
            for required in ["ferry_seq", "created_at", "updated_at", "deleted_at"] where !existing.contains(where: { $0.name == required }) {
                let definition =
                    switch required {
                    case "ferry_seq": "bigint NOT NULL DEFAULT 0"
                    case "deleted_at": "timestamptz"
                    default: "timestamptz NOT NULL DEFAULT now()"
                    }
                try await run(
                    "ALTER TABLE \(layout.mirrorTable) ADD COLUMN IF NOT EXISTS \(required) \(definition)", connection, logger,
                    what: "add \(required) to \(table)")
            }
            try await checkPrimaryKey(layout, connection: connection, logger: logger)
        }
        try await trigger(
            name: "ferry_touch", on: layout.mirrorTable,
            definition:
                "BEFORE UPDATE ON \(layout.mirrorTable) FOR EACH ROW WHEN (current_setting('ferry.sync', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION \(schema).ferry_touch_updated_at()",
            connection, logger)
        if layout.pipeline.protectMirror {
            try await trigger(
                name: "ferry_protect", on: layout.mirrorTable,
                definition:
                    "BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON \(layout.mirrorTable) FOR EACH STATEMENT WHEN (current_setting('ferry.sync', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION \(schema).ferry_protect_mirror()",
                connection, logger)
        } else {
            try await run("DROP TRIGGER IF EXISTS ferry_protect ON \(layout.mirrorTable)", connection, logger, what: "drop the protection trigger")
        }

        if let companion = layout.pipeline.companion, let companionTable = layout.companionTable {
            let existingCompanion = try await columns(of: companionTable, connection: connection, logger: logger)
            if existingCompanion.isEmpty {
                let keys = layout.keyColumns.map { "\(layout.quoted($0)) \($0.type) NOT NULL" }
                let editable = companion.columns.map { "\(SQLIdentifier.quote($0.name)) \($0.type)" }
                try await run(
                    """
                    CREATE TABLE IF NOT EXISTS \(companionTable) (
                      id bigserial PRIMARY KEY,
                      \((keys + editable).joined(separator: ",\n  ")),
                      created_at timestamptz NOT NULL DEFAULT now(),
                      updated_at timestamptz NOT NULL DEFAULT now(),
                      UNIQUE (\(layout.keyList)),
                      FOREIGN KEY (\(layout.keyList)) REFERENCES \(layout.mirrorTable) (\(layout.keyList)) ON UPDATE CASCADE
                    )
                    """,
                    connection, logger, what: "create the companion table \(layout.targetSchema).\(companion.table)"
                )
            } else {
                for column in companion.columns where !existingCompanion.contains(where: { $0.name == column.name }) {
                    try await run(
                        "ALTER TABLE \(companionTable) ADD COLUMN IF NOT EXISTS \(SQLIdentifier.quote(column.name)) \(column.type)",
                        connection, logger, what: "add column \(column.name) to \(companion.table)")
                }
            }
            try await trigger(
                name: "ferry_touch", on: companionTable,
                definition: "BEFORE UPDATE ON \(companionTable) FOR EACH ROW EXECUTE FUNCTION \(schema).ferry_touch_updated_at()",
                connection, logger)
            // Mirror rows that predate the companion get their companion row now.
            try await run(
                "INSERT INTO \(companionTable) (\(layout.keyList)) SELECT \(layout.keyList) FROM \(layout.mirrorTable) ON CONFLICT (\(layout.keyList)) DO NOTHING",
                connection, logger, what: "fill the companion table")
        }
    }

    struct ExistingColumn {
        var name: String
        var type: String
    }

    static func columns(of table: String, connection: PostgresConnection, logger: Logger) async throws -> [ExistingColumn] {
        let rows = try await connection.query(
            """
            SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
            WHERE a.attrelid = to_regclass(\(table)) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """,
            logger: logger
        )
        var result: [ExistingColumn] = []
        for try await (name, type) in rows.decode((String, String).self) { result.append(ExistingColumn(name: name, type: type)) }
        return result
    }

    static func checkPrimaryKey(_ layout: MirrorLayout, connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query(
            """
            SELECT a.attname::text FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = to_regclass(\(layout.mirrorTable)) AND i.indisprimary
            """,
            logger: logger
        )
        var primary: Set<String> = []
        for try await name in rows.decode(String.self) { primary.insert(name) }
        let expected = Set(layout.keyColumns.map(\.name))
        guard primary == expected else {
            throw FerryError(
                .invalidInput,
                "pipelines \(layout.pipeline.name): the mirror \(layout.pipeline.target.table) has primary key (\(primary.sorted().joined(separator: ", "))) but the pipeline's key is (\(expected.sorted().joined(separator: ", ")))",
                fix: "give the mirror the pipeline's key as primary key, or point the pipeline at another target table"
            )
        }
    }

    private static func trigger(name: String, on table: String, definition: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await run("DROP TRIGGER IF EXISTS \(name) ON \(table)", connection, logger, what: "replace trigger \(name)")
        try await run("CREATE TRIGGER \(name) \(definition)", connection, logger, what: "create trigger \(name)")
    }

    /// `character varying(10)` and `varchar(10)` are the same type; format_type prints the long form.
    static func normalize(_ type: String) -> String {
        var text = type.lowercased().replacingOccurrences(of: " ", with: "")
        let aliases = [
            "int8": "bigint", "int4": "integer", "int": "integer", "int2": "smallint", "float8": "doubleprecision", "float4": "real",
            "bool": "boolean", "varchar": "charactervarying", "timestamptz": "timestampwithtimezone", "timestamp": "timestampwithouttimezone",
            "decimal": "numeric", "char": "character",
        ]
        for (short, long) in aliases where text == short || text.hasPrefix(short + "(") { text = long + text.dropFirst(short.count) }
        return text
    }

    static func run(_ sql: String, _ connection: PostgresConnection, _ logger: Logger, what: String) async throws {
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            if PostgresDiagnosis.sqlState(of: error) == "42501" {
                throw FerryError(
                    .permission,
                    "cannot \(what): permission denied for user (\(PostgresDiagnosis.serverMessage(of: error) ?? "insufficient privilege"))",
                    fix: "run the statement once as an owner, or grant CREATE on the schema: \(sql.split(separator: "\n").first ?? "")",
                    underlying: error
                )
            }
            throw error
        }
    }
}
