/// A SQL Server column type as `sys.dm_exec_describe_first_result_set` names it (`nvarchar(50)`, `decimal(12,2)`,
/// `datetime2(7)`): the mirror's PostgreSQL type for it, and how a value read from it (as PostgreSQL text) is
/// bound back in a statement, so that keyset conditions compare the column with exactly the value it had.
package struct SQLServerColumnType: Sendable, Hashable, CustomStringConvertible {
    /// The type's name in lower case: `nvarchar`, `datetime2`.
    package var base: String
    /// What is in parentheses: `["50"]`, `["max"]`, `["12", "2"]`.
    package var arguments: [String]

    package init(_ text: String) {
        let trimmed = Self.trim(text.lowercased())
        guard let open = trimmed.firstIndex(of: "("), trimmed.hasSuffix(")") else {
            base = trimmed
            arguments = []
            return
        }
        base = Self.trim(trimmed[..<open])
        arguments = trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)].split(separator: ",").map { Self.trim($0) }
    }

    static func trim(_ text: some StringProtocol) -> String {
        String(text.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }

    package var description: String { arguments.isEmpty ? base : "\(base)(\(arguments.joined(separator: ",")))" }

    private func argument(_ index: Int) -> Int? { index < arguments.count ? Int(arguments[index]) : nil }

    /// Fractional-second digits of a time type (7 when not given, as SQL Server's default).
    package var timeScale: Int { argument(0) ?? 7 }

    /// The mirror's PostgreSQL type, as `format_type` prints it; nil for a type Ferry does not read (`sql_variant`,
    /// `xml`, CLR types), which must be excluded or converted in a query.
    ///
    /// Lengths carry over (a `varchar(n)` holds at most n characters, an `nvarchar(n)` at most n UTF-16 units: both
    /// fit PostgreSQL's `varchar(n)`, which counts characters); `(max)` and the old large types become `text`/`bytea`.
    /// Time types keep microseconds, PostgreSQL's resolution: a 7th fractional digit is cut (never rounded, so
    /// `9999-12-31 23:59:59.9999999` stays on its day). `datetime` keeps its 1/300 s ticks to the microsecond.
    package var postgresType: String? {
        switch base {
        case "bit": return "boolean"
        case "tinyint", "smallint": return "smallint"
        case "int": return "integer"
        case "bigint": return "bigint"
        case "decimal", "numeric":
            let precision = argument(0) ?? 18
            return "numeric(\(precision),\(argument(1) ?? 0))"
        case "money": return "numeric(19,4)"
        case "smallmoney": return "numeric(10,4)"
        case "real": return "real"
        case "float": return (argument(0) ?? 53) <= 24 ? "real" : "double precision"
        case "char", "nchar": return "character(\(argument(0) ?? 1))"
        case "varchar", "nvarchar":
            guard let length = argument(0) else { return "text" }
            return "character varying(\(length))"
        case "sysname": return "character varying(128)"
        case "text", "ntext": return "text"
        case "binary", "varbinary", "image", "timestamp", "rowversion": return "bytea"
        case "uniqueidentifier": return "uuid"
        case "date": return "date"
        case "time": return "time(\(min(timeScale, 6))) without time zone"
        case "datetime2": return "timestamp(\(min(timeScale, 6))) without time zone"
        case "datetime": return "timestamp without time zone"
        case "smalldatetime": return "timestamp(0) without time zone"
        case "datetimeoffset": return "timestamp(\(min(timeScale, 6))) with time zone"
        default: return nil
        }
    }

    /// A `rowversion` (called `timestamp` in the catalog): a database-wide counter SQL Server bumps on every write.
    package var isRowVersion: Bool { base == "timestamp" || base == "rowversion" }

    /// Whether values have digits below the microsecond, which the text Ferry reads cuts: a position on such a column
    /// needs the value's full text (``SQLServerText`` with `fullPrecision`).
    package var hasSubMicroseconds: Bool {
        ["time", "datetime2", "datetimeoffset"].contains(base) && timeScale > 6
    }

    /// The `@params` declaration and the expression for a parameter compared with this column. `datetime` and
    /// `smalldatetime` take only three fractional digits as text, so their values travel as `datetime2(7)` and are
    /// converted on the server (to the same tick the column holds); binary values travel as hex (`0x…`, style 1).
    package func parameter(_ name: String) -> (declaration: String, expression: String) {
        switch base {
        case "datetime", "smalldatetime": return ("datetime2(7)", "CAST(\(name) AS \(base))")
        case "timestamp", "rowversion": return ("varchar(max)", "CONVERT(binary(8), \(name), 1)")
        case "binary", "varbinary", "image": return ("varchar(max)", "CONVERT(varbinary(max), \(name), 1)")
        case "text": return ("varchar(max)", name)
        case "ntext": return ("nvarchar(max)", name)
        default: return (description, name)
        }
    }

    /// A value as PostgreSQL printed it, rewritten as FreeTDS converts text to this type in a bulk copy; nil when it
    /// cannot: FreeTDS reads no UTC offset, so a `datetimeoffset` goes as its UTC time only when the offset is +00 (as
    /// Ferry's PostgreSQL sessions, in UTC, print every `timestamptz`).
    package func bulkText(_ value: String) -> String? {
        switch base {
        case "datetimeoffset":
            for suffix in ["+00:00", "+00"] where value.hasSuffix(suffix) { return String(value.dropLast(suffix.count)) }
            return nil
        default: return parameterText(value)
        }
    }

    /// A value as PostgreSQL printed it (what the rows and positions hold), rewritten as SQL Server reads that type
    /// from text: booleans as 1/0, `bytea` hex as `0x…`, a UTC offset `+00` as ` +00:00`.
    package func parameterText(_ value: String) -> String {
        switch base {
        case "bit": return value == "t" || value == "true" ? "1" : value == "f" || value == "false" ? "0" : value
        case "binary", "varbinary", "image", "timestamp", "rowversion":
            return value.hasPrefix("\\x") ? "0x" + value.dropFirst(2) : value
        case "datetimeoffset":
            // PostgreSQL prints the offset as +HH or +HH:MM (after the seconds); SQL Server wants ` +HH:MM`.
            guard let sign = value.lastIndex(where: { $0 == "+" || $0 == "-" }), value.distance(from: value.startIndex, to: sign) > 10 else {
                return value
            }
            var offset = String(value[sign...])
            if !offset.contains(":") { offset += ":00" }
            return Self.trim(value[..<sign]) + " " + offset
        default: return value
        }
    }
}
