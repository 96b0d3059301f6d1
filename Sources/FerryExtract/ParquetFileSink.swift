import Crypto
package import FerryCore
package import FerryParquet
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

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

    /// `<query>.parquet`, or `<query>-00000.parquet`… when the result is split into parts.
    package static func fileName(_ query: String, part: Int?) -> String {
        guard let part else { return query + ".parquet" }
        let number = String(part)
        return query + "-" + String(repeating: "0", count: max(0, 5 - number.count)) + number + ".parquet"
    }
}

/// Where rows go: the converters, the open file and its column writers, the split into parts. Synchronous, so the
/// COPY reader can call it for every row without an async step; finished parts are published at the end.
struct RowSink<Conversion> {
    let name: String
    let columns: [ParquetColumn]
    /// How each column's values are converted, in the source's own terms.
    let conversions: [Conversion]
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
        name: String, columns: [ParquetColumn], conversions: [Conversion], options: ExtractOptions, destination: any ExtractDestination,
        progress: @escaping @Sendable (Int64, Int64) -> Void
    ) throws(FerryError) {
        self.name = name
        self.columns = columns
        self.conversions = conversions
        schema = ParquetSchema(columns)
        self.options = options
        self.destination = destination
        self.progress = progress
        split = options.rowsPerFile != nil || options.bytesPerFile != nil
        file = try OpenFile(
            name: ExtractReport.fileName(name, part: split ? 0 : nil), schema: schema, options: options, destination: destination)
        writers = file.writer.columns
    }

    var columnCount: Int { conversions.count }

    @inline(__always)
    mutating func appendNull(column: Int) throws(FerryError) {
        do {
            try writers[column].appendNull()
        } catch {
            throw located(FerryError(.invalidInput, error.message), column: column)
        }
    }

    func located(_ error: FerryError, column: Int) -> FerryError {
        FerryError(error.code, "\(name), row \(rowNumber + 1), column \(columns[column].name): \(error.message)", fix: error.fix)
    }

    mutating func endRow() throws(FerryError) {
        rowNumber += 1
        try file.endRow()
        // Bytes so far: what the file holds plus the row group the writer still buffers (compressed pages).
        if file.rows & 0xFFFF == 0 { progress(doneRows + file.rows, doneBytes + file.bytes + Int64(file.writer.bufferedBytes)) }
        let rowsDue = options.rowsPerFile.map { file.rows >= Int64($0) } ?? false
        let bytesDue = options.bytesPerFile.map { file.bytes >= Int64($0) } ?? false
        if rowsDue || bytesDue {
            let finished = try file.close()
            closed.append(finished)
            doneRows += finished.rows
            doneBytes += finished.bytes
            file = try OpenFile(
                name: ExtractReport.fileName(name, part: closed.count), schema: schema, options: options, destination: destination)
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

    /// Publishes every part and reports them, the whole run timed from `started`.
    mutating func finish(overwrite: Bool, started: ContinuousClock.Instant) async throws(FerryError) -> ExtractReport {
        let files = try await publishAll(overwrite: overwrite)
        let rows = files.reduce(0) { $0 + $1.rows }
        let bytes = files.reduce(0) { $0 + $1.bytes }
        progress(rows, bytes)
        let elapsed = (ContinuousClock.now - started).components
        return ExtractReport(
            query: name, rows: rows, bytes: bytes, seconds: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18, files: files)
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
