import CCompression
package import FerryCore

/// How backup files and archived WAL are compressed: zstd (the default, pgBackRest's too: fast at a good ratio), lz4
/// (fastest, larger), gzip (everywhere readable, slowest), or none.
package enum BackupCompression: String, Sendable, CaseIterable {
    case zstd
    case lz4
    case gzip
    case none

    /// The number stored in a file's header.
    var code: UInt8 {
        switch self {
        case .none: 0
        case .zstd: 1
        case .lz4: 2
        case .gzip: 3
        }
    }

    init?(code: UInt8) {
        switch code {
        case 0: self = .none
        case 1: self = .zstd
        case 2: self = .lz4
        case 3: self = .gzip
        default: return nil
        }
    }

    /// `bytes` compressed (zstd at level 3 and gzip at 6, their defaults; lz4's default frame).
    package func compress(_ bytes: [UInt8]) throws(FerryError) -> [UInt8] {
        switch self {
        case .none:
            return bytes
        case .zstd:
            var output = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
            let written = output.withUnsafeMutableBytes { out in
                bytes.withUnsafeBytes { input in ZSTD_compress(out.baseAddress, out.count, input.baseAddress, input.count, 3) }
            }
            if ZSTD_isError(written) != 0 { throw failure("compress", String(cString: ZSTD_getErrorName(written))) }
            output.removeLast(output.count - written)
            return output
        case .lz4:
            var output = [UInt8](repeating: 0, count: LZ4F_compressFrameBound(bytes.count, nil))
            let written = output.withUnsafeMutableBytes { out in
                bytes.withUnsafeBytes { input in LZ4F_compressFrame(out.baseAddress, out.count, input.baseAddress, input.count, nil) }
            }
            if LZ4F_isError(written) != 0 { throw failure("compress", String(cString: LZ4F_getErrorName(written))) }
            output.removeLast(output.count - written)
            return output
        case .gzip:
            return try gzip(bytes)
        }
    }

    /// `bytes` decompressed to exactly `size` bytes (the size the file's header states, range-checked by the caller);
    /// anything else is an error that names `what`.
    package func decompress(_ bytes: ArraySlice<UInt8>, size: Int, what: String) throws(FerryError) -> [UInt8] {
        if self == .zstd {
            // Straight into uninitialized memory: no zero fill of what is about to be overwritten.
            var result = 0
            let output = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                result = bytes.withUnsafeBytes { input in ZSTD_decompress(buffer.baseAddress, size, input.baseAddress, input.count) }
                count = ZSTD_isError(result) != 0 ? 0 : min(result, size)
            }
            if ZSTD_isError(result) != 0 { throw Self.damaged(what, "does not decompress (zstd: \(String(cString: ZSTD_getErrorName(result))))") }
            guard result == size else { throw Self.damaged(what, "decompresses to \(result) bytes where its header says \(size)") }
            return output
        }
        var output = [UInt8](repeating: 0, count: size)
        let written: Int
        switch self {
        case .none:
            guard bytes.count == size else { throw Self.damaged(what, "holds \(bytes.count) bytes where its header says \(size)") }
            return Array(bytes)
        case .zstd:
            preconditionFailure("handled above")
        case .lz4:
            written = try Self.lz4Decompress(bytes, into: &output, what: what)
        case .gzip:
            written = try Self.gunzip(bytes, into: &output, what: what)
        }
        guard written == size else { throw Self.damaged(what, "decompresses to \(written) bytes where its header says \(size)") }
        return output
    }

    static let damagedFix = "the file in the repository is damaged: restore it from a copy of the repository, or use another backup"

    static func damaged(_ what: String, _ detail: String) -> FerryError {
        FerryError(.invalidInput, "\(what) \(detail)", fix: damagedFix)
    }

    private func failure(_ action: String, _ detail: String) -> FerryError {
        FerryError(.server, "\(rawValue) could not \(action) the data: \(detail)")
    }

    /// A gzip member (zlib's deflate with the gzip wrapper).
    private func gzip(_ bytes: [UInt8]) throws(FerryError) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw failure("compress", "deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 32)
        let status = Self.finish(&stream, from: bytes[...], into: &output, with: deflate)
        guard status == Z_STREAM_END else { throw failure("compress", "deflate returned \(status)") }
        output.removeLast(output.count - Int(stream.total_out))
        return output
    }

    /// One zlib call (`deflate` or `inflate`) with `Z_FINISH` over the whole input into `output`'s room.
    private static func finish(
        _ stream: inout z_stream, from bytes: ArraySlice<UInt8>, into output: inout [UInt8], with step: (z_streamp?, Int32) -> Int32
    ) -> Int32 {
        output.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { input -> Int32 in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(out.count)
                return step(&stream, Z_FINISH)
            }
        }
    }

    private static func gunzip(_ bytes: ArraySlice<UInt8>, into output: inout [UInt8], what: String) throws(FerryError) -> Int {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FerryError(.server, "gzip could not start decompressing \(what)")
        }
        defer { inflateEnd(&stream) }
        let status = finish(&stream, from: bytes, into: &output, with: inflate)
        // Z_STREAM_END: whole; anything else (Z_BUF_ERROR: more output than the header says, or input cut short;
        // Z_DATA_ERROR: damage) is a damaged file.
        guard status == Z_STREAM_END, stream.avail_in == 0 else { throw damaged(what, "does not decompress (gzip status \(status))") }
        return Int(stream.total_out)
    }

    private static func lz4Decompress(_ bytes: ArraySlice<UInt8>, into output: inout [UInt8], what: String) throws(FerryError) -> Int {
        var context: OpaquePointer?
        guard LZ4F_isError(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))) == 0, let context else {
            throw FerryError(.server, "lz4 could not start decompressing \(what)")
        }
        defer { LZ4F_freeDecompressionContext(context) }
        var produced = 0
        var consumed = 0
        while true {
            var outputSize = output.count - produced
            var inputSize = bytes.count - consumed
            let hint = output.withUnsafeMutableBytes { out in
                bytes.withUnsafeBytes { input in
                    LZ4F_decompress(
                        context, out.baseAddress.map { $0 + produced }, &outputSize, input.baseAddress.map { $0 + consumed }, &inputSize, nil)
                }
            }
            if LZ4F_isError(hint) != 0 { throw damaged(what, "does not decompress (lz4: \(String(cString: LZ4F_getErrorName(hint))))") }
            produced += outputSize
            consumed += inputSize
            if hint == 0 { break }  // the frame is complete
            // More is expected: with no input left or no room left, the file is cut short or larger than stated.
            if consumed == bytes.count || (outputSize == 0 && inputSize == 0) {
                throw damaged(what, "does not decompress (lz4: the frame is cut short or larger than its header says)")
            }
        }
        guard consumed == bytes.count else { throw damaged(what, "has bytes after its lz4 frame") }
        return produced
    }
}
