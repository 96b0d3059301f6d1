import Crypto
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

/// Runs a query on PostgreSQL and streams its rows into Parquet files at a destination: rows are converted from the
/// binary wire format straight into the writer's columns, and at most one row group is held in memory, whatever the
/// size of the result.
package struct PostgresParquetExtractor: Sendable {
    package let session: PostgresSession
    package let logger: Logger

    package init(session: PostgresSession, logger: Logger) {
        self.session = session
        self.logger = logger
    }

    /// Extracts `sql` (with `bindings` for `$1`…) as `name` into `destination`. `progress` gets rows and bytes so far.
    package func extract(
        name: String, sql: String, bindings: [String], to destination: any ExtractDestination, options: ExtractOptions,
        progress: @escaping @Sendable (Int64, Int64) -> Void = { _, _ in }
    ) async throws(FerryError) -> ExtractReport {
        let started = ContinuousClock.now
        var query = PostgresQuery(unsafeSQL: sql)
        for value in bindings { query.binds.append(UntypedText(value: value)) }
        let split = options.rowsPerFile != nil || options.bytesPerFile != nil
        var files: [ExtractedFile] = []
        do {
            try await session.withConnection { connection in
                let rows = try await connection.query(query, logger: logger)
                let columns = try rows.columns.map { (column) throws(FerryError) in try PostgresParquetColumn.map(column, query: name) }
                let schema = ParquetSchema(columns.map(\.parquet))
                var file = try OpenFile(
                    name: Self.fileName(name, part: split ? 0 : nil), schema: schema, options: options, destination: destination)
                var totalRows: Int64 = 0
                var totalBytes: Int64 = 0
                var rowNumber: Int64 = 0
                // Hoisted out of the row loop: no struct or array copies (and their reference counting) per cell.
                let conversions = columns.map(\.conversion)
                var writers = file.writer.columns
                for try await row in rows {
                    rowNumber += 1
                    var index = 0
                    do throws(FerryError) {
                        for cell in row {
                            try PostgresParquetColumn.append(cell.bytes, conversions[index], to: writers[index])
                            index += 1
                        }
                    } catch {
                        throw FerryError(
                            error.code, "\(name), row \(rowNumber), column \(columns[index].parquet.name): \(error.message)", fix: error.fix)
                    }
                    try file.endRow()
                    if file.rows & 0xFFFF == 0 { progress(totalRows + file.rows, totalBytes + file.bytes) }
                    if let limit = options.rowsPerFile, file.rows >= limit || (options.bytesPerFile.map { file.bytes >= $0 } ?? false) {
                        files.append(try await file.finish(overwrite: options.overwrite))
                        totalRows += files.last?.rows ?? 0
                        totalBytes += files.last?.bytes ?? 0
                        file = try OpenFile(name: Self.fileName(name, part: files.count), schema: schema, options: options, destination: destination)
                        writers = file.writer.columns
                    } else if let limit = options.bytesPerFile, file.bytes >= limit {
                        files.append(try await file.finish(overwrite: options.overwrite))
                        totalRows += files.last?.rows ?? 0
                        totalBytes += files.last?.bytes ?? 0
                        file = try OpenFile(name: Self.fileName(name, part: files.count), schema: schema, options: options, destination: destination)
                        writers = file.writer.columns
                    }
                }
                if file.rows > 0 || files.isEmpty {
                    files.append(try await file.finish(overwrite: options.overwrite))
                } else {
                    file.discard()
                }
                progress(files.reduce(0) { $0 + $1.rows }, files.reduce(0) { $0 + $1.bytes })
            }
        } catch let error as FerryError {
            throw error
        } catch let error as PSQLError {
            throw FerryError(
                .server, "\(name): PostgreSQL refused the query: \(PostgresDiagnosis.reason(error))",
                fix: "run the query in psql with the same parameters (ferry show-params) to see the problem")
        } catch {
            throw FerryError(.server, "\(name): \(PostgresDiagnosis.reason(error))")
        }
        return ExtractReport(
            query: name, rows: files.reduce(0) { $0 + $1.rows }, bytes: files.reduce(0) { $0 + $1.bytes },
            seconds: Double((ContinuousClock.now - started).components.attoseconds) / 1e18
                + Double((ContinuousClock.now - started).components.seconds),
            files: files)
    }

    static func fileName(_ query: String, part: Int?) -> String {
        guard let part else { return query + ".parquet" }
        let number = String(part)
        return query + "-" + String(repeating: "0", count: max(0, 5 - number.count)) + number + ".parquet"
    }
}

/// One Parquet file being written: the writer, its temporary file and a running SHA-256.
private struct OpenFile {
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

    mutating func finish(overwrite: Bool) async throws(FerryError) -> ExtractedFile {
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
        close(descriptor)
        try await destination.publish(temporary, as: name, overwrite: overwrite)
        let digest = hash.finalize().map { String(format: "%02x", $0) }.joined()
        return ExtractedFile(name: name, path: destination.location + "/" + name, rows: rows, bytes: bytes, sha256: digest)
    }

    func discard() {
        close(descriptor)
        destination.discard(temporary)
    }
}
