/// How a value's bytes travel in a bulk copy. FreeTDS's DB-Library (1.3) sends a program variable's bytes to a character
/// column exactly as given, without converting them to the column's encoding (its BCP converts only data files): Ferry
/// encodes text for character columns itself, and leaves the other types to FreeTDS's conversion from text.
package enum SQLServerBulkEncoding: Sendable, Equatable {
    /// Text FreeTDS converts to the column's type (numbers, dates and times, `0x…` bytes, GUIDs): ASCII.
    case converted
    /// `nchar`, `nvarchar`, `ntext`: UTF-16LE.
    case utf16
    /// `char`, `varchar`, `text`: the collation's code page. 1252 (Latin-1, SQL Server's default) and 65001 (UTF-8
    /// collations) are encoded here; in any other code page only ASCII text is (other text goes through a statement,
    /// where SQL Server converts it as it would any client's).
    case codePage(Int?)

    /// The encoding a column of `type` takes, `codePage` being its collation's.
    package init(type: SQLServerColumnType, codePage: Int?) {
        switch type.base {
        case "nchar", "nvarchar", "ntext", "sysname": self = .utf16
        case "char", "varchar", "text": self = .codePage(codePage)
        default: self = .converted
        }
    }

    /// Appends `value`'s bytes; false (with `bytes` as it was) when a character cannot be written in this encoding.
    package func encode(_ value: String, into bytes: inout [UInt8]) -> Bool {
        switch self {
        case .converted:
            bytes.append(contentsOf: value.utf8)
            return true
        case .utf16:
            for unit in value.utf16 {
                bytes.append(UInt8(truncatingIfNeeded: unit))
                bytes.append(UInt8(truncatingIfNeeded: unit >> 8))
            }
            return true
        case .codePage(65001):
            bytes.append(contentsOf: value.utf8)
            return true
        case .codePage(let page):
            let start = bytes.count
            for scalar in value.unicodeScalars {
                if scalar.value < 0x80 {
                    bytes.append(UInt8(scalar.value))
                } else if page == 1252, let byte = Self.windows1252(scalar) {
                    bytes.append(byte)
                } else {
                    bytes.removeSubrange(start...)
                    return false
                }
            }
            return true
        }
    }

    /// Whether `value` can be written in this encoding.
    package func canEncode(_ value: String) -> Bool {
        if case .codePage(let page) = self, page != 65001, value.utf8.contains(where: { $0 >= 0x80 }) {
            var scratch: [UInt8] = []
            return encode(value, into: &scratch)
        }
        return true
    }

    /// Code page 1252's byte for a character above ASCII: Latin-1's for U+00A0…U+00FF, its own table for 0x80…0x9F.
    static func windows1252(_ scalar: Unicode.Scalar) -> UInt8? {
        if (0xA0...0xFF).contains(scalar.value) { return UInt8(scalar.value) }
        guard let index = high.firstIndex(of: UInt16(truncatingIfNeeded: scalar.value)), scalar.value <= 0xFFFF, scalar.value >= 0x80 else {
            return nil
        }
        return UInt8(0x80 + index)
    }

    /// The characters of bytes 0x80…0x9F in code page 1252 (0 where the byte is undefined).
    private static let high: [UInt16] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
        0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
    ]
}
