import FerryCore
import NIOCore
import Testing

@Suite("COPY text rows")
struct CopyTextRowsTests {
    @Test func escapesEverySpecialByteAndReadsItBack() {
        var rows = CopyTextRows()
        let values: [String?] = ["plain", "tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "", nil, "ñandú ✓", "\\N"]
        rows.beginRow()
        for value in values { rows.appendField(value) }
        rows.endRow()
        #expect(String(buffer: rows.buffer) == "plain\ttab\\there\tline\\nbreak\tcarriage\\rreturn\tback\\\\slash\t\t\\N\tñandú ✓\t\\\\N\n")
        #expect(rows.fields(ofRow: 0) == values)
        #expect(rows.rowCount == 1)
    }

    @Test func rawFieldsShortAndLongEscapeAlike() {
        // Short fields are escaped in one write, long ones (over 4 kB) run by run: the same text either way.
        let short = "a\tb\nc\rd\\e ñ"
        let long = String(repeating: short, count: 1000)
        for value in [short, long, "", String(repeating: "x", count: 4096), String(repeating: "\\", count: 4097)] {
            var rows = CopyTextRows()
            rows.beginRow()
            Array(value.utf8).withUnsafeBytes { rows.appendField(bytes: $0) }
            Array(value.utf8).withUnsafeBytes { rows.appendField(bytes: $0) }
            rows.endRow()
            var expected = CopyTextRows()
            expected.beginRow()
            expected.appendField(value)
            expected.appendField(value)
            expected.endRow()
            let escaped = String(
                value.flatMap { character -> [Character] in
                    switch character {
                    case "\\": ["\\", "\\"]
                    case "\t": ["\\", "t"]
                    case "\n": ["\\", "n"]
                    case "\r": ["\\", "r"]
                    default: [character]
                    }
                })
            #expect(String(buffer: rows.buffer) == escaped + "\t" + escaped + "\n")
            #expect(rows.buffer == expected.buffer)
            #expect(rows.fields(ofRow: 0) == [value, value])
        }
    }

    @Test func rowsSliceAndAppendWithoutReparsing() {
        var rows = CopyTextRows()
        for index in 0..<5 {
            rows.beginRow()
            rows.appendField("k\(index)")
            rows.appendField(index % 2 == 0 ? nil : "v\(index)")
            rows.endRow()
        }
        let middle = rows.rows(1..<4)
        #expect(middle.rowCount == 3)
        #expect(middle.fields(ofRow: 0) == ["k1", "v1"])
        #expect(middle.fields(ofRow: 1) == ["k2", nil])
        var joined = rows.rows(0..<1)
        joined.append(rows.rows(4..<5))
        #expect(joined.rowCount == 2)
        #expect(joined.fields(ofRow: 1) == ["k4", nil])
        #expect(rows.rawField(0, ofRow: 3).map { String(buffer: $0) } == "k3")
        #expect(rows.rawField(1, ofRow: 2) == nil, "NULL is nil")
        #expect(rows.rawField(1, ofRow: 3).map { String(buffer: $0) } == "v3")
    }

    @Test func sequencedRowsPrefixTheSequence() {
        var source = CopyTextRows()
        source.beginRow()
        source.appendField("a\tb")
        source.appendField("c")
        source.endRow()
        var entry = CopyTextRows()
        entry.appendRow(sequence: 42, line: source.row(0))
        entry.appendRow(sequence: 43, line: source.row(0))
        #expect(entry.rowCount == 2)
        #expect(entry.fields(ofRow: 1) == ["43", "a\tb", "c"])
        #expect(CopyTextRows(buffer: entry.buffer).rowCount == 2, "line offsets are found again from the bytes")
    }

    @Test func schemaFingerprintTracksNamesAndTypes() {
        let a = SourceSchema(columns: [SourceColumn(name: "id", type: "bigint"), SourceColumn(name: "v", type: "text")])
        var b = a
        #expect(a.fingerprint == b.fingerprint)
        b.columns[1].type = "varchar(10)"
        #expect(a.fingerprint != b.fingerprint)
        #expect(a.fingerprint.count == 16)
        #expect(a.index(of: "ID") == 0, "names resolve case-insensitively as a fallback")
    }
}
