/// The text elements of an S3 XML reply (ListObjectsV2, DeleteObjects, errors), in document order, each with the
/// name of the element around it: `<Contents><Key>a</Key></Contents>` gives `(parent: "Contents", name: "Key",
/// text: "a")`. S3's replies are flat enough that this is all a reader needs, and a scanner keeps FoundationXML and
/// libxml2 out of the binary. Entities and CDATA are decoded; attributes, comments and declarations skipped.
struct S3XML {
    struct Element: Equatable {
        var parent: String
        var name: String
        var text: String
    }

    var elements: [Element] = []

    /// Nil when the bytes are not well-formed as far as the scanner looks (unclosed or mismatched tags).
    init?(_ bytes: [UInt8]) {
        var stack: [(name: String, hasChildren: Bool)] = []
        var text: [UInt8] = []
        var index = 0
        func starts(_ literal: StaticString, at offset: Int) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard offset + count <= bytes.count else { return false }
            return literal.withUTF8Buffer { literal in (0..<count).allSatisfy { bytes[offset + $0] == literal[$0] } }
        }
        func find(_ literal: StaticString, from offset: Int) -> Int? {
            let first = literal.withUTF8Buffer { $0[0] }
            var position = offset
            while let found = bytes[position...].firstIndex(of: first) {
                if starts(literal, at: found) { return found }
                position = found + 1
            }
            return nil
        }
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "<") else {
                text.append(bytes[index])
                index += 1
                continue
            }
            if starts("<![CDATA[", at: index) {
                guard let end = find("]]>", from: index + 9) else { return nil }
                // Kept apart from entity decoding: CDATA's `&` is literal.
                text += Self.escapedForDecoding(bytes[(index + 9)..<end])
                index = end + 3
            } else if starts("<!--", at: index) {
                guard let end = find("-->", from: index + 4) else { return nil }
                index = end + 3
            } else if starts("<?", at: index) || starts("<!", at: index) {
                guard let end = find(">", from: index + 2) else { return nil }
                index = end + 1
            } else {
                guard let end = find(">", from: index + 1) else { return nil }
                let closing = bytes[index + 1] == UInt8(ascii: "/")
                let selfClosing = !closing && bytes[end - 1] == UInt8(ascii: "/")
                let nameStart = index + (closing ? 2 : 1)
                var nameEnd = nameStart
                while nameEnd < end,
                    ![UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: "/")].contains(bytes[nameEnd])
                {
                    nameEnd += 1
                }
                let name = String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self)
                guard !name.isEmpty else { return nil }
                if closing {
                    guard let open = stack.popLast(), open.name == name else { return nil }
                    if !open.hasChildren {
                        elements.append(Element(parent: stack.last?.name ?? "", name: name, text: Self.decodeEntities(text)))
                    }
                } else {
                    if !stack.isEmpty { stack[stack.count - 1].hasChildren = true }
                    if selfClosing {
                        elements.append(Element(parent: stack.last?.name ?? "", name: name, text: ""))
                    } else {
                        stack.append((name, false))
                    }
                }
                text.removeAll(keepingCapacity: true)
                index = end + 1
            }
        }
        guard stack.isEmpty else { return nil }
    }

    /// The text of the first element named `name` (under `parent` when given).
    func first(_ name: String, in parent: String? = nil) -> String? {
        elements.first { $0.name == name && (parent == nil || $0.parent == parent) }?.text
    }

    /// The texts of every element named `name` under `parent`, in order.
    func all(_ name: String, in parent: String) -> [String] {
        elements.filter { $0.name == name && $0.parent == parent }.map(\.text)
    }

    /// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#NN;` and `&#xHH;` decoded; anything else kept as it is.
    static func decodeEntities(_ bytes: [UInt8]) -> String {
        guard bytes.contains(UInt8(ascii: "&")) else { return String(decoding: bytes, as: UTF8.self) }
        var out = ""
        var index = 0
        var pending: [UInt8] = []
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "&"), let semicolon = bytes[index...].prefix(12).firstIndex(of: UInt8(ascii: ";")) {
                let entity = String(decoding: bytes[(index + 1)..<semicolon], as: UTF8.self)
                var scalar: Unicode.Scalar?
                switch entity {
                case "amp": scalar = "&"
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                        scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                    } else if entity.hasPrefix("#") {
                        scalar = UInt32(entity.dropFirst(), radix: 10).flatMap(Unicode.Scalar.init)
                    }
                }
                if let scalar {
                    out += String(decoding: pending, as: UTF8.self)
                    pending.removeAll()
                    out.unicodeScalars.append(scalar)
                    index = semicolon + 1
                    continue
                }
            }
            pending.append(bytes[index])
            index += 1
        }
        return out + String(decoding: pending, as: UTF8.self)
    }

    /// CDATA's bytes with `&` written `&amp;`, so that decoding the element's text leaves them as they were.
    private static func escapedForDecoding(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        for byte in bytes {
            if byte == UInt8(ascii: "&") { out += Array("&amp;".utf8) } else { out.append(byte) }
        }
        return out
    }

    /// `text` with the five XML special characters escaped, for a request body.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}
