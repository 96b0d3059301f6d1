/// A PostgreSQL column type as `format_type` or a user writes it, reduced to a base name and its modifiers, so
/// that `varchar(10)` and `character varying(10)` compare equal and a widening can be recognised.
struct ColumnType: Hashable, CustomStringConvertible {
    /// The type's long name without spaces or modifiers: `charactervarying`, `timestampwithouttimezone`.
    var base: String
    /// The modifiers in parentheses (length, precision and scale), empty when none.
    var modifiers: [Int]

    init(_ text: String) {
        var rest = ""
        var inside = ""
        var depth = 0
        var modifiers: [Int] = []
        for character in text.lowercased() where character != " " {
            switch character {
            case "(":
                depth += 1
                inside = ""
            case ")" where depth > 0:
                depth -= 1
                modifiers += inside.split(separator: ",").compactMap { Int($0) }
            default:
                if depth > 0 { inside.append(character) } else { rest.append(character) }
            }
        }
        let arrays = rest.hasSuffix("[]") ? "[]" : ""
        let name = arrays.isEmpty ? rest : String(rest.dropLast(2))
        base = (Self.aliases[name] ?? name) + arrays
        self.modifiers = modifiers
    }

    var description: String { modifiers.isEmpty ? base : "\(base)(\(modifiers.map(String.init).joined(separator: ",")))" }

    private static let aliases = [
        "int8": "bigint", "int4": "integer", "int": "integer", "int2": "smallint", "float8": "doubleprecision", "float4": "real",
        "bool": "boolean", "varchar": "charactervarying", "timestamptz": "timestampwithtimezone", "timestamp": "timestampwithouttimezone",
        "decimal": "numeric", "char": "character", "bpchar": "character", "timetz": "timewithtimezone", "time": "timewithouttimezone",
    ]

    /// Decimal digits before the point that each integer type needs.
    private static let integerDigits = ["smallint": 5, "integer": 10, "bigint": 19]
    private static let integerRank = ["smallint": 1, "integer": 2, "bigint": 3]
    private static let fractionalSeconds: Set = ["timestampwithouttimezone", "timestampwithtimezone", "timewithouttimezone", "timewithtimezone"]

    /// Whether every value of `self` is also a value of `wider`, printed the same: a column of `self` may become
    /// `wider` without losing or changing anything.
    func widens(to wider: ColumnType) -> Bool {
        if self == wider { return true }
        switch (base, wider.base) {
        case (let from, let to) where Self.integerRank[from] != nil && Self.integerRank[to] != nil:
            return Self.integerRank[from]! <= Self.integerRank[to]!
        case (let from, "numeric") where Self.integerDigits[from] != nil:
            return wider.modifiers.isEmpty || (wider.modifiers.first! - (wider.modifiers.dropFirst().first ?? 0)) >= Self.integerDigits[from]!
        case ("numeric", "numeric"):
            guard let precision = modifiers.first else { return wider.modifiers.isEmpty }
            guard let widerPrecision = wider.modifiers.first else { return true }
            let scale = modifiers.dropFirst().first ?? 0
            let widerScale = wider.modifiers.dropFirst().first ?? 0
            return widerScale >= scale && widerPrecision - widerScale >= precision - scale
        case ("real", "doubleprecision"):
            // Exact as a value, but printed with more digits (0.1 becomes 0.100000001490116): a reader sees a change.
            return false
        case ("charactervarying", "charactervarying"):
            guard let length = modifiers.first else { return wider.modifiers.isEmpty }
            return wider.modifiers.first.map { $0 >= length } ?? true
        case ("charactervarying", "text"):
            return true
        case (let from, let to) where from == to && Self.fractionalSeconds.contains(from):
            return (modifiers.first ?? 6) <= (wider.modifiers.first ?? 6)
        default:
            return false
        }
    }
}
