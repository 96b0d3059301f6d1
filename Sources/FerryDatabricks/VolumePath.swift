package import FerryCore

/// An absolute path in a Unity Catalog volume, `/Volumes/<catalog>/<schema>/<volume>/...`, checked before any request:
/// no empty, `.` or `..` segment and no control character, so a name cannot reach outside the volume or forge a log
/// line. In a URL each segment is percent-encoded on its own (RFC 3986 unreserved characters stay as they are).
package struct VolumePath: Sendable, Hashable, CustomStringConvertible {
    /// The segments after `/Volumes`: catalog, schema, volume, then the path inside the volume.
    package let segments: [String]

    /// `text` checked; `insideVolume` also refuses the volume's root (a file must have a name inside it).
    package init(_ text: String, insideVolume: Bool = false) throws(FerryError) {
        func refuse(_ why: String) -> FerryError {
            FerryError(
                .invalidInput, "\"\(PrintableText.escaped(text))\" is not a volume path: \(why)",
                fix: "write an absolute path /Volumes/<catalog>/<schema>/<volume>/<file>")
        }
        guard text.hasPrefix("/Volumes/") else { throw refuse("it does not start with /Volumes/") }
        if let scalar = text.unicodeScalars.first(where: Self.isControl) {
            throw refuse("it holds the control character U+\(String(scalar.value, radix: 16, uppercase: true))")
        }
        let parts = text.dropFirst("/Volumes/".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.contains(where: \.isEmpty) { throw refuse("it has an empty segment (// or a trailing /)") }
        if parts.contains(where: { $0 == "." || $0 == ".." }) { throw refuse("it has a . or .. segment") }
        guard parts.count >= 3 else { throw refuse("it names no volume (catalog, schema and volume are needed)") }
        if insideVolume, parts.count == 3 { throw refuse("it is the volume itself, not a file in it") }
        segments = parts
    }

    /// `/Volumes/catalog/schema/volume/...` as given.
    package var description: String { "/Volumes/" + segments.joined(separator: "/") }

    /// The volume's own path, `/Volumes/catalog/schema/volume`.
    package var volume: String { "/Volumes/" + segments.prefix(3).joined(separator: "/") }

    /// The volume's three-part name in SQL, `catalog.schema.volume` (for the fix in an error).
    package var volumeName: String { segments.prefix(3).joined(separator: ".") }

    /// The path as it follows `/api/2.0/fs/files` in a URL.
    package var encoded: String { "/Volumes/" + segments.map(Self.percentEncoded).joined(separator: "/") }

    /// `segment` with every byte of its UTF-8 but the RFC 3986 unreserved characters written `%XX`.
    package static func percentEncoded(_ segment: String) -> String {
        var out = ""
        out.reserveCapacity(segment.utf8.count)
        let digits = Array("0123456789ABCDEF")
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}
