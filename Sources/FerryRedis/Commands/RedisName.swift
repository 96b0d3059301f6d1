package import FerryCore
package import FerryRESP
import Foundation
package import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// A key's name as Redis holds it: bytes, any bytes. Ferry syncs names that are valid UTF-8 without NUL bytes
/// (``text``); the others cannot be a PostgreSQL `text` value, and are reported with ``problem``, never
/// silently changed (decoding them leniently would name a different key).
///
/// The bytes stay a slice of the reply they came in (no copy per key: a key scan reads millions).
package struct RedisName: Sendable, Hashable, CustomStringConvertible {
    package let buffer: ByteBuffer

    package init(buffer: ByteBuffer) { self.buffer = buffer }

    /// The name as text, when PostgreSQL can store it.
    package var text: String? {
        buffer.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress, !raw.isEmpty else { return "" }
            guard memchr(base, 0, raw.count) == nil else { return nil }
            return String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self)
        }
    }

    /// Why the name cannot be stored as text ("contains a NUL byte (at byte 3)"), or nil.
    package var problem: String? { PrintableText.textProblem(buffer.readableBytesView) }

    /// The name, printable on one line: control characters and invalid bytes as escapes.
    package var description: String { PrintableText.escaped(bytes: buffer.readableBytesView) }

    /// The raw bytes, base64 (lossless; for dead letters).
    package var base64: String { Data(buffer.readableBytesView).base64EncodedString() }

    // Hashed as one run of bytes, compared as memory.
    package func hash(into hasher: inout Hasher) {
        buffer.withUnsafeReadableBytes { hasher.combine(bytes: $0) }
    }

    package static func == (lhs: RedisName, rhs: RedisName) -> Bool { lhs.buffer == rhs.buffer }
}

extension RedisName: RESPTokenDecodable {
    package init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .bulkString(let buffer), .simpleString(let buffer): self.buffer = buffer
        default: throw RESPDecodeError(expected: "a key name", found: token.identifier)
        }
    }
}

extension RedisName: RESPRenderable {
    package var respEntries: Int { 1 }
    package func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeBulkBytes(buffer) }
}
