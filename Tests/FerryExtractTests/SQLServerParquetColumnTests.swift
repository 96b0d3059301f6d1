import FerryCore
import FerryParquet
import FerrySQLServer
import NIOCore
import Testing

@testable import FerryExtract

/// The SQL Server → Parquet mapping without a server: types, refusals, and values DB-Library's forms convert to.
@Suite struct SQLServerParquetColumnTests {
    static func column(_ kind: SQLServerText.Kind, _ name: String = "c", precision: Int = 0, scale: Int = 0) -> SQLServerColumn {
        SQLServerColumn(name: name, kind: kind, type: 0, length: 8, precision: precision, scale: scale)
    }

    @Test func typesMapAsTheMirrorHasThem() throws {
        let cases: [(SQLServerText.Kind, ParquetColumn.Kind)] = [
            (.bit, .boolean), (.tinyint, .integer(bits: 16, signed: true)), (.bigint, .integer(bits: 64, signed: true)),
            (.money, .decimal(precision: 19, scale: 4)), (.smallmoney, .decimal(precision: 10, scale: 4)), (.text, .string), (.binary, .binary),
            (.uniqueidentifier, .string), (.datetime, .timestamp(unit: .micros, utc: false)),
            (.datetimeoffset, .timestamp(unit: .micros, utc: true)), (.time, .time(unit: .micros, utc: false)), (.date, .date),
        ]
        for (kind, expected) in cases {
            #expect(try SQLServerParquetColumn.map(Self.column(kind), query: "q").parquet.kind == expected, "\(kind)")
        }
        #expect(
            try SQLServerParquetColumn.map(Self.column(.decimal, precision: 38, scale: 6), query: "q").parquet.kind
                == .decimal(precision: 38, scale: 6))
    }

    @Test func whatParquetCannotHoldIsRefusedByName() {
        for (column, words) in [
            (Self.column(.unsupported(241), "doc"), ["column doc", "CAST(doc AS nvarchar(max))"]),
            (Self.column(.decimal, "amount", precision: 0, scale: 0), ["column amount", "decimal(38, 10)"]),
            (Self.column(.int, ""), ["no name", "AS name"]),
        ] {
            do {
                _ = try SQLServerParquetColumn.map(column, query: "ventas")
                Issue.record("\(column) was mapped")
            } catch {
                let text = "\(error.message) \(error.fix ?? "")"
                #expect(text.hasPrefix("ventas: ") && words.allSatisfy { text.contains($0) }, "\(text)")
            }
        }
    }

    /// money is ten-thousandths in two halves, high first; into DECIMAL(19,4)'s nine big-endian bytes.
    @Test func moneyKeepsEveryDigitAndItsSign() {
        #expect(SQLServerParquetColumn.bigEndian(-1, width: 9) == Array(repeating: 0xFF, count: 9))
        #expect(SQLServerParquetColumn.bigEndian(Int64.max, width: 9) == [0, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(SQLServerParquetColumn.bigEndian(Int64.min, width: 9) == [0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0])
        #expect(SQLServerParquetColumn.bigEndian(258, width: 9) == [0, 0, 0, 0, 0, 0, 0, 1, 2])
    }

    /// datetime counts days from 1900 and 1/300 s ticks: its earliest and latest values, to the microsecond.
    @Test func datetimeTicksBecomeMicroseconds() throws {
        func bytes(_ days: Int32, _ ticks: Int32) -> [UInt8] {
            withUnsafeBytes(of: days.littleEndian, Array.init) + withUnsafeBytes(of: ticks.littleEndian, Array.init)
        }
        let earliest = try #require(bytes(-53_690, 1).withUnsafeBytes { SQLServerText.dayAndMicroseconds(.datetime, $0) })
        #expect(earliest.day == -53_690 && earliest.microseconds == 3_333)
        let latest = try #require(bytes(2_958_463, 25_919_999).withUnsafeBytes { SQLServerText.dayAndMicroseconds(.datetime, $0) })
        #expect(latest.microseconds == 86_399_996_667)
        let short = [UInt8](repeating: 0, count: 3).withUnsafeBytes { SQLServerText.dayAndMicroseconds(.datetime, $0) }
        #expect(short == nil, "a value of the wrong size is no datetime")
    }
}
