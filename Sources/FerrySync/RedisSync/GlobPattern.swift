/// A shell-style glob as the original service used (Python's `fnmatch`): `*` any run of characters, `?` one
/// character, `[seq]` one of the characters (ranges like `a-z`), `[!seq]` (or `[^seq]`) one character not in it.
/// Everything else matches itself; an unclosed `[` is a literal.
package struct GlobPattern: Sendable, Hashable, CustomStringConvertible {
    package let text: String
    private let pattern: [Character]
    /// `*` alone, or a plain prefix before one final `*` (`orders:*`, the usual pattern): matched on the bytes,
    /// without splitting every key into characters.
    private let shortcut: Shortcut?

    private enum Shortcut: Hashable {
        case everything
        case prefix(String)
    }

    package init(_ text: String) {
        self.text = text
        pattern = Array(text)
        if text == "*" {
            shortcut = .everything
        } else if text.hasSuffix("*"), !text.dropLast().contains(where: { "*?[\\".contains($0) }) {
            shortcut = .prefix(String(text.dropLast()))
        } else {
            shortcut = nil
        }
    }

    package var description: String { text }

    /// The same pattern in Redis's `MATCH` syntax (which writes negation as `[^…]`), for `SCAN … MATCH`.
    package var redisMatch: String {
        var out = ""
        var index = 0
        while index < pattern.count {
            let character = pattern[index]
            if character == "[", closingBracket(from: index) != nil {
                out.append("[")
                if index + 1 < pattern.count, pattern[index + 1] == "!" {
                    out.append("^")
                    index += 2
                    continue
                }
            } else if character == "\\" {
                out.append("\\\\")
            } else {
                out.append(character)
            }
            index += 1
        }
        return out
    }

    package func matches(_ name: String) -> Bool {
        switch shortcut {
        case .everything: return true
        case .prefix(let prefix): return name.utf8.starts(with: prefix.utf8)
        case nil: break
        }
        let subject = Array(name)
        // Iterative matching with backtracking to the last `*` (linear in practice, no recursion).
        var p = 0
        var s = 0
        var starP = -1
        var starS = 0
        while s < subject.count {
            if p < pattern.count {
                let character = pattern[p]
                if character == "*" {
                    starP = p
                    starS = s
                    p += 1
                    continue
                }
                if character == "?" {
                    p += 1
                    s += 1
                    continue
                }
                if character == "[", let end = closingBracket(from: p) {
                    if classMatches(subject[s], from: p + 1, to: end) {
                        p = end + 1
                        s += 1
                        continue
                    }
                } else if character == subject[s] {
                    p += 1
                    s += 1
                    continue
                }
            }
            guard starP >= 0 else { return false }
            p = starP + 1
            starS += 1
            s = starS
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    /// The index of the `]` closing a class that opens at `start`, or nil when it is not closed (a literal `[`).
    private func closingBracket(from start: Int) -> Int? {
        var index = start + 1
        if index < pattern.count, pattern[index] == "!" || pattern[index] == "^" { index += 1 }
        if index < pattern.count, pattern[index] == "]" { index += 1 }  // `[]]` holds a `]`
        while index < pattern.count {
            if pattern[index] == "]" { return index }
            index += 1
        }
        return nil
    }

    private func classMatches(_ character: Character, from start: Int, to end: Int) -> Bool {
        var index = start
        var negated = false
        if pattern[index] == "!" || pattern[index] == "^" {
            negated = true
            index += 1
        }
        var found = false
        while index < end {
            let low = pattern[index]
            if index + 2 < end, pattern[index + 1] == "-" {
                if low <= character && character <= pattern[index + 2] { found = true }
                index += 3
                continue
            }
            if low == character { found = true }
            index += 1
        }
        return found != negated
    }
}
