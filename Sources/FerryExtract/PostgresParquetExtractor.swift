import Crypto
package import FerryCore
package import FerryParquet
package import FerryPostgres
import Foundation
package import Logging
import NIOCore
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

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

/// How an extraction writes its files.
package struct ExtractOptions: Sendable {
    package var parquet = ParquetWriterOptions()
    /// Start a new file after this many rows / bytes (nil: one file per query).
    package var rowsPerFile: Int?
    package var bytesPerFile: Int?
    package var overwrite = false

    package init() {}
}

/// One file written: its name at the destination, rows, bytes and SHA-256.
package struct ExtractedFile: Sendable, Codable, Equatable {
    package var name: String
    package var path: String
    package var rows: Int64
    package var bytes: Int64
    package var sha256: String
}

/// What one query produced.
package struct ExtractReport: Sendable, Codable, Equatable {
    package var query: String
    package var rows: Int64
    package var bytes: Int64
    package var seconds: Double
    package var files: [ExtractedFile]
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
        var sink: RowSink?
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
        let files = try await rows.publishAll(overwrite: options.overwrite)
        progress(files.reduce(0) { $0 + $1.rows }, files.reduce(0) { $0 + $1.bytes })
        let elapsed = (ContinuousClock.now - started).components
        return ExtractReport(
            query: name, rows: files.reduce(0) { $0 + $1.rows }, bytes: files.reduce(0) { $0 + $1.bytes },
            seconds: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18, files: files)
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

    static func fileName(_ query: String, part: Int?) -> String {
        guard let part else { return query + ".parquet" }
        let number = String(part)
        return query + "-" + String(repeating: "0", count: max(0, 5 - number.count)) + number + ".parquet"
    }
}

/// Where rows go: the converters, the open file and its column writers, the split into parts. Synchronous, so the
/// COPY reader can call it for every row without an async step; finished parts are published at the end.
struct RowSink {
    let name: String
    let columns: [PostgresParquetColumn]
    let conversions: [PostgresParquetColumn.Conversion]
    let schema: ParquetSchema
    let options: ExtractOptions
    let destination: any ExtractDestination
    let progress: @Sendable (Int64, Int64) -> Void
    let split: Bool
    var file: OpenFile
    var writers: [ParquetColumnWriter]
    var closed: [ClosedFile] = []
    var rowNumber: Int64 = 0
    var doneRows: Int64 = 0
    var doneBytes: Int64 = 0

    init(
        name: String, columns: [PostgresParquetColumn], options: ExtractOptions, destination: any ExtractDestination,
        progress: @escaping @Sendable (Int64, Int64) -> Void
    ) throws(FerryError) {
        self.name = name
        self.columns = columns
        conversions = columns.map(\.conversion)
        schema = ParquetSchema(columns.map(\.parquet))
        self.options = options
        self.destination = destination
        self.progress = progress
        split = options.rowsPerFile != nil || options.bytesPerFile != nil
        file = try OpenFile(
            name: PostgresParquetExtractor.fileName(name, part: split ? 0 : nil), schema: schema, options: options, destination: destination)
        writers = file.writer.columns
    }

    var columnCount: Int { conversions.count }

    @inline(__always)
    mutating func append(_ raw: UnsafeRawBufferPointer, column: Int) throws(FerryError) {
        do {
            try PostgresParquetColumn.append(raw: raw, conversions[column], to: writers[column])
        } catch {
            throw located(error, column: column)
        }
    }

    @inline(__always)
    mutating func appendNull(column: Int) throws(FerryError) {
        do {
            try writers[column].appendNull()
        } catch {
            throw located(FerryError(.invalidInput, error.message), column: column)
        }
    }

    func located(_ error: FerryError, column: Int) -> FerryError {
        FerryError(error.code, "\(name), row \(rowNumber + 1), column \(columns[column].parquet.name): \(error.message)", fix: error.fix)
    }

    mutating func endRow() throws(FerryError) {
        rowNumber += 1
        try file.endRow()
        if file.rows & 0xFFFF == 0 { progress(doneRows + file.rows, doneBytes + file.bytes) }
        let rowsDue = options.rowsPerFile.map { file.rows >= Int64($0) } ?? false
        let bytesDue = options.bytesPerFile.map { file.bytes >= Int64($0) } ?? false
        if rowsDue || bytesDue {
            let finished = try file.close()
            closed.append(finished)
            doneRows += finished.rows
            doneBytes += finished.bytes
            file = try OpenFile(
                name: PostgresParquetExtractor.fileName(name, part: closed.count), schema: schema, options: options, destination: destination)
            writers = file.writer.columns
        }
    }

    /// Closes the last part (unless it is an empty one after others) and publishes every part.
    mutating func publishAll(overwrite: Bool) async throws(FerryError) -> [ExtractedFile] {
        if file.rows > 0 || closed.isEmpty {
            closed.append(try file.close())
        } else {
            file.discard()
        }
        var published: [ExtractedFile] = []
        for (index, part) in closed.enumerated() {
            do {
                try await destination.publish(part.temporary, as: part.name, overwrite: overwrite)
            } catch {
                for later in closed.dropFirst(index + 1) { destination.discard(later.temporary) }
                throw error
            }
            published.append(
                ExtractedFile(name: part.name, path: destination.location + "/" + part.name, rows: part.rows, bytes: part.bytes, sha256: part.sha256))
        }
        return published
    }

    func discard() {
        file.discard()
        for part in closed { destination.discard(part.temporary) }
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

    mutating func feed(_ payload: UnsafeRawBufferPointer, into sink: inout RowSink) throws(FerryError) {
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
    private mutating func parse(_ bytes: UnsafeRawBufferPointer, into sink: inout RowSink) throws(FerryError) -> Int {
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

/// One Parquet file being written: the writer, its temporary file and a running SHA-256.
struct OpenFile {
    let name: String
    let destination: any ExtractDestination
    let temporary: String
    var writer: ParquetWriter
    let descriptor: Int32
    var hash = SHA256()
    private(set) var rows: Int64 = 0
    private(set) var bytes: Int64 = 0

    init(name: String, schema: ParquetSchema, options: ExtractOptions, destination: any ExtractDestination) throws(FerryError) {
        self.name = name
        self.destination = destination
        temporary = destination.temporaryPath(for: name)
        do {
            writer = try ParquetWriter(schema: schema, options: options.parquet)
        } catch {
            throw FerryError(.invalidInput, "\(name): \(error.message)")
        }
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw FerryError(
                .permission, "cannot write \(temporary): \(String(cString: strerror(errno)))", fix: "check the destination's permissions")
        }
    }

    mutating func endRow() throws(FerryError) {
        do {
            try writer.endRow()
        } catch {
            throw FerryError(.invalidInput, "\(name): \(error.message)")
        }
        rows += 1
        if writer.pendingOutputBytes > 0 { try flush(writer.takeOutput()) }
    }

    private mutating func flush(_ output: [UInt8]) throws(FerryError) {
        guard !output.isEmpty else { return }
        hash.update(data: output)
        var written = 0
        while written < output.count {
            let result = output.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, output.count - written) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else {
                let reason = String(cString: strerror(errno))
                throw FerryError(.server, "writing \(temporary) failed: \(reason)", fix: "check the free space at the destination")
            }
            written += result
        }
        bytes += Int64(output.count)
    }

    /// Finishes the file (footer, fsync) without publishing it.
    mutating func close() throws(FerryError) -> ClosedFile {
        let tail: [UInt8]
        do {
            tail = try writer.finish()
        } catch {
            discard()
            throw FerryError(.invalidInput, "\(name): \(error.message)")
        }
        do {
            try flush(tail)
        } catch {
            discard()
            throw error
        }
        guard fsync(descriptor) == 0 else {
            discard()
            throw FerryError(.server, "writing \(temporary) failed on fsync", fix: "check the destination's disk")
        }
        Glibc.close(descriptor)
        let digest = hash.finalize().map { String(format: "%02x", $0) }.joined()
        return ClosedFile(name: name, temporary: temporary, rows: rows, bytes: bytes, sha256: digest)
    }

    func discard() {
        Glibc.close(descriptor)
        destination.discard(temporary)
    }
}

/// A finished part waiting to be published.
struct ClosedFile {
    let name: String
    let temporary: String
    let rows: Int64
    let bytes: Int64
    let sha256: String
}
