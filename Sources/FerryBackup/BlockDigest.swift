import Crypto

/// A block's digest: the first 8 bytes of its SHA-256. Incrementals compare them to find the blocks that changed;
/// `verify` and restore check every block read back against them.
package enum BlockDigest {
    /// PostgreSQL's page size: a relation's pages are compared one by one.
    package static let blockSize = 8192

    package static func of(_ block: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = SHA256()
        hasher.update(bufferPointer: block)
        return hasher.finalize().withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    /// The digests of `bytes`' blocks, in order.
    package static func blocks(of bytes: UnsafeRawBufferPointer) -> [UInt64] {
        stride(from: 0, to: bytes.count, by: blockSize).map { start in
            of(UnsafeRawBufferPointer(rebasing: bytes[start..<min(bytes.count, start + blockSize)]))
        }
    }

    /// A file's checksum, hex: the SHA-256 of its block digests.
    package static func fileChecksum(_ digests: [UInt64]) -> String {
        var hasher = SHA256()
        for digest in digests { withUnsafeBytes(of: digest.littleEndian) { hasher.update(bufferPointer: $0) } }
        return WALArchive.hex(hasher.finalize())
    }
}
