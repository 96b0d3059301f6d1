/// Quotes PostgreSQL identifiers. Every table, column and schema name Ferry puts into SQL goes through here.
package enum SQLIdentifier {
    /// `name` as a quoted identifier: `"name"`, with embedded quotes doubled.
    package static func quote(_ name: String) -> String {
        var out = "\""
        for character in name {
            if character == "\"" { out += "\"\"" } else if character != "\0" { out.append(character) }
        }
        return out + "\""
    }

    /// `"schema"."name"`.
    package static func qualified(_ schema: String, _ name: String) -> String {
        quote(schema) + "." + quote(name)
    }
}

extension SQLIdentifier {
    /// A string literal for places where a bind parameter cannot go (DDL, COMMENT, object keys in generated
    /// SQL): single quotes doubled, and the escape-string form when backslashes are present.
    package static func literal(_ value: String) -> String {
        let escapeForm = value.contains("\\")
        var out = escapeForm ? "E'" : "'"
        for character in value where character != "\0" {
            switch character {
            case "'": out += "''"
            case "\\": out += "\\\\"
            default: out.append(character)
            }
        }
        return out + "'"
    }
}
