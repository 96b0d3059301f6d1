/// T-SQL identifiers, always quoted: `[name]` with `]` doubled.
package enum SQLServerIdentifier {
    package static func quote(_ name: String) -> String {
        "[" + name.split(separator: "]", omittingEmptySubsequences: false).joined(separator: "]]") + "]"
    }

    /// `schema.view` (or `view`) as written in the configuration, each part quoted: `[dbo].[VW_VENTAS_SYNC]`. A part
    /// already in brackets is taken as it is quoted.
    package static func qualified(_ name: String) -> String {
        var parts: [String] = []
        var current = ""
        var bracketed = false
        var index = name.startIndex
        while index < name.endIndex {
            let character = name[index]
            if bracketed {
                if character == "]" {
                    let next = name.index(after: index)
                    if next < name.endIndex, name[next] == "]" {
                        current.append("]")
                        index = name.index(after: next)
                        continue
                    }
                    bracketed = false
                } else {
                    current.append(character)
                }
            } else if character == "[" {
                bracketed = true
            } else if character == "." {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
            index = name.index(after: index)
        }
        parts.append(current)
        return parts.map(quote).joined(separator: ".")
    }
}
