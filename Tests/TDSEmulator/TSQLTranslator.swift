import Foundation

/// Turns the T-SQL subset Ferry emits into PostgreSQL:
///
/// - `[name]` identifiers become `"name"` (`]]` inside is one `]`);
/// - `N'text'` literals become `'text'`;
/// - `@name` parameters become `$1`, `$2`, … in the order the caller declared them;
/// - `TOP (n)` / `TOP n` after SELECT becomes a `LIMIT n` at the statement's end;
/// - `CONVERT(binary(8), @p, 1)` (hex text to bytes) becomes `decode(…, 'hex')`;
/// - `GETDATE()`, `SYSUTCDATETIME()`, `ISNULL(`, `COUNT_BIG(`, `OBJECT_ID(`, `MIN_ACTIVE_ROWVERSION()`, `COLLATIONPROPERTY(`, `SYSTEM_USER` and `@@VERSION` become
///   PostgreSQL's forms (`OBJECT_ID` and `sys.partitions` are served by the `sys` schema the emulator installs);
/// - a SQL Server type after `AS` (`CAST(@p AS datetime)`) becomes its PostgreSQL counterpart;
/// - the `dbo.` schema (SQL Server's default) is dropped: tables live in the session's schema;
/// - a statement that is only session settings (`SET NOCOUNT ON`, `SET TEXTSIZE …`) translates to nothing.
///
/// Literals and comments pass through untouched. Anything else is passed to PostgreSQL as written, whose error then
/// reaches the client as a SQL Server error.
struct TSQLTranslator {
    /// The statement for PostgreSQL, or nil when there is nothing to run.
    static func translate(_ tsql: String, parameters: [String] = []) throws -> String? {
        // CONVERT(binary(8), @p, 1): a hex text `0x…` as bytes.
        let tsql = changeTables(tsql).replacing(#/(?i)CONVERT\s*\(\s*(?:var)?binary\s*\(\s*(?:\d+|max)\s*\)\s*,\s*(@\w+)\s*,\s*1\s*\)/#) { match in
            "decode(substr(CAST(\(match.output.1) AS text), 3), 'hex')"
        }
        var out = ""
        var limit: String?
        let scalars = Array(tsql.unicodeScalars)
        var i = 0
        var lastWord = ""
        var firstWord: String?

        func peek(_ offset: Int = 0) -> Unicode.Scalar? { i + offset < scalars.count ? scalars[i + offset] : nil }
        func isWordScalar(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || c == "_" || ("0"..."9").contains(c) || c == "#" || c == "$" }

        while let c = peek() {
            switch c {
            case "'":
                out.unicodeScalars.append(c)
                i += 1
                while let d = peek() {
                    out.unicodeScalars.append(d)
                    i += 1
                    if d == "'" {
                        if peek() == "'" {
                            out.unicodeScalars.append("'")
                            i += 1
                        } else {
                            break
                        }
                    }
                }
            case "[":
                i += 1
                var name = ""
                while true {
                    guard let d = peek() else { throw TSQLError("an identifier in [ ] is not closed") }
                    i += 1
                    if d == "]" {
                        if peek() == "]" {
                            name.unicodeScalars.append("]")
                            i += 1
                            continue
                        }
                        break
                    }
                    name.unicodeScalars.append(d)
                }
                // dbo, SQL Server's default schema, is the session's own schema here.
                if name.lowercased() == "dbo", peek() == "." {
                    i += 1
                    continue
                }
                out += "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                lastWord = ""
            case "-" where peek(1) == "-":
                while let d = peek(), d != "\n" {
                    out.unicodeScalars.append(d)
                    i += 1
                }
            case "/" where peek(1) == "*":
                while let d = peek() {
                    out.unicodeScalars.append(d)
                    i += 1
                    if d == "/", out.unicodeScalars.count >= 2, out.hasSuffix("*/") { break }
                }
            case "@" where peek(1) == "@":
                i += 2
                var name = ""
                while let d = peek(), isWordScalar(d) {
                    name.unicodeScalars.append(d)
                    i += 1
                }
                guard name.uppercased() == "VERSION" else { throw TSQLError("@@\(name) is not served by the emulator") }
                out += "('Microsoft SQL Server (Ferry TDS emulator on ' || version() || ')')"
                lastWord = ""
            case "@" where peek(1) != "@":
                i += 1
                var name = "@"
                while let d = peek(), isWordScalar(d) {
                    name.unicodeScalars.append(d)
                    i += 1
                }
                guard let index = parameters.firstIndex(where: { $0.lowercased() == name.lowercased() }) else {
                    throw TSQLError("must declare the scalar variable \"\(name)\"")
                }
                out += "$\(index + 1)"
                lastWord = ""
            case _ where isWordScalar(c):
                var word = ""
                while let d = peek(), isWordScalar(d) {
                    word.unicodeScalars.append(d)
                    i += 1
                }
                let upper = word.uppercased()
                if firstWord == nil { firstWord = upper }
                if upper == "N", peek() == "'" {
                    continue
                }
                if upper == "DBO", peek() == "." {
                    i += 1
                    continue
                }
                if upper == "TOP", lastWord == "SELECT" || lastWord == "DISTINCT" {
                    limit = try readTop(scalars, &i, parameters: parameters)
                    continue
                }
                if lastWord == "AS", let type = typeNames[upper] {
                    out += type
                    lastWord = ""
                    // `(max)`, and a length PostgreSQL's type takes none of (`varbinary(16)` → `bytea`), are dropped.
                    var next = i
                    while next < scalars.count, scalars[next].properties.isWhitespace { next += 1 }
                    if next < scalars.count, scalars[next] == "(", let close = scalars[next...].firstIndex(of: ")") {
                        let argument = String(String.UnicodeScalarView(scalars[(next + 1)..<close])).trimmingCharacters(in: .whitespaces)
                        if argument.lowercased() == "max" || !Self.typesWithModifiers.contains(type) { i = close + 1 }
                    }
                    continue
                }
                switch upper {
                case "COUNT_BIG" where peek() == "(": out += "count"
                case "OBJECT_ID" where peek() == "(": out += "sys.object_id"
                case "MIN_ACTIVE_ROWVERSION" where peek() == "(": out += "sys.min_active_rowversion"
                case "COLLATIONPROPERTY" where peek() == "(": out += "sys.collationproperty"
                case "CHANGE_TRACKING_MIN_VALID_VERSION" where peek() == "(": out += "sys.change_tracking_min_valid_version"
                case "CHANGE_TRACKING_CURRENT_VERSION" where peek() == "(": out += "sys.change_tracking_current_version"
                case "GETDATE" where peek() == "(": out += "LOCALTIMESTAMP"
                case "SYSUTCDATETIME" where peek() == "(": out += "(now() AT TIME ZONE 'UTC')"
                case "ISNULL" where peek() == "(": out += "COALESCE"
                case "SYSTEM_USER": out += "current_user"
                default: out += word
                }
                if upper == "GETDATE" || upper == "SYSUTCDATETIME", peek() == "(", peek(1) == ")" { i += 2 }
                lastWord = upper
            default:
                out.unicodeScalars.append(c)
                i += 1
                if !c.properties.isWhitespace { lastWord = "" }
            }
        }
        var statement = out.trimmingCharacters(in: .whitespacesAndNewlines)
        while statement.hasSuffix(";") { statement = String(statement.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
        if firstWord == "SET", !statement.contains("=") { return nil }
        if statement.isEmpty { return nil }
        if let limit { statement += " LIMIT \(limit)" }
        return statement
    }

    /// `CROSS APPLY CHANGETABLE(VERSION t, (k…), (v…))` and `CHANGETABLE(CHANGES t, v)` as the functions
    /// ``TDSEmulator/changeTrackingCatalog`` creates for `t` (the key values in the primary key's order).
    static func changeTables(_ tsql: String) -> String {
        func function(_ prefix: String, _ table: Substring) -> String {
            let name =
                table.replacing(#/(?i)^\s*(\[dbo\]|dbo)\./#, with: "").replacingOccurrences(of: "[", with: "")
                .replacingOccurrences(of: "]", with: "").split(separator: ".").last.map(String.init) ?? ""
            return "[\(prefix) \(name.replacingOccurrences(of: "]", with: "]]"))]"
        }
        return
            tsql
            .replacing(#/(?i)CROSS\s+APPLY\s+CHANGETABLE\s*\(\s*VERSION\s+([^,]+?)\s*,\s*\([^)]*\)\s*,\s*\(([^)]*)\)\s*\)/#) { match in
                "CROSS JOIN LATERAL \(function("version of", match.output.1))(\(match.output.2))"
            }
            .replacing(#/(?i)CHANGETABLE\s*\(\s*CHANGES\s+([^,]+?)\s*,\s*([^)]+?)\s*\)/#) { match in
                "\(function("changes of", match.output.1))(\(match.output.2))"
            }
    }

    /// SQL Server types written in a CAST, as PostgreSQL names them.
    static let typeNames = [
        "DATETIME": "timestamp", "DATETIME2": "timestamp", "SMALLDATETIME": "timestamp(0)", "DATETIMEOFFSET": "timestamptz", "BIT": "boolean",
        "TINYINT": "smallint", "NVARCHAR": "varchar", "NCHAR": "char", "UNIQUEIDENTIFIER": "uuid", "MONEY": "numeric(19,4)",
        "SMALLMONEY": "numeric(10,4)", "FLOAT": "float8", "VARBINARY": "bytea", "BINARY": "bytea", "IMAGE": "bytea", "VARCHAR": "varchar",
        "CHAR": "char", "TEXT": "text", "NTEXT": "text", "DECIMAL": "numeric", "NUMERIC": "numeric", "TIME": "time", "REAL": "real",
    ]

    /// The PostgreSQL types of ``typeNames`` that take a length, precision or scale in parentheses.
    static let typesWithModifiers: Set<String> = ["timestamp", "timestamptz", "varchar", "char", "numeric", "time"]

    /// After TOP: `(n)`, `(@p)` or `n`. Returns the LIMIT's operand.
    private static func readTop(_ scalars: [Unicode.Scalar], _ i: inout Int, parameters: [String]) throws -> String {
        while i < scalars.count, scalars[i].properties.isWhitespace { i += 1 }
        let parenthesized = i < scalars.count && scalars[i] == "("
        if parenthesized { i += 1 }
        var operand = ""
        while i < scalars.count, scalars[i] != ")", !(scalars[i].properties.isWhitespace && !parenthesized) {
            operand.unicodeScalars.append(scalars[i])
            i += 1
        }
        if parenthesized {
            guard i < scalars.count else { throw TSQLError("TOP ( is not closed") }
            i += 1
        }
        operand = operand.trimmingCharacters(in: .whitespaces)
        if operand.hasPrefix("@") {
            guard let index = parameters.firstIndex(where: { $0.lowercased() == operand.lowercased() }) else {
                throw TSQLError("must declare the scalar variable \"\(operand)\"")
            }
            return "$\(index + 1)"
        }
        guard Int(operand) != nil else { throw TSQLError("TOP takes a number or a parameter, not \(operand)") }
        return operand
    }
}

/// T-SQL the emulator does not take; sent to the client as error 102 (incorrect syntax) or 137 (undeclared variable).
struct TSQLError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
