import FerryCore
package import FerryPostgres
package import Logging
import PostgresNIO

/// A generated source shaped like the original `VW_VENTAS_SYNC` view, for the demo and the sync benchmark.
///
/// Rows are keyed `C-0000001`, `C-0000002`, …; watermarks spread over the 30 days before the load, five rows
/// sharing each watermark (ties are common in real sources and must neither be skipped nor duplicated).
package struct VentasSource: Sendable {
    package let session: PostgresSession
    /// Quoted, schema-qualified table name.
    package let table: String
    let logger: Logger

    package init(session: PostgresSession, schema: String, table: String = "VW_VENTAS_SYNC", logger: Logger) {
        self.session = session
        self.table = SQLIdentifier.quote(schema) + "." + SQLIdentifier.quote(table)
        self.logger = logger
    }

    /// Drops and re-creates the table with `rows` rows, then analyzes it.
    package func create(rows: Int) async throws {
        try await execute(
            [
                "DROP TABLE IF EXISTS \(table)",
                """
                CREATE TABLE \(table) (
                  "CONDUCE" varchar(20) PRIMARY KEY,
                  "FECHA_EMISION" date NOT NULL,
                  "FACTURADO" boolean NOT NULL,
                  "NUMERO_FACTURA" varchar(20),
                  "CODIGO_CLIENTE" varchar(20) NOT NULL,
                  "CLIENTE" text NOT NULL,
                  "ULTIMA_MODIFICACION" timestamp(6))
                """,
                "CREATE INDEX ON \(table) (\"ULTIMA_MODIFICACION\", \"CONDUCE\")",
            ])
        if rows > 0 { try await insert(1...rows, spreadOver: rows) }
        try await execute(["ANALYZE \(table)"])
    }

    /// Inserts rows `keys`; with `spreadOver`, their watermarks spread over the last 30 days (five rows per
    /// watermark), otherwise they carry the insert's own time.
    package func insert(_ keys: ClosedRange<Int>, spreadOver total: Int? = nil) async throws {
        let watermark =
            if let total {
                "date_trunc('second', localtimestamp - interval '30 days') + (i / 5) * (interval '30 days' / \(max(1, total / 5 + 1)))"
            } else {
                "clock_timestamp()::timestamp"
            }
        try await execute([
            """
            INSERT INTO \(table)
            SELECT 'C-' || lpad(i::text, 7, '0'), date '2025-01-01' + (i % 365), i % 3 = 0,
                   CASE WHEN i % 3 = 0 THEN 'F-' || i END, 'CL-' || (i % 997), 'Cliente ' || (i % 997), \(watermark)
            FROM generate_series(\(keys.lowerBound), \(keys.upperBound)) AS i
            """
        ])
    }

    /// Changes `count` rows picked at random among keys 1…`upTo` (invoiced, a new invoice number, a new
    /// modification time), like the ERP does all day; returns how many rows changed.
    @discardableResult
    package func update(randomRows count: Int, upTo: Int) async throws -> Int {
        try await session.withConnection { connection in
            let rows = try await connection.query(
                """
                UPDATE \(unescaped: table) SET "FACTURADO" = true, "NUMERO_FACTURA" = 'F-' || (random() * 1e9)::bigint,
                  "ULTIMA_MODIFICACION" = clock_timestamp()::timestamp
                WHERE "CONDUCE" IN (SELECT 'C-' || lpad((1 + floor(random() * \(upTo)))::int::text, 7, '0') FROM generate_series(1, \(count)))
                RETURNING 1
                """,
                logger: logger)
            var changed = 0
            for try await _ in rows { changed += 1 }
            return changed
        }
    }

    /// Changes every row once (the benchmark's update pass).
    package func updateAll() async throws {
        try await execute([
            "UPDATE \(table) SET \"CLIENTE\" = \"CLIENTE\" || ' *', \"ULTIMA_MODIFICACION\" = clock_timestamp()::timestamp",
            "VACUUM ANALYZE \(table)",
        ])
    }

    /// Changes one row's client name (the demo shows that a companion edit survives this).
    package func rename(key: Int, client: String) async throws {
        try await session.withConnection { connection in
            try await connection.query(
                """
                UPDATE \(unescaped: table) SET "CLIENTE" = \(client), "ULTIMA_MODIFICACION" = clock_timestamp()::timestamp
                WHERE "CONDUCE" = \(Self.key(key))
                """,
                logger: logger)
        }
    }

    package static func key(_ index: Int) -> String {
        let digits = String(index)
        return "C-" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    private func execute(_ statements: [String]) async throws {
        try await session.withConnection { connection in
            for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }
    }
}
