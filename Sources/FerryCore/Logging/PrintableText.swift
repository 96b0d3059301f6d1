/// Text from outside (a stream or key name, a client's path) made safe to print on one line: control characters
/// become escapes (`\n`, `\r`, `\t`, `\x00`, `\x1b`…), so a name cannot forge a log line or drive a terminal.
package enum PrintableText {
    /// `text` with every control character (C0, DEL, C1, and the line and paragraph separators) escaped.
    package static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if isControl(scalar) { appendEscape(of: scalar, to: &out) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// `bytes` as printable text: valid UTF-8 as it is (control characters escaped), each byte that is not part of
    /// valid UTF-8 as `\xHH`.
    package static func escaped(bytes: some Collection<UInt8>) -> String {
        var out = ""
        var pending = Array(bytes)[...]
        // Decode scalar by scalar; on an error, escape one byte and go on after it.
        while !pending.isEmpty {
            var iterator = pending.makeIterator()
            var decoder = UTF8()
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if isControl(scalar) { appendEscape(of: scalar, to: &out) } else { out.unicodeScalars.append(scalar) }
                pending = pending.dropFirst(UTF8.width(scalar))
            case .error:
                out += "\\x" + hex(pending.first!)
                pending = pending.dropFirst()
            case .emptyInput:
                pending = []
            }
        }
        return out
    }

    /// Why `bytes` cannot be a PostgreSQL `text` value (a NUL byte, or not valid UTF-8), or nil when it can.
    package static func textProblem(_ bytes: some Collection<UInt8>) -> String? {
        var offset = 0
        var pending = Array(bytes)[...]
        while !pending.isEmpty {
            var iterator = pending.makeIterator()
            var decoder = UTF8()
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar.value == 0 { return "contains a NUL byte (at byte \(offset))" }
                let width = UTF8.width(scalar)
                offset += width
                pending = pending.dropFirst(width)
            case .error:
                return "is not valid UTF-8 (byte 0x\(hex(pending.first!)) at byte \(offset))"
            case .emptyInput:
                return nil
            }
        }
        return nil
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    static func appendEscape(of scalar: Unicode.Scalar, to out: inout String) {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value <= 0xFF {
                out += "\\x" + hex(UInt8(scalar.value))
            } else {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            }
        }
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
