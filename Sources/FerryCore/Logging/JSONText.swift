import Logging

/// Minimal JSON text writing for log lines and CLI output, without Foundation's coders.
package enum JSONText {
    /// Appends `value` as a JSON string literal.
    package static func appendString(_ value: String, to out: inout String) {
        out.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case let s where s.value < 0x20:
                let hex = String(s.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    /// `value` as a JSON string literal.
    package static func string(_ value: String) -> String {
        var out = ""
        appendString(value, to: &out)
        return out
    }

    static func appendMetadata(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text): appendString(text, to: &out)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &out)
        case .array(let items):
            out.append("[")
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(",") }
                appendMetadata(item, to: &out)
            }
            out.append("]")
        case .dictionary(let dictionary):
            out.append("{")
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out.append(",") }
                appendString(key, to: &out)
                out.append(":")
                appendMetadata(dictionary[key]!, to: &out)
            }
            out.append("}")
        }
    }
}
