package import FerryCore
import Foundation

/// A query file's SQL with its `{name}` placeholders, and how each is filled safely for a dialect:
///
/// - `'{name}'` (the whole string literal): bound as a query parameter, never spliced into the SQL.
/// - `'…{name}…'` (part of a literal, e.g. `'%{name}%'`): the value is escaped into the literal (quotes doubled).
/// - `{name}` bare: the value must be a number, an identifier (`schema.table`), or a simple expression of identifiers,
///   numbers, dots, commas, parentheses and spaces (`factor_rw1 as factor_rw`, as the original query library
///   uses); quotes, semicolons, comments and anything else are refused: they belong in quotes, where they are bound.
///
/// Placeholders inside `--` and `/* */` comments are left as they are; `{{` and `}}` are literal braces, in and out
/// of string literals.
package struct SQLTemplate: Sendable, Equatable {
    package enum Dialect: Sendable {
        /// `$1`, `$2`, …
        case postgres
        /// `@p1`, `@p2`, … (sp_executesql); an empty value is written `N''`, as DB-Library sends an empty parameter as NULL.
        case sqlserver
    }

    package enum Piece: Sendable, Equatable {
        case text(String)
        /// A literal that is exactly one placeholder: bound.
        case bound(String)
        /// A literal with placeholders inside: `parts` alternate text and names (names at odd positions).
        case literal([String])
        case bare(String)
    }

    package let pieces: [Piece]

    /// Every placeholder name, in order of first use.
    package var names: [String] {
        var seen: [String] = []
        for piece in pieces {
            switch piece {
            case .text: break
            case .bound(let name), .bare(let name): if !seen.contains(name) { seen.append(name) }
            case .literal(let parts):
                for (index, part) in parts.enumerated() where index % 2 == 1 && !seen.contains(part) { seen.append(part) }
            }
        }
        return seen
    }

    /// Parses `sql` (from `file`, for messages).
    package init(_ sql: String, file: String) throws(FerryError) {
        var pieces: [Piece] = []
        var text = ""
        let scalars = Array(sql.unicodeScalars)
        var index = 0
        func flush() {
            if !text.isEmpty { pieces.append(.text(text)) }
            text = ""
        }
        func placeholder(at start: Int) throws(FerryError) -> (name: String, end: Int)? {
            // `{name}` with name [A-Za-z_][A-Za-z0-9_]*
            var end = start + 1
            while end < scalars.count,
                scalars[end] == "_" || (scalars[end].isASCII && scalars[end].properties.isAlphabetic) || ("0"..."9").contains(scalars[end])
            {
                end += 1
            }
            guard end < scalars.count, scalars[end] == "}", end > start + 1 else { return nil }
            let name = String(String.UnicodeScalarView(scalars[(start + 1)..<end]))
            guard !("0"..."9").contains(name.unicodeScalars.first!) else { return nil }
            return (name, end + 1)
        }
        while index < scalars.count {
            let scalar = scalars[index]
            let next = index + 1 < scalars.count ? scalars[index + 1] : nil
            if scalar == "-" && next == "-" {
                while index < scalars.count, scalars[index] != "\n" {
                    text.unicodeScalars.append(scalars[index])
                    index += 1
                }
            } else if scalar == "/" && next == "*" {
                text += "/*"
                index += 2
                while index < scalars.count, !(scalars[index] == "*" && index + 1 < scalars.count && scalars[index + 1] == "/") {
                    text.unicodeScalars.append(scalars[index])
                    index += 1
                }
                if index < scalars.count {
                    text += "*/"
                    index += 2
                }
            } else if scalar == "'" {
                // A string literal: '' is an escaped quote.
                var parts: [String] = [""]
                var cursor = index + 1
                var closed = false
                while cursor < scalars.count {
                    let character = scalars[cursor]
                    if character == "'" {
                        if cursor + 1 < scalars.count, scalars[cursor + 1] == "'" {
                            parts[parts.count - 1] += "''"
                            cursor += 2
                            continue
                        }
                        closed = true
                        cursor += 1
                        break
                    }
                    if character == "{" || character == "}", cursor + 1 < scalars.count, scalars[cursor + 1] == character {
                        parts[parts.count - 1].unicodeScalars.append(character)
                        cursor += 2
                        continue
                    }
                    if character == "{", let found = try placeholder(at: cursor) {
                        parts.append(found.name)
                        parts.append("")
                        cursor = found.end
                        continue
                    }
                    parts[parts.count - 1].unicodeScalars.append(character)
                    cursor += 1
                }
                guard closed else {
                    throw FerryError(.invalidInput, "\(file): a string literal is not closed", fix: "close it with '")
                }
                if parts.count == 1 {
                    text += "'" + parts[0] + "'"
                } else if parts.count == 3, parts[0].isEmpty, parts[2].isEmpty {
                    flush()
                    pieces.append(.bound(parts[1]))
                } else {
                    flush()
                    pieces.append(.literal(parts))
                }
                index = cursor
            } else if scalar == "{", next == "{" {
                text += "{"
                index += 2
            } else if scalar == "}", next == "}" {
                text += "}"
                index += 2
            } else if scalar == "{", let found = try placeholder(at: index) {
                flush()
                pieces.append(.bare(found.name))
                index = found.end
            } else {
                text.unicodeScalars.append(scalar)
                index += 1
            }
        }
        flush()
        self.pieces = pieces
    }

    /// The SQL for `dialect` and the values to bind, in order. Placeholders without a value, and bare values that
    /// are not plain SQL, are errors naming them.
    /// With `literals`, a bound value is written as a quoted literal instead (for COPY, which takes no parameters): the
    /// caller runs it with `standard_conforming_strings` on, so doubling the quotes is the whole escaping.
    package func render(_ values: [String: String], dialect: Dialect, file: String, literals: Bool = false) throws(FerryError) -> (
        sql: String, bindings: [String]
    ) {
        let missing = names.filter { values[$0] == nil }
        guard missing.isEmpty else {
            throw FerryError(
                .invalidInput, "\(file): no value for \(missing.map { "{\($0)}" }.joined(separator: ", "))",
                fix: "define \(missing.count == 1 ? "it" : "them") in config/common_params.yaml or the country's file, or pass --param NAME=VALUE")
        }
        var sql = ""
        var bindings: [String] = []
        for piece in pieces {
            switch piece {
            case .text(let text): sql += text
            case .bound(let name):
                let value = values[name] ?? ""
                if literals || (dialect == .sqlserver && value.isEmpty) {
                    guard !value.unicodeScalars.contains("\0") else {
                        throw FerryError(.invalidInput, "\(file): {\(name)} holds a NUL character", fix: "remove it from the value")
                    }
                    sql += "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
                } else {
                    bindings.append(value)
                    sql += dialect == .postgres ? "$\(bindings.count)" : "@p\(bindings.count)"
                }
            case .literal(let parts):
                sql += "'"
                for (index, part) in parts.enumerated() {
                    sql += index % 2 == 0 ? part : (values[part] ?? "").replacingOccurrences(of: "'", with: "''")
                }
                sql += "'"
            case .bare(let name):
                let value = values[name] ?? ""
                guard Self.isPlainSQL(value) else {
                    throw FerryError(
                        .invalidInput,
                        "\(file): {\(name)} stands bare in the SQL, and its value \"\(PrintableText.escaped(String(value.prefix(60))))\" is not a number, a name or a plain expression",
                        fix: "write '{\(name)}' in the query to bind it as a value, or give a plain name or number")
                }
                sql += value
            }
        }
        return (sql, bindings)
    }

    /// Identifiers, numbers, dots, commas, parentheses, `*` and spaces only: nothing that can end a statement, open
    /// a string or a comment.
    static func isPlainSQL(_ value: String) -> Bool {
        guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { return false }
        if value.contains("--") || value.contains("/*") { return false }
        return value.unicodeScalars.allSatisfy { scalar in
            (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar))) || "_.,()* ".unicodeScalars.contains(scalar)
        }
    }
}
