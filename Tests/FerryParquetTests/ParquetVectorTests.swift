import Foundation
import Testing

@testable import FerryParquet

/// The Apache parquet-testing files (a copy of `../shared/parquet-testing` in Tests/ParquetVectors, Apache License 2.0):
/// every file Ferry reads gives what pyarrow gives;
/// what it does not read is refused by name; every damaged file is an error, never a trap, hang or huge allocation.
@Suite struct ParquetVectorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../ParquetVectors").standardized.path

    static func files(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + directory)) ?? []).filter { $0.hasSuffix(".parquet") }.sorted()
    }

    /// Files Ferry refuses, and the words that say why.
    static let refused: [String: String] = [
        "datapage_v2.snappy.parquet": "nested",
        "delta_length_byte_array.parquet": "DELTA_LENGTH_BYTE_ARRAY",
        "nested_lists.snappy.parquet": "nested",
        "nulls.snappy.parquet": "nested",
        "nation.dict-malformed.parquet": "runs past the chunk's end",
    ]

    static func readAll(_ path: String) throws -> Int {
        let reader = try ParquetFileReader(ParquetBytes(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))))
        var rows = 0
        for index in 0..<reader.rowGroupCount {
            let columns = try reader.readRowGroup(index)
            rows += columns.first?.rowCount ?? 0
            _ = columns.map { $0.rowValues() }
        }
        return rows
    }

    @Test
    func theTestVectorsReadAsPyarrowReadsThem() throws {
        let directory = NSTemporaryDirectory() + "ferry-vectors-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var compared = 0
        for name in Self.files("data") {
            let path = Self.root + "/data/" + name
            // Two of its timestamps lie beyond 64-bit nanoseconds, where pyarrow wraps: checked by value below.
            if name == "int96_from_spark.parquet" { continue }
            if let reason = Self.refused[name] {
                #expect(throws: ParquetError.self, "\(name)") { _ = try Self.readAll(path) }
                do {
                    _ = try Self.readAll(path)
                } catch let error as ParquetError {
                    #expect(error.message.contains(reason), "\(name): \(error.message)")
                }
                continue
            }
            let lines = directory + "/" + name + ".jsonl"
            try PythonParquet.canonicalLines(path).write(toFile: lines, atomically: true, encoding: .utf8)
            let problems = try PythonParquet.compare(file: path, expected: lines, readers: ["pyarrow"])
            #expect(problems == nil, "\(name): \(problems ?? "")")
            compared += 1
        }
        #expect(compared >= 20)
    }

    @Test func knownValuesAreReadAsTheFilesSay() throws {
        func rows(_ name: String) throws -> [[ParquetValue]] {
            let reader = try ParquetFileReader(ParquetBytes(try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.root + "/data/" + name)))))
            var out: [[ParquetValue]] = []
            for index in 0..<reader.rowGroupCount {
                let columns = try reader.readRowGroup(index).map { $0.rowValues() }
                for row in 0..<(columns.first?.count ?? 0) { out.append(columns.map { $0[row] }) }
            }
            return out
        }
        let plain = try rows("alltypes_plain.parquet")
        #expect(plain.count == 8 && plain.map { $0[0] } == [4, 5, 6, 7, 2, 3, 0, 1].map { .integer($0) })
        #expect(plain[0][10] == .timestamp(1_235_865_600_000_000_000, unit: .nanos, utc: false), "INT96 2009-03-01")
        #expect(try rows("alltypes_plain.snappy.parquet").count == 2)
        #expect(try rows("int32_decimal.parquet").prefix(3).map { $0[0] } == [.decimal("1.00"), .decimal("2.00"), .decimal("3.00")])
        #expect(try rows("fixed_length_decimal_legacy.parquet").first?.first == .decimal("1.00"))
        #expect(try rows("concatenated_gzip_members.parquet").count == 513)
        // Spark wrote these from a session 8 hours behind UTC (int96_from_spark.md); the last lies beyond 64-bit
        // microseconds too, and is read in milliseconds (the value pyarrow gives with coerce_int96_timestamp_unit="ms").
        let spark = try rows("int96_from_spark.parquet").map { $0[0] }
        #expect(
            spark.prefix(5).map { $0 == .null ? "null" : $0.text } == [
                "2024-01-01T20:34:56.123456000", "2024-01-01T01:00:00", "9999-12-31T03:00:00", "2024-12-30T23:00:00", "null",
            ])
        #expect(spark.last == .timestamp(361_746_257_437_964_157, unit: .millis, utc: false))
    }

    @Test func everyDamagedFileIsAnErrorNotACrash() throws {
        for name in Self.files("bad_data") {
            let path = Self.root + "/bad_data/" + name
            if name == "ARROW-GH-43605.parquet" {
                // A one-entry dictionary with indices of bit width 0: valid, and it crashed Arrow's reader. Ferry reads
                // it as pyarrow now does.
                #expect(try Self.readAll(path) == 21_186)
                continue
            }
            #expect(throws: ParquetError.self, "\(name)") { _ = try Self.readAll(path) }
        }
        #expect(Self.files("bad_data").count >= 8)
    }
}
