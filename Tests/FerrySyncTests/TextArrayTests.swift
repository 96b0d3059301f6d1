import FerryCore
import FerryPostgres
import NIOCore
import PostgresNIO
import Testing

@Suite("Batches bound as text[] columns")
struct TextArrayTests {
    /// Reads PostgreSQL's binary array format back: (has NULLs, elements).
    static func decode(_ array: PostgresTextArray) -> (hasNulls: Bool, values: [String?]) {
        var buffer = ByteBuffer()
        array.encode(into: &buffer, context: .default)
        let dimensions = buffer.readInteger(as: Int32.self)!
        let flags = buffer.readInteger(as: Int32.self)!
        #expect(buffer.readInteger(as: UInt32.self) == PostgresDataType.text.rawValue)
        guard dimensions == 1 else {
            #expect(dimensions == 0)
            return (false, [])
        }
        let count = Int(buffer.readInteger(as: Int32.self)!)
        #expect(buffer.readInteger(as: Int32.self) == 1, "lower bound")
        var values: [String?] = []
        for _ in 0..<count {
            let length = buffer.readInteger(as: Int32.self)!
            values.append(length < 0 ? nil : buffer.readString(length: Int(length))!)
        }
        #expect(buffer.readableBytes == 0)
        return (flags == 1, values)
    }

    @Test func everyValueComesBackAsItWasWritten() throws {
        let values: [String?] = ["plain", "tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "", nil, "ñandú ✓", "\\N", "\\"]
        var rows = CopyTextRows()
        for (index, value) in values.enumerated() {
            rows.beginRow()
            rows.appendField(String(index))
            rows.appendField(value)
            rows.endRow()
        }
        let arrays = try rows.textArrays(columns: 2)
        #expect(Self.decode(arrays[0]).values == values.indices.map { String($0) })
        let second = Self.decode(arrays[1])
        #expect(second.values == values)
        #expect(second.hasNulls)
        #expect(!Self.decode(arrays[0]).hasNulls)
    }

    @Test func copyEscapesOtherProgramsMayWrite() throws {
        // COPY's text format also has \b \f \v, octal and hex escapes; a backslash before anything else is that character.
        let line = "\\b\\f\\v\t\\101\\60x\t\\x41\\x4a\\xg\t\\q\\\\\n"
        let rows = CopyTextRows(buffer: ByteBuffer(string: line))
        let arrays = try rows.textArrays(columns: 4)
        #expect(Self.decode(arrays[0]).values == ["\u{8}\u{C}\u{B}"])
        #expect(Self.decode(arrays[1]).values == ["A0x"])
        #expect(Self.decode(arrays[2]).values == ["AJxg"])
        #expect(Self.decode(arrays[3]).values == ["q\\"])
    }

    @Test func aLastLineWithoutItsNewlineCounts() throws {
        let rows = CopyTextRows(buffer: ByteBuffer(string: "1\ta\n2\t\\N"))
        let arrays = try rows.textArrays(columns: 2)
        #expect(Self.decode(arrays[0]).values == ["1", "2"])
        #expect(Self.decode(arrays[1]).values == ["a", nil])
    }

    @Test func aRowWithTheWrongFieldCountIsADataError() throws {
        let rows = CopyTextRows(buffer: ByteBuffer(string: "1\ta\n2\n3\tc\textra\n"))
        do {
            _ = try rows.textArrays(columns: 2)
            Issue.record("a short row must be refused")
        } catch {
            #expect(error.row == 1)
            #expect(error.fields == 1)
            #expect(PostgresDiagnosis.isDataError(error), "the bisection isolates it like a value PostgreSQL refuses")
            #expect(error.first == "2")
            #expect(PostgresDiagnosis.reason(error).hasPrefix("the row starting \"2\" has 1 fields, not 2 (a malformed queue entry"))
        }
        // Recorded as a dead letter: cut or padded.
        let lenient = try rows.textArrays(columns: 2, lenient: true)
        #expect(Self.decode(lenient[0]).values == ["1", "2", "3"])
        #expect(Self.decode(lenient[1]).values == ["a", nil, "c"])
    }

    @Test func noRowsIsAnEmptyArray() throws {
        let arrays = try CopyTextRows(capacity: 0).textArrays(columns: 3)
        #expect(arrays.count == 3)
        #expect(Self.decode(arrays[0]).values.isEmpty)
    }
}
