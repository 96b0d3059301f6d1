import Foundation
import Testing

@testable import FerryParquet

/// Ferry's writer and reader together, and against pyarrow, DuckDB and fastparquet: what Ferry writes they read
/// identically, and what they write Ferry reads identically.
@Suite struct ParquetFileTests {
    static let rows = SampleTable.rows(3_000)

    static func read(_ bytes: [UInt8]) throws -> (ParquetFileReader<ParquetBytes>, [[ParquetValue]]) {
        let reader = try ParquetFileReader(ParquetBytes(bytes))
        var rows: [[ParquetValue]] = []
        for index in 0..<reader.rowGroupCount {
            let columns = try reader.readRowGroup(index).map { $0.rowValues() }
            for row in 0..<(columns.first?.count ?? 0) { rows.append(columns.map { $0[row] }) }
        }
        return (reader, rows)
    }

    static func options(_ codec: ParquetCodec, small: Bool = false) -> ParquetWriterOptions {
        var options = ParquetWriterOptions()
        options.compression = codec
        if small {
            options.pageBytes = 4096
            options.rowGroupRows = 1000
            options.dictionaryPageBytes = 2048
        }
        return options
    }

    @Test(arguments: ParquetCodec.allCases, [false, true])
    func everyTypeRoundTripsThroughFerry(codec: ParquetCodec, small: Bool) throws {
        let bytes = try SampleTable.write(Self.rows, options: Self.options(codec, small: small))
        let (reader, rows) = try Self.read(bytes)
        #expect(reader.rowCount == 3_000)
        #expect(reader.rowGroupCount == (small ? 3 : 1))
        #expect(rows.count == Self.rows.count)
        for (index, (got, want)) in zip(rows, Self.rows).enumerated() where got != want {
            Issue.record("row \(index): got \(got), want \(want)")
            break
        }
        #expect(reader.schema == SampleTable.schema)
    }

    @Test func emptyAndOneRowFilesRoundTrip() throws {
        for count in [0, 1] {
            let rows = Array(Self.rows.prefix(count))
            let (reader, got) = try Self.read(try SampleTable.write(rows))
            #expect(reader.rowCount == Int64(count) && got == rows)
        }
    }

    @Test func aDictionaryOverItsLimitFallsBackToPlainForTheRestOfTheChunk() throws {
        var options = ParquetWriterOptions()
        options.dictionaryPageBytes = 1000
        let bytes = try SampleTable.write(Self.rows, options: options)
        let (reader, rows) = try Self.read(bytes)
        #expect(rows == Self.rows)
        let text = try #require(reader.metadata.rowGroups.first?.columns[11].metaData)
        #expect(text.encodings.contains(.rleDictionary) && text.encodings.contains(.plain), "\(text.encodings)")
        let category = try #require(reader.metadata.rowGroups.first?.columns[12].metaData)
        #expect(category.encodings.contains(.rleDictionary) && category.dictionaryPageOffset != nil)
    }

    @Test func statisticsAreWrittenInTheColumnsOrder() throws {
        let bytes = try SampleTable.write(Self.rows)
        let (reader, _) = try Self.read(bytes)
        let chunks = try #require(reader.metadata.rowGroups.first?.columns)
        func stat(_ index: Int) -> (ParquetValue?, ParquetValue?, Int64?) {
            let statistics = chunks[index].metaData?.statistics
            let column = reader.schema.columns[index]
            return (
                statistics?.minValue.flatMap { column.statisticValue($0) }, statistics?.maxValue.flatMap { column.statisticValue($0) },
                statistics?.nullCount
            )
        }
        #expect(stat(0).0 == .integer(0) && stat(0).1 == .integer(2_999) && stat(0).2 == 0)
        #expect(stat(8).1 == .unsigned(UInt64.max), "unsigned order")
        #expect(stat(4).1 == .integer(Int64(Int32.max)))
        #expect(stat(20).0 == .decimal("-99999999999999999999999999999999999999"), "signed big-endian order")
        #expect(stat(20).1 == .decimal("99999999999999999999999999999999999999"))
        #expect(stat(11).1 == nil, "a 9,000-byte string is too long for statistics")
        let nulls = Self.rows.count { $0[1] == .null }
        #expect(stat(1).2 == Int64(nulls))
    }

    @Test func misuseIsRefusedNotTrapped() throws {
        #expect(throws: ParquetError.self) {
            try ParquetWriter(schema: ParquetSchema([ParquetColumn(name: "a", kind: .string), ParquetColumn(name: "a", kind: .string)]))
        }
        #expect(throws: ParquetError.self) {
            try ParquetWriter(schema: ParquetSchema([ParquetColumn(name: "d", kind: .decimal(precision: 39, scale: 0))]))
        }
        var writer = try ParquetWriter(schema: ParquetSchema([ParquetColumn(name: "id", kind: .integer(bits: 64, signed: true), nullable: false)]))
        #expect(throws: ParquetError.self) { try writer.columns[0].appendNull() }
        try writer.endRow()
        #expect(throws: ParquetError.self, "a row without its value") { _ = try writer.finish() }
    }

    @Test func decimalsConvertBothWays() {
        #expect(DecimalUnscaled.parse("-12.5", scale: 2)?.int64 == -1250)
        #expect(DecimalUnscaled.parse("0.125", scale: 2) == nil, "a digit the column cannot hold")
        #expect(DecimalUnscaled.parse("1.2300", scale: 2)?.int64 == 123)
        #expect(DecimalUnscaled.parse("abc", scale: 0) == nil && DecimalUnscaled.parse("1.2.3", scale: 2) == nil)
        let max = String(repeating: "9", count: 38)
        let bytes = DecimalUnscaled.parse(max, scale: 0)?.bigEndian(width: 16)
        #expect(bytes.map { DecimalText.format(bigEndian: $0, scale: 0) } == max)
        #expect(
            DecimalUnscaled.parse("-" + max, scale: 0)?.bigEndian(width: 16).map { DecimalText.format(bigEndian: $0, scale: 3) } == "-"
                + String(repeating: "9", count: 35) + ".999")
        #expect(DecimalText.format(-5, scale: 3) == "-0.005" && DecimalText.format(0, scale: 2) == "0.00")
        #expect(DecimalUnscaled.parse("128", scale: 0)?.bigEndian(width: 1) == nil, "does not fit one signed byte")
    }

    // MARK: - Interoperability

    static func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "ferry-parquet-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// pyarrow and DuckDB read every value back, over many pages and row groups with a dictionary that overflows.
    /// fastparquet reads a file in the form it handles: it misreads the PLAIN pages after a dictionary overflow (in
    /// pyarrow's own files too) and holds dates only within pandas' nanosecond range, 1677–2262.
    @Test(arguments: ParquetCodec.allCases)
    func pyarrowDuckDBAndFastparquetReadWhatFerryWrites(codec: ParquetCodec) throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let names = SampleTable.schema.columns.map(\.name)
        let cases: [(name: String, rows: [[ParquetValue]], options: ParquetWriterOptions, readers: [String])] = [
            ("ferry", Self.rows, Self.options(codec, small: true), ["pyarrow", "duckdb"]),
            ("pandas", SampleTable.rows(3_000, pandasRange: true), Self.options(codec), ["pyarrow", "duckdb", "fastparquet"]),
        ]
        for sample in cases {
            let file = directory + "/\(sample.name).parquet"
            let expected = directory + "/\(sample.name).jsonl"
            try Data(try SampleTable.write(sample.rows, options: sample.options)).write(to: URL(fileURLWithPath: file))
            try sample.rows.map { PythonParquet.canonicalLine(names: names, values: $0) + "\n" }.joined()
                .write(toFile: expected, atomically: true, encoding: .utf8)
            let problems = try PythonParquet.compare(file: file, expected: expected, readers: sample.readers)
            #expect(problems == nil, "\(sample.name): \(problems ?? "")")
        }
    }

    @Test
    func ferryReadsWhatPyarrowAndDuckDBWrite() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let names = try PythonParquet.writeSamples(into: directory)
        #expect(names.count >= 16)
        for name in names {
            let file = directory + "/" + name
            let lines = directory + "/" + name + ".jsonl"
            do {
                try PythonParquet.canonicalLines(file).write(toFile: lines, atomically: true, encoding: .utf8)
            } catch {
                Issue.record("\(name): \(error)")
                continue
            }
            let problems = try PythonParquet.compare(file: file, expected: lines, readers: ["pyarrow"])
            #expect(problems == nil, "\(name): \(problems ?? "")")
        }
    }
}
