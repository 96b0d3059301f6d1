import CZstd
package import FerryCore

/// How backup files and archived WAL are compressed. zstd is the default (pgBackRest's too, for its speed at a good
/// ratio); `none` stores the bytes as they are.
package enum BackupCompression: String, Sendable, CaseIterable {
    case none
    case zstd

    /// The number stored in a file's header.
    var code: UInt8 {
        switch self {
        case .none: 0
        case .zstd: 1
        }
    }

    init?(code: UInt8) {
        switch code {
        case 0: self = .none
        case 1: self = .zstd
        default: return nil
        }
    }

    /// `bytes` compressed (zstd at level 3, its default: about pgBackRest's speed).
    package func compress(_ bytes: [UInt8]) throws(FerryError) -> [UInt8] {
        switch self {
        case .none:
            return bytes
        case .zstd:
            let bound = ZSTD_compressBound(bytes.count)
            var output = [UInt8](repeating: 0, count: bound)
            let written = output.withUnsafeMutableBytes { out in
                bytes.withUnsafeBytes { input in
                    ZSTD_compress(out.baseAddress, out.count, input.baseAddress, input.count, 3)
                }
            }
            if ZSTD_isError(written) != 0 {
                throw FerryError(.server, "zstd could not compress \(bytes.count) bytes: \(String(cString: ZSTD_getErrorName(written)))")
            }
            output.removeLast(output.count - written)
            return output
        }
    }

    /// `bytes` decompressed to exactly `size` bytes (the size the file's header states, range-checked by the caller);
    /// anything else is an error that names `what`.
    package func decompress(_ bytes: ArraySlice<UInt8>, size: Int, what: String) throws(FerryError) -> [UInt8] {
        switch self {
        case .none:
            guard bytes.count == size else {
                throw FerryError(.invalidInput, "\(what) holds \(bytes.count) bytes where its header says \(size)", fix: Self.damagedFix)
            }
            return Array(bytes)
        case .zstd:
            var output = [UInt8](repeating: 0, count: size)
            let written = output.withUnsafeMutableBytes { out in
                bytes.withUnsafeBytes { input in
                    ZSTD_decompress(out.baseAddress, out.count, input.baseAddress, input.count)
                }
            }
            if ZSTD_isError(written) != 0 {
                throw FerryError(
                    .invalidInput, "\(what) does not decompress (zstd: \(String(cString: ZSTD_getErrorName(written))))", fix: Self.damagedFix)
            }
            guard written == size else {
                throw FerryError(.invalidInput, "\(what) decompresses to \(written) bytes where its header says \(size)", fix: Self.damagedFix)
            }
            return output
        }
    }

    static let damagedFix = "the file in the repository is damaged: restore it from a copy of the repository, or use another backup"
}
