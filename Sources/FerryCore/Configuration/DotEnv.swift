/// Reads `.env` files: `KEY=value` lines, `#` comments, optional `export `, single or double quotes.
package enum DotEnv {
    /// Parses `text`; a malformed line is reported with its line number (never its value, which may be secret).
    package static func parse(_ text: String, file: String) throws(ConfigurationError) -> [String: String] {
        var result: [String: String] = [:]
        var issues: [ConfigIssue] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            if line.last == "\r" { line.removeLast() }
            let trimmed = String(line).trimmingSpaces()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            var body = Substring(trimmed)
            if body.hasPrefix("export ") { body = body.dropFirst(7) }
            guard let equals = body.firstIndex(of: "=") else {
                issues.append(
                    ConfigIssue(path: "\(file):\(index + 1)", problem: "not a KEY=value line", fix: "write `NAME=value` or start the line with `#`"))
                continue
            }
            let key = String(body[..<equals]).trimmingSpaces()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                issues.append(ConfigIssue(path: "\(file):\(index + 1)", problem: "invalid variable name", fix: "use letters, digits and `_`"))
                continue
            }
            var value = String(body[body.index(after: equals)...]).trimmingSpaces()
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                if first == "\"" { value = value.replacingEscapes() }
            } else if let hash = value.firstRange(of: " #") {
                value = String(value[..<hash.lowerBound]).trimmingSpaces()
            }
            result[key] = value
        }
        if !issues.isEmpty { throw ConfigurationError(file: file, issues: issues) }
        return result
    }
}

extension String {
    fileprivate func replacingEscapes() -> String {
        var out = ""
        var escaping = false
        for character in self {
            if escaping {
                switch character {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return out
    }
}
