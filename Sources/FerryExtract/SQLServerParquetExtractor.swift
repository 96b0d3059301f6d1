package import FerryCore
package import FerryParquet
package import FerrySQLServer
package import Logging
import NIOCore

/// Runs a query on SQL Server (FreeTDS's DB-Library) and streams its rows into Parquet files at a destination,
/// holding at most one row group in memory whatever the size of the result. The column types are the result's own
/// (DB-Library's, with decimals' precision and scale), so any statement works: a view, a join, a CTE, a procedure's
/// first result set. Values go from DB-Library's form straight into Parquet's, a batch being converted while
/// DB-Library's thread fetches the next.
package struct SQLServerParquetExtractor: Sendable {
    package let session: SQLServerSession
    package let logger: Logger
    /// Rows fetched per trip to DB-Library's thread.
    package var batchRows = 2000

    package init(session: SQLServerSession, logger: Logger) {
        self.session = session
        self.logger = logger
    }

    /// A query with `@p1`, `@p2`, … and their values (``SQLTemplate`` with the `.sqlserver` dialect).
    package struct Query: Sendable {
        package var name: String
        package var sql: String
        package var bindings: [String]

        package init(name: String, sql: String, bindings: [String]) {
            self.name = name
            self.sql = sql
            self.bindings = bindings
        }

        /// The values as `sp_executesql` parameters: `varchar` when ASCII, so that a comparison with a `varchar` column
        /// converts the parameter and not the column (which would turn an index seek into a scan); `nvarchar` otherwise.
        var parameters: [SQLServerParameter] {
            bindings.map { value in
                let ascii = value.utf8.allSatisfy { $0 < 0x80 }
                let type =
                    ascii
                    ? (value.utf8.count <= 8000 ? "varchar(8000)" : "varchar(max)")
                    : (value.utf16.count <= 4000 ? "nvarchar(4000)" : "nvarchar(max)")
                return SQLServerParameter(value, as: type)
            }
        }
    }

    /// Extracts `query` into `destination`. `progress` gets rows and bytes so far.
    package func extract(
        _ query: Query, to destination: any ExtractDestination, options: ExtractOptions,
        progress: @escaping @Sendable (Int64, Int64) -> Void = { _, _ in }
    ) async throws(FerryError) -> ExtractReport {
        let started = ContinuousClock.now
        let name = query.name
        var sink: RowSink<SQLServerParquetColumn.Conversion>?
        do {
            try await session.withConnection { connection in
                var scratch = ByteBufferAllocator().buffer(capacity: 64)
                func described(_ list: [SQLServerColumn]) throws {
                    guard !list.isEmpty else { return }
                    let columns = try list.map { (column) throws(FerryError) in try SQLServerParquetColumn.map(column, query: name) }
                    sink = try RowSink(
                        name: name, columns: columns.map(\.parquet), conversions: columns.map(\.conversion), options: options,
                        destination: destination, progress: progress)
                }
                func received(_ raw: SQLServerRawRows) throws { try sink?.append(raw, scratch: &scratch) }
                try await connection.queryRaw(query.sql, parameters: query.parameters, batchRows: batchRows, columns: described, received)
            }
        } catch {
            sink?.discard()
            let failure = error as? FerryError ?? FerryError(.server, "\(error)")
            throw failure.message.hasPrefix(name + ":") || failure.message.hasPrefix(name + ",")
                ? failure : FerryError(failure.code, "\(name): \(failure.message)", fix: failure.fix)
        }
        guard var rows = sink else {
            throw FerryError(
                .invalidInput, "\(name): the query returned no rows and no columns (no result set)",
                fix: "make the query's last statement a SELECT (SET NOCOUNT ON before others)")
        }
        return try await rows.finish(overwrite: options.overwrite, started: started)
    }
}

extension RowSink where Conversion == SQLServerParquetColumn.Conversion {
    /// A batch of rows as DB-Library held them.
    mutating func append(_ raw: SQLServerRawRows, scratch: inout ByteBuffer) throws(FerryError) {
        let count = columnCount
        try raw.withValues { (cursor) throws(FerryError) in
            for _ in 0..<raw.rowCount {
                for column in 0..<count {
                    if let bytes = cursor.next() {
                        do throws(FerryError) {
                            try SQLServerParquetColumn.append(bytes, conversions[column], to: writers[column], scratch: &scratch)
                        } catch {
                            throw located(error, column: column)
                        }
                    } else {
                        try appendNull(column: column)
                    }
                }
                try endRow()
            }
        }
    }
}
