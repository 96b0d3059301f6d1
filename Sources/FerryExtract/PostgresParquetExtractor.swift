package import FerryCore
package import FerryParquet
package import FerryPostgres
import Foundation
package import Logging
import NIOCore
import PostgresNIO

/// A text value bound without a type: PostgreSQL infers it from where the parameter stands (`fecha >= $1` makes it
/// a date), exactly as it would a quoted literal.
struct UntypedText: PostgresNonThrowingEncodable, Sendable {
    static var psqlType: PostgresDataType { PostgresDataType(0) }
    static var psqlFormat: PostgresFormat { .text }
    let value: String
    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeString(value)
    }
}

/// Runs a query on PostgreSQL and streams its rows into Parquet files at a destination, holding at most one row
/// group in memory whatever the size of the result.
///
/// Two ways to read: `COPY (query) TO STDOUT (FORMAT binary)` on a connection of its own (``PostgresCopyOut``), the
/// fast one, with the placeholders' values as quoted literals (COPY takes no parameters); or a bound query through
/// postgres-nio. Either way the column types come from the bound query's description (run with `LIMIT 0`).
package struct PostgresParquetExtractor: Sendable {
    package let session: PostgresSession
    package let endpoint: PostgresEndpoint
    package let logger: Logger

    package init(session: PostgresSession, endpoint: PostgresEndpoint, logger: Logger) {
        self.session = session
        self.endpoint = endpoint
        self.logger = logger
    }

    /// The query, rendered both ways.
    package struct Query: Sendable {
        package var name: String
        /// With `$1`… and their values.
        package var sql: String
        package var bindings: [String]
        /// With the values as quoted literals, for COPY; nil: read through the bound query only.
        package var literalSQL: String?

        package init(name: String, sql: String, bindings: [String], literalSQL: String?) {
            self.name = name
            self.sql = sql
            self.bindings = bindings
            self.literalSQL = literalSQL
        }
    }

    /// Extracts `query` into `destination`. `progress` gets rows and bytes so far.
    package func extract(
        _ query: Query, to destination: any ExtractDestination, options: ExtractOptions,
        progress: @escaping @Sendable (Int64, Int64) -> Void = { _, _ in }
    ) async throws(FerryError) -> ExtractReport {
        let started = ContinuousClock.now
        let name = query.name
        var sink: RowSink<PostgresParquetColumn.Conversion>?
        do {
            let bound = Self.bound(query.sql, query.bindings)
            if let literal = query.literalSQL {
                let columns = try await describe(query)
                var rows = try RowSink(name: name, columns: columns, options: options, destination: destination, progress: progress)
                var decoder = CopyBinaryDecoder()
                let body = literal.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ";")))
                do throws(FerryError) {
                    try await PostgresCopyOut.run(
                        "SET standard_conforming_strings = on; COPY (\n\(body)\n) TO STDOUT (FORMAT binary)", endpoint: endpoint, logger: logger
                    ) { (payload) throws(FerryError) in
                        try decoder.feed(payload, into: &rows)
                    }
                    guard decoder.finished else { throw FerryError(.protocolViolation, "\(name): the COPY data ended without its trailer") }
                } catch {
                    // Nothing of a failed read is left behind: its parts are removed, none was published.
                    rows.discard()
                    throw error.message.hasPrefix(name + ",") ? error : FerryError(error.code, "\(name): \(error.message)", fix: error.fix)
                }
                sink = rows
            } else {
                try await session.withConnection { connection in
                    let result = try await connection.query(bound, logger: logger)
                    let columns = try result.columns.map { (column) throws(FerryError) in try PostgresParquetColumn.map(column, query: name) }
                    var rows = try RowSink(name: name, columns: columns, options: options, destination: destination, progress: progress)
                    defer { if sink == nil { rows.discard() } }
                    for try await row in result {
                        var index = 0
                        for cell in row {
                            if let bytes = cell.bytes {
                                try bytes.withUnsafeReadableBytes { (raw) throws(FerryError) in try rows.append(raw, column: index) }
                            } else {
                                try rows.appendNull(column: index)
                            }
                            index += 1
                        }
                        try rows.endRow()
                    }
                    sink = rows
                }
            }
        } catch let error as FerryError {
            throw error
        } catch let error as PSQLError {
            throw FerryError(
                .server, "\(name): PostgreSQL refused the query: \(PostgresDiagnosis.reason(error))",
                fix: "run the query in psql with the same parameters (ferry extract --dry-run shows them) to see the problem")
        } catch {
            throw FerryError(.server, "\(name): \(PostgresDiagnosis.reason(error))")
        }
        guard var rows = sink else { throw FerryError(.server, "\(name): the query gave no result") }
        return try await rows.finish(overwrite: options.overwrite, started: started)
    }

    static func bound(_ sql: String, _ bindings: [String]) -> PostgresQuery {
        var query = PostgresQuery(unsafeSQL: sql)
        for value in bindings { query.binds.append(UntypedText(value: value)) }
        return query
    }

    /// The result's columns: the bound query wrapped in `LIMIT 0`, which the server plans but does not run.
    func describe(_ query: Query) async throws -> [PostgresParquetColumn] {
        let body = query.sql.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ";")))
        return try await session.withConnection { connection in
            let result = try await connection.query(
                Self.bound("SELECT * FROM (\n\(body)\n) AS ferry_extract LIMIT 0", query.bindings), logger: logger)
            let columns = try result.columns.map { (column) throws(FerryError) in try PostgresParquetColumn.map(column, query: query.name) }
            for try await _ in result {}
            return columns
        }
    }

}

/// PostgreSQL's binary COPY format: a signature, flags and a header extension, then per row a 16-bit field count and
/// per field a 32-bit length (-1: NULL) and the value as the binary result format has it; -1 as the count ends it.
/// Rows are parsed straight from each CopyData payload; one cut across payloads is carried over.
struct CopyBinaryDecoder {
    static let signature: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]
    private var headerRead = false
    private(set) var finished = false
    private var carry: [UInt8] = []

    mutating func feed(_ payload: UnsafeRawBufferPointer, into sink: inout RowSink<PostgresParquetColumn.Conversion>) throws(FerryError) {
        if carry.isEmpty {
            let used = try parse(payload, into: &sink)
            if used < payload.count { carry.append(contentsOf: payload[used...]) }
        } else {
            carry.append(contentsOf: payload)
            let bytes = carry
            var used = 0
            var failure: FerryError?
            bytes.withUnsafeBytes { raw in
                do throws(FerryError) { used = try parse(raw, into: &sink) } catch { failure = error }
            }
            if let failure { throw failure }
            carry.removeFirst(used)
        }
    }

    /// Parses whole rows from `bytes`; returns how many bytes they took.
    private mutating func parse(_ bytes: UnsafeRawBufferPointer, into sink: inout RowSink<PostgresParquetColumn.Conversion>) throws(FerryError) -> Int
    {
        var position = 0
        if !headerRead {
            guard bytes.count >= 19 else { return 0 }
            guard Array(bytes[0..<11]) == Self.signature else {
                throw FerryError(.protocolViolation, "\(sink.name): the COPY data does not start with PGCOPY")
            }
            let extensionLength = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 15, as: UInt32.self)))
            guard extensionLength <= bytes.count - 19 else { return 0 }
            position = 19 + extensionLength
            headerRead = true
        }
        let columns = sink.columnCount
        while position + 2 <= bytes.count {
            let count = Int(Int16(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: Int16.self)))
            if count == -1 {
                finished = true
                return position + 2
            }
            guard count == columns else {
                throw FerryError(.protocolViolation, "\(sink.name): a COPY row has \(count) fields where the query has \(columns) columns")
            }
            // Check the whole row is here before converting any of it.
            var cursor = position + 2
            for _ in 0..<count {
                guard cursor + 4 <= bytes.count else { return position }
                let length = Int(Int32(bigEndian: bytes.loadUnaligned(fromByteOffset: cursor, as: Int32.self)))
                cursor += 4
                if length > 0 {
                    guard length <= bytes.count - cursor else { return position }
                    cursor += length
                } else if length < -1 {
                    throw FerryError(.protocolViolation, "\(sink.name): a COPY field of \(length) bytes")
                }
            }
            cursor = position + 2
            for column in 0..<count {
                let length = Int(Int32(bigEndian: bytes.loadUnaligned(fromByteOffset: cursor, as: Int32.self)))
                cursor += 4
                if length < 0 {
                    try sink.appendNull(column: column)
                } else {
                    try sink.append(UnsafeRawBufferPointer(rebasing: bytes[cursor..<(cursor + length)]), column: column)
                    cursor += length
                }
            }
            try sink.endRow()
            position = cursor
        }
        return position
    }
}

extension RowSink where Conversion == PostgresParquetColumn.Conversion {
    init(
        name: String, columns: [PostgresParquetColumn], options: ExtractOptions, destination: any ExtractDestination,
        progress: @escaping @Sendable (Int64, Int64) -> Void
    ) throws(FerryError) {
        try self.init(
            name: name, columns: columns.map(\.parquet), conversions: columns.map(\.conversion), options: options, destination: destination,
            progress: progress)
    }

    /// One non-null value in PostgreSQL's binary form.
    @inline(__always)
    mutating func append(_ raw: UnsafeRawBufferPointer, column: Int) throws(FerryError) {
        do {
            try PostgresParquetColumn.append(raw: raw, conversions[column], to: writers[column])
        } catch {
            throw located(error, column: column)
        }
    }
}
