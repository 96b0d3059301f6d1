import FerrySQLServer
import NIOCore
import Testing

/// SQL Server values as PostgreSQL text, byte for byte, at the boundaries (no server needed).
@Suite("SQL Server values as PostgreSQL text")
struct SQLServerTextTests {
    func text(_ kind: SQLServerText.Kind, _ bytes: [UInt8]) throws -> String {
        var buffer = ByteBuffer()
        try bytes.withUnsafeBytes { raw in try SQLServerText.append(kind, raw, into: &buffer) { _, _ in false } }
        return String(buffer: buffer)
    }

    func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    @Test func datesAtTheEdgesOfTheirRange() throws {
        // datetime: days since 1900-01-01 and 1/300 s ticks; 1753-01-01 and 9999-12-31 23:59:59.997 are its limits.
        #expect(try text(.datetime, le(Int32(-53_690)) + le(Int32(0))) == "1753-01-01 00:00:00")
        #expect(try text(.datetime, le(Int32(2_958_463)) + le(Int32(25_919_999))) == "9999-12-31 23:59:59.996667")
        #expect(try text(.datetime, le(Int32(0)) + le(Int32(1))) == "1900-01-01 00:00:00.003333", "one tick is 3.333… ms")
        #expect(try text(.datetime, le(Int32(0)) + le(Int32(2))) == "1900-01-01 00:00:00.006667")
        // smalldatetime: days and minutes, unsigned.
        #expect(try text(.smalldatetime, le(UInt16(65_535)) + le(UInt16(1439))) == "2079-06-06 23:59:00")
        #expect(try text(.smalldatetime, le(UInt16(0)) + le(UInt16(0))) == "1900-01-01 00:00:00")
    }

    /// DBDATETIMEALL as DB-Library hands it over: 100 ns units since midnight, days since 1900-01-01, the offset, flags.
    func dateTimeAll(days: Int32, units: UInt64) -> [UInt8] { le(units) + le(days) + le(Int16(0)) + le(UInt16(0)) }

    @Test func timeTypesAtEveryPrecision() throws {
        func text(_ kind: SQLServerText.Kind, days: Int32 = 0, units: UInt64 = 0, fullPrecision: Bool = false) throws -> String {
            var buffer = ByteBuffer()
            try dateTimeAll(days: days, units: units).withUnsafeBytes { raw in
                try SQLServerText.append(kind, raw, into: &buffer, fullPrecision: fullPrecision) { _, _ in false }
            }
            return String(buffer: buffer)
        }
        let lastUnit: UInt64 = 863_999_999_999
        #expect(try text(.date, days: -693_595) == "0001-01-01")
        #expect(try text(.date, days: 2_958_463) == "9999-12-31")
        #expect(try text(.time) == "00:00:00")
        #expect(try text(.time, units: lastUnit) == "23:59:59.999999", "the 7th digit is cut")
        #expect(try text(.time, units: lastUnit, fullPrecision: true) == "23:59:59.9999999")
        #expect(try text(.time, units: 0, fullPrecision: true) == "00:00:00.0000000")
        #expect(try text(.time, units: 452_965_000_000) == "12:34:56.5")
        #expect(try text(.time, units: 100) == "00:00:00.00001")
        #expect(try text(.datetime2, days: 2_958_463, units: lastUnit) == "9999-12-31 23:59:59.999999")
        #expect(try text(.datetimeoffset, days: 45_000, units: 10_000_000) == "2023-03-17 00:00:01+00")
        // Beyond what SQL Server holds: still every digit.
        #expect(try text(.datetime2, days: 2_958_464, units: 3_600_000_000_000) == "10000-01-01 100:00:00")
    }

    @Test func numbersAsPostgreSQLPrintsThem() throws {
        #expect(try text(.bit, [1]) == "t" && text(.bit, [0]) == "f")
        #expect(try text(.tinyint, [255]) == "255")
        #expect(try text(.bigint, le(Int64.min)) == "-9223372036854775808")
        #expect(try text(.smallmoney, le(Int32(-214_748_3648))) == "-214748.3648")
        #expect(try text(.smallmoney, le(Int32(-1))) == "-0.0001")
        // money: high 32 bits first, then the low 32 bits.
        let maxMoney = Int64.max
        #expect(try text(.money, le(Int32(truncatingIfNeeded: maxMoney >> 32)) + le(UInt32(truncatingIfNeeded: maxMoney))) == "922337203685477.5807")
        #expect(try text(.float, le(Double(100).bitPattern)) == "100")
        #expect(try text(.float, le(Double(0.1).bitPattern)) == "0.1")
        #expect(try text(.float, le(Double.infinity.bitPattern)) == "Infinity")
        #expect(try text(.real, le(Float(1.5).bitPattern)) == "1.5")
    }

    @Test func bytesAndGUIDs() throws {
        #expect(try text(.binary, []) == "\\x")
        #expect(try text(.binary, [0, 0xFF, 0x10]) == "\\x00ff10")
        let guid: [UInt8] = [0xFF, 0x19, 0x96, 0x6F, 0x86, 0x8B, 0x11, 0xD0, 0xB4, 0x2D, 0x00, 0xC0, 0x4F, 0xC9, 0x64, 0xFF]
        #expect(try text(.uniqueidentifier, guid) == "6f9619ff-8b86-d011-b42d-00c04fc964ff")
        #expect(throws: SQLServerText.Unreadable.self) { try text(.uniqueidentifier, [1, 2, 3]) }
        #expect(throws: SQLServerText.Unreadable.self) { try text(.bigint, [1, 2]) }
    }
}
