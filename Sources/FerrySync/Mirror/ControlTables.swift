import FerryCore
import FerryPostgres
import Foundation
import Logging
import PostgresNIO

/// The sync's own state in the target database: `ferry_pipelines` (one row per pipeline: positions, sequence,
/// counters, last error) and `ferry_dead_letters` (rows that could not be applied, with the reason).
///
/// The producer's position is also kept here so that a Redis that lost its data can be recovered from.
struct ControlTables: Sendable {
    let schema: String
    let pipeline: String

    var pipelines: String { SQLIdentifier.qualified(schema, "ferry_pipelines") }
    var deadLetters: String { SQLIdentifier.qualified(schema, "ferry_dead_letters") }

    func ensure(_ connection: PostgresSessionConnection, logger: Logger) async throws {
        try await MirrorDDL.run("CREATE SCHEMA IF NOT EXISTS \(SQLIdentifier.quote(schema))", connection, logger, what: "create schema \(schema)")
        try await MirrorDDL.run(
            """
            CREATE TABLE IF NOT EXISTS \(pipelines) (
              pipeline text PRIMARY KEY,
              source_schema jsonb,
              produced_position jsonb,
              produced_seq bigint NOT NULL DEFAULT 0,
              produced_rows bigint NOT NULL DEFAULT 0,
              produced_at timestamptz,
              null_position jsonb,
              applied_position jsonb,
              applied_seq bigint NOT NULL DEFAULT 0,
              applied_rows bigint NOT NULL DEFAULT 0,
              applied_at timestamptz,
              applied_rate double precision NOT NULL DEFAULT 0,
              initial_load_done boolean NOT NULL DEFAULT false,
              last_error text,
              last_error_at timestamptz,
              updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            connection, logger, what: "create the control table ferry_pipelines")
        for statement in Self.deadLetterStatements(deadLetters) {
            try await MirrorDDL.run(statement, connection, logger, what: "create the control table ferry_dead_letters")
        }
        try await connection.query(
            PostgresQuery(unsafeSQL: "INSERT INTO \(pipelines) (pipeline) VALUES ($1) ON CONFLICT DO NOTHING", binds: binds(pipeline)), logger: logger
        )
    }

    /// The statements that create `ferry_dead_letters` (shared by the table sync and the Redis sync).
    static func deadLetterStatements(_ table: String) -> [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS \(table) (
              id bigserial PRIMARY KEY,
              pipeline text NOT NULL,
              stream_id text,
              seq bigint,
              row_data jsonb,
              reason text NOT NULL,
              sqlstate text,
              deliveries integer,
              created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE UNIQUE INDEX IF NOT EXISTS ferry_dead_letters_row ON \(table) (pipeline, seq)",
        ]
    }

    /// The stored state, for start-up and status.
    struct State: Sendable {
        var sourceSchema: SourceSchema?
        var producedPosition: SourcePosition?
        var producedSeq: Int64 = 0
        var producedRows: Int64 = 0
        var nullPosition: [String]?
        var appliedPosition: SourcePosition?
        var appliedSeq: Int64 = 0
        var appliedRows: Int64 = 0
        var appliedAt: Date?
        var appliedRate: Double = 0
        var initialLoadDone = false
        var lastError: String?
        var lastErrorAt: Date?
    }

    func load(_ connection: PostgresSessionConnection, logger: Logger) async throws -> State? {
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT source_schema::text, produced_position::text, produced_seq, produced_rows, null_position::text,
                           applied_position::text, applied_seq, applied_rows, applied_at, applied_rate, initial_load_done, last_error, last_error_at
                    FROM \(pipelines) WHERE pipeline = $1
                    """,
                binds: binds(pipeline)),
            logger: logger
        )
        for try await row in rows {
            let columns = try row.decode((String?, String?, Int64, Int64, String?, String?, Int64, Int64, Date?, Double, Bool, String?, Date?).self)
            let decoder = JSONDecoder()
            func decode<T: Decodable>(_ text: String?, as type: T.Type) -> T? { text.flatMap { try? decoder.decode(T.self, from: Data($0.utf8)) } }
            return State(
                sourceSchema: decode(columns.0, as: SourceSchema.self),
                producedPosition: decode(columns.1, as: SourcePosition.self),
                producedSeq: columns.2,
                producedRows: columns.3,
                nullPosition: decode(columns.4, as: [String].self),
                appliedPosition: decode(columns.5, as: SourcePosition.self),
                appliedSeq: columns.6,
                appliedRows: columns.7,
                appliedAt: columns.8,
                appliedRate: columns.9,
                initialLoadDone: columns.10,
                lastError: columns.11,
                lastErrorAt: columns.12
            )
        }
        return nil
    }

    func binds(_ values: (any PostgresDynamicTypeEncodable)?...) -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values {
            if let value { bindings.append(value) } else { bindings.appendNull() }
        }
        return bindings
    }

    static func json<T: Encodable>(_ value: T?) -> String? {
        guard let value, let data = try? JSONEncoder().encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
