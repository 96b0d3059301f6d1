/// A plain-text table with aligned columns; cells may contain ANSI colour codes.
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], Self.visibleLength(cell))
            }
        }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (index, cell) in cells.enumerated() {
                let isLast = index == cells.count - 1
                out += cell + (isLast ? "" : String(repeating: " ", count: widths[index] - Self.visibleLength(cell) + 2))
            }
            return out
        }
        return ([line(headers.map { Terminal.paint($0, .bold) })] + rows.map(line)).joined(separator: "\n")
    }

    static func visibleLength(_ text: String) -> Int {
        var count = 0
        var inEscape = false
        for character in text {
            if inEscape {
                if character == "m" { inEscape = false }
            } else if character == "\u{1B}" {
                inEscape = true
            } else {
                count += 1
            }
        }
        return count
    }
}
