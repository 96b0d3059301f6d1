import ArgumentParser
import FerryCore
import FerryParquet
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry parquet inspect|cat`: what is in a Parquet file, for users and scripts.
struct ParquetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parquet",
        abstract: "Look inside Parquet files: schema, row groups, encodings, statistics, rows.",
        discussion:
            "Ferry reads flat Parquet files as pyarrow, DuckDB and Spark write them: PLAIN and dictionary encodings, data pages v1 and v2, SNAPPY, ZSTD, GZIP or no compression. Nested columns, DELTA_* and BYTE_STREAM_SPLIT encodings, LZ4, LZO, BROTLI and encrypted files are refused by name.",
        subcommands: [ParquetInspectCommand.self, ParquetCatCommand.self]
    )

    /// Opens `path` as a Parquet file; every problem becomes an error naming the file.
    static func open(_ path: String) throws -> ParquetFileReader<FileParquetSource> {
        let source = try FileParquetSource(path: path)
        do {
            return try ParquetFileReader(source)
        } catch {
            throw failure(path, error)
        }
    }

    /// A reading error as the user sees it: what Ferry does not read, or a damaged file.
    static func failure(_ path: String, _ error: ParquetError) -> FerryError {
        let unsupported = error.message.contains("Ferry reads") || error.message.contains("Ferry does not read")
        return FerryError(
            unsupported ? .unsupported : .invalidInput, "\(path): \(error.message)",
            fix: unsupported
                ? "rewrite it flat with pyarrow's or DuckDB's default settings, or read it with a tool that supports this"
                : "the file is damaged or cut short: compare its size with the original, or check it with pyarrow (pq.read_metadata)")
    }
}

/// A file read with `pread`, as ``ParquetFileReader`` asks for ranges.
final class FileParquetSource: ParquetSource {
    let path: String
    let descriptor: Int32
    let size: Int

    init(path: String) throws {
        self.path = path
        descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw FerryError(.notFound, "\(path): \(reason)", fix: "give the path of a Parquet file")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(descriptor)
            throw FerryError(.invalidInput, "\(path) is not a regular file", fix: "give the path of a Parquet file")
        }
        size = Int(status.st_size)
    }

    deinit { Glibc.close(descriptor) }

    func read(offset: Int, count: Int) throws(ParquetError) -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size - count else {
            throw ParquetError("a read of \(count) bytes at \(offset) is past the file's \(size) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
            }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else { throw ParquetError("reading \(path) failed at byte \(offset + done)") }
            done += got
        }
        return bytes
    }
}

/// `ferry parquet inspect FILE [--json]`.
struct ParquetInspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "A Parquet file's schema, row groups, encodings, compression and statistics.")

    @Argument(help: "The Parquet file.")
    var file: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Report: Encodable {
        struct Column: Encodable {
            var name: String
            var type: String
            var physicalType: String
            var nullable: Bool
        }

        struct Chunk: Encodable {
            var column: String
            var compression: String
            var encodings: [String]
            var values: Int64
            var compressedBytes: Int64
            var uncompressedBytes: Int64
            var nullCount: Int64?
            var min: String?
            var max: String?
        }

        struct Group: Encodable {
            var rows: Int64
            var compressedBytes: Int64
            var uncompressedBytes: Int64
            var columns: [Chunk]
        }

        var file: String
        var bytes: Int
        var rows: Int64
        var formatVersion: Int32
        var createdBy: String?
        var columns: [Column]
        var rowGroups: [Group]
        var metadata: [String: String]
    }

    func run() async throws {
        let reader = try ParquetCommand.open(file)
        let report = Self.report(reader, file: file)
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            Terminal.print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        Terminal.print(
            "\(file): \(report.rows) rows, \(report.rowGroups.count) row groups, \(report.bytes) bytes, written by \(report.createdBy ?? "?")")
        var columns = TextTable(["COLUMN", "TYPE", "NULLABLE"])
        for column in report.columns { columns.add([column.name, column.type, column.nullable ? "yes" : "no"]) }
        Terminal.print("\n" + columns.render())
        for (index, group) in report.rowGroups.enumerated() {
            Terminal.print("\nrow group \(index): \(group.rows) rows, \(group.compressedBytes) bytes (\(group.uncompressedBytes) uncompressed)")
            var table = TextTable(["COLUMN", "COMPRESSION", "ENCODINGS", "BYTES", "NULLS", "MIN", "MAX"])
            for chunk in group.columns {
                table.add([
                    chunk.column, chunk.compression, chunk.encodings.joined(separator: ","), "\(chunk.compressedBytes)",
                    chunk.nullCount.map { "\($0)" } ?? "-", Self.short(chunk.min), Self.short(chunk.max),
                ])
            }
            Terminal.print(table.render())
        }
        if !report.metadata.isEmpty {
            Terminal.print("\nmetadata: " + report.metadata.keys.sorted().joined(separator: ", "))
        }
    }

    static func short(_ text: String?) -> String {
        guard let text else { return "-" }
        return text.count > 40 ? String(text.prefix(39)) + "…" : text
    }

    static func report(_ reader: ParquetFileReader<FileParquetSource>, file: String) -> Report {
        let meta = reader.metadata
        let columns = reader.schema.columns.map {
            Report.Column(name: $0.name, type: $0.typeDescription, physicalType: "\($0.physicalType)", nullable: $0.nullable)
        }
        var groups: [Report.Group] = []
        for group in meta.rowGroups {
            var chunks: [Report.Chunk] = []
            for (index, chunk) in group.columns.enumerated() {
                let column = reader.schema.columns[index]
                guard let data = chunk.metaData else { continue }
                let statistics = data.statistics
                let minimum = (statistics?.minValue ?? statistics?.min).flatMap { column.statisticValue($0)?.text }
                let maximum = (statistics?.maxValue ?? statistics?.max).flatMap { column.statisticValue($0)?.text }
                chunks.append(
                    Report.Chunk(
                        column: column.name, compression: "\(data.codec)", encodings: data.encodings.map { "\($0)" }, values: data.numValues,
                        compressedBytes: data.totalCompressedSize, uncompressedBytes: data.totalUncompressedSize, nullCount: statistics?.nullCount,
                        min: minimum, max: maximum))
            }
            groups.append(
                Report.Group(
                    rows: group.numRows, compressedBytes: group.columns.reduce(0) { $0 + ($1.metaData?.totalCompressedSize ?? 0) },
                    uncompressedBytes: group.totalByteSize, columns: chunks))
        }
        var metadata: [String: String] = [:]
        for pair in meta.keyValueMetadata ?? [] { metadata[pair.key] = pair.value ?? "" }
        return Report(
            file: file, bytes: reader.source.size, rows: meta.numRows, formatVersion: meta.version, createdBy: meta.createdBy, columns: columns,
            rowGroups: groups, metadata: metadata)
    }
}

/// `ferry parquet cat FILE [--limit N] [--json]`.
struct ParquetCatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "A Parquet file's rows: a table, or JSON lines with --json.",
        discussion:
            "JSON values are what pyarrow's to_pylist() gives: numbers, strings, booleans and null; decimals as strings (\"12.50\"), dates as \"2024-01-31\", timestamps in ISO 8601 (\"2024-01-31T12:00:00.123456Z\" when adjusted to UTC), binary as base64, NaN and infinities as the strings \"NaN\", \"Infinity\", \"-Infinity\". Row groups are read one at a time."
    )

    @Argument(help: "The Parquet file.")
    var file: String

    @Option(help: "Stop after this many rows.")
    var limit: Int?

    @Flag(help: "Print one JSON object per row.")
    var json = false

    func run() async throws {
        if let limit, limit < 0 { throw FerryError(.invalidInput, "--limit \(limit) is negative", fix: "give 0 or more rows") }
        let reader = try ParquetCommand.open(file)
        let names = reader.schema.columns.map { JSONString.quote($0.name) + ":" }
        var left = limit ?? Int.max
        var table = TextTable(reader.schema.columns.map(\.name))
        for index in 0..<reader.rowGroupCount where left > 0 {
            let columns: [ParquetColumnData]
            do {
                columns = try reader.readRowGroup(index)
            } catch {
                throw ParquetCommand.failure(file, error)
            }
            let values = columns.map { $0.rowValues() }
            let rows = min(left, columns.first?.rowCount ?? 0)
            for row in 0..<rows {
                if json {
                    var line = "{"
                    for (column, name) in names.enumerated() {
                        if column > 0 { line += "," }
                        line += name + values[column][row].json
                    }
                    Terminal.print(line + "}")
                } else {
                    table.add(values.map { $0[row] == .null ? Terminal.paint("null", .dim) : $0[row].text })
                }
            }
            left -= rows
        }
        if !json { Terminal.print(table.render()) }
    }
}
