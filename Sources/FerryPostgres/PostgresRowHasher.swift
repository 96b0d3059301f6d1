package import FerryCore
package import Logging
import PostgresNIO

/// Hashes a source's rows in the target's PostgreSQL with the very expression the mirror's side of a reconciliation
/// uses (``PostgresTableSource/rowHash(_:mirrorTypes:)``'s form): each value converted to the mirror column's type,
/// printed, NULL as a marker, joined, through `hashtextextended`. For sources whose database cannot compute it.
package struct PostgresRowHasher: RowTextHashing {
    let session: PostgresSession
    let logger: Logger

    package init(endpoint: PostgresEndpoint, key: String, logger: Logger) {
        self.session = PostgresSession(endpoint: endpoint, key: key, logger: logger)
        self.logger = logger
    }

    package func hashes(of rows: CopyTextRows, types: [String]) async throws -> [Int64] {
        guard !rows.isEmpty else { return [] }
        let arrays = try rows.textArrays(columns: types.count)
        var binds = PostgresBindings()
        for array in arrays { binds.append(array) }
        let names = types.indices.map { "c\($0)" }
        let parts = zip(names, types).map { name, type in "coalesce(\(name)::\(type)::text, E'\\x1e')" }
        let sql = """
            SELECT hashtextextended(concat_ws(E'\\x1f', \(parts.joined(separator: ", "))), 0)
            FROM unnest(\(types.indices.map { "$\($0 + 1)::text[]" }.joined(separator: ", "))) WITH ORDINALITY AS r(\(names.joined(separator: ", ")), n)
            ORDER BY n
            """
        return try await session.withConnection { connection in
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            var hashes: [Int64] = []
            hashes.reserveCapacity(rows.rowCount)
            for try await hash in result.decode(Int64.self) { hashes.append(hash) }
            return hashes
        }
    }

    package func close() async { await session.close() }
}
