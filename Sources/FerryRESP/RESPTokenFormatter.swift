import NIOCore

/// Human-readable rendering of tokens, for tests and `ferry redis` output.
enum RESPTokenFormatter {
    static func describe(_ token: RESPToken) -> String {
        switch token.value {
        case .simpleString(let b): return String(buffer: b)
        case .simpleError(let b), .bulkError(let b): return "(error) " + String(buffer: b)
        case .bulkString(let b), .verbatimString(let b): return "\"" + String(buffer: b) + "\""
        case .number(let n): return "(integer) \(n)"
        case .double(let d): return "(double) \(d)"
        case .boolean(let b): return b ? "(true)" : "(false)"
        case .bigNumber(let b): return "(big number) " + String(buffer: b)
        case .null: return "(nil)"
        case .array(let a): return "[" + a.map(describe).joined(separator: ", ") + "]"
        case .set(let a): return "~{" + a.map(describe).joined(separator: ", ") + "}"
        case .push(let a): return ">[" + a.map(describe).joined(separator: ", ") + "]"
        case .map(let m): return "{" + m.map { describe($0.key) + ": " + describe($0.value) }.joined(separator: ", ") + "}"
        }
    }
}
