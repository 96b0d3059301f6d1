package import FerryCore
package import FerryRESP
import Foundation
import NIOCore

/// A key's name as Redis holds it: bytes, any bytes. Ferry syncs names that are valid UTF-8 without NUL bytes
/// (``text``); the others cannot be a PostgreSQL `text` value, and are reported with ``problem``, never
/// silently changed (decoding them leniently would name a different key).
package struct RedisName: Sendable, Hashable, CustomStringConvertible {
    package let bytes: [UInt8]

    package init(bytes: [UInt8]) { self.bytes = bytes }
    package init(_ text: String) { bytes = Array(text.utf8) }

    /// The name as text, when PostgreSQL can store it.
    package var text: String? {
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Why the name cannot be stored as text ("contains a NUL byte (at byte 3)"), or nil.
    package var problem: String? { PrintableText.textProblem(bytes) }

    /// The name, printable on one line: control characters and invalid bytes as escapes.
    package var description: String { PrintableText.escaped(bytes: bytes) }

    /// The raw bytes, base64 (lossless; for dead letters).
    package var base64: String { Data(bytes).base64EncodedString() }
}

extension RedisName: RESPTokenDecodable {
    package init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .bulkString(let buffer), .simpleString(let buffer): bytes = Array(buffer.readableBytesView)
        default: throw RESPDecodeError(expected: "a key name", found: token.identifier)
        }
    }
}

extension RedisName: RESPRenderable {
    package var respEntries: Int { 1 }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeBulkBytes(bytes) }
}
