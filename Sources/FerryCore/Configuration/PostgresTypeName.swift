/// Column types from the configuration go into DDL (`CREATE TABLE … (col TYPE)`), so they are checked against the
/// grammar of PostgreSQL type names before anything runs: a name (`text`, `citext`, `public.my_enum`,
/// `"Odd Type"`), the multi-word forms (`double precision`, `character varying(20)`,
/// `timestamp(3) with time zone`, `interval day to second`), modifiers of whole numbers (`numeric(12,2)`), and array
/// suffixes (`int[]`, `text[3][]`). Anything else (`text, x int); DROP TABLE …`, `text NOT NULL`) is refused.
package enum PostgresTypeName {
    /// Words that may follow a type's name (the SQL standard's multi-word types).
    static let continuation: Set<String> = [
        "precision", "varying", "with", "without", "time", "zone", "to", "year", "month", "day", "hour", "minute", "second",
    ]

    /// Why `text` is not a type name, or nil when it is one.
    package static func problem(_ text: String) -> String? {
        guard text.utf8.count <= 200 else { return "is longer than 200 bytes" }
        var scanner = Scanner(Array(text.unicodeScalars))
        scanner.skipSpaces()
        // The name: one or two identifiers (schema.type).
        guard scanner.identifier() else { return "does not start with a type name" }
        if scanner.take(".") { guard scanner.identifier() else { return "has a `.` not followed by a type name" } }
        var sawModifiers = false
        while true {
            scanner.skipSpaces()
            if scanner.atEnd { return nil }
            if scanner.peek == "(" {
                guard !sawModifiers, scanner.modifiers() else { return "has modifiers that are not whole numbers in parentheses, like (12,2)" }
                sawModifiers = true
                continue
            }
            if scanner.peek == "[" {
                while scanner.peek == "[" {
                    guard scanner.arrayBounds() else { return "has an array suffix that is not [] or [n]" }
                    scanner.skipSpaces()
                }
                return scanner.atEnd ? nil : "has text after its array suffix"
            }
            guard let word = scanner.word() else { return "has \"\(scanner.rest)\" where a type name continues or ends" }
            guard continuation.contains(word.lowercased()) || word.lowercased() == "array" else {
                return "has \"\(word)\" after the type name (only the words of types like `double precision` or `timestamp with time zone`)"
            }
            if word.lowercased() == "array" {
                scanner.skipSpaces()
                if scanner.peek == "[" { guard scanner.arrayBounds() else { return "has ARRAY with bounds that are not [n]" } }
                scanner.skipSpaces()
                return scanner.atEnd ? nil : "has text after ARRAY"
            }
        }
    }

    private struct Scanner {
        let scalars: [Unicode.Scalar]
        var index = 0

        init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

        var atEnd: Bool { index >= scalars.count }
        var peek: Unicode.Scalar? { atEnd ? nil : scalars[index] }
        var rest: String { String(String.UnicodeScalarView(scalars[index...])) }

        mutating func skipSpaces() { while let scalar = peek, scalar == " " { index += 1 } }

        mutating func take(_ scalar: Unicode.Scalar) -> Bool {
            guard peek == scalar else { return false }
            index += 1
            return true
        }

        static func isStart(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_"
        }

        static func isPart(_ scalar: Unicode.Scalar) -> Bool { isStart(scalar) || ("0"..."9").contains(scalar) || scalar == "$" }

        /// A plain word: letters, digits, `_`, `$`, starting with a letter or `_`.
        mutating func word() -> String? {
            guard let first = peek, Self.isStart(first) else { return nil }
            let start = index
            while let scalar = peek, Self.isPart(scalar) { index += 1 }
            return String(String.UnicodeScalarView(scalars[start..<index]))
        }

        /// A plain word or a double-quoted identifier (`""` inside for a quote; no NUL, not empty).
        mutating func identifier() -> Bool {
            if word() != nil { return true }
            guard take("\"") else { return false }
            var length = 0
            while let scalar = peek {
                index += 1
                if scalar == "\"" {
                    if take("\"") {
                        length += 1
                        continue
                    }
                    return length > 0
                }
                if scalar.value == 0 { return false }
                length += 1
            }
            return false
        }

        mutating func number() -> Bool {
            let start = index
            while let scalar = peek, ("0"..."9").contains(scalar) { index += 1 }
            return index > start && index - start <= 9
        }

        /// `(n)` or `(n, m, …)`.
        mutating func modifiers() -> Bool {
            guard take("(") else { return false }
            repeat {
                skipSpaces()
                guard number() else { return false }
                skipSpaces()
            } while take(",")
            return take(")")
        }

        /// `[]` or `[n]`.
        mutating func arrayBounds() -> Bool {
            guard take("[") else { return false }
            _ = number()
            return take("]")
        }
    }
}
