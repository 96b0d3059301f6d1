import CCompression

/// A page compression codec this library reads and writes (the Thrift `CompressionCodec` maps onto it).
package enum ParquetCodec: Sendable, CaseIterable {
    case none
    case snappy
    case gzip
    case zstd

    /// The codec's name in error messages.
    package var name: String {
        switch self {
        case .none: "uncompressed"
        case .snappy: "snappy"
        case .gzip: "gzip"
        case .zstd: "zstd"
        }
    }
}

/// Compression of page bodies: snappy (snappy-c), gzip (zlib, with the gzip wrapper; decompression reads
/// concatenated members), zstd (level 1 by default, like pyarrow). Decompression yields exactly the size the page
/// header states: output that is longer or shorter, or input that is corrupt, is an error naming the codec, and no
/// codec writes past the output or allocates more than the stated size (refused beyond `maxUncompressedSize`).
package enum ParquetCompression {
    /// The largest uncompressed page accepted: 1 GiB.
    package static let maxUncompressedSize = 1 << 30

    /// The largest input `compress` takes: 2 GiB - 1 (a page's size is a 32-bit number).
    package static let maxCompressInput = Int(Int32.max)

    // MARK: - Compress

    /// `input` compressed with `codec`. `level` applies to gzip (0…9, default 6) and zstd (its range, default 1);
    /// snappy and none ignore it.
    package static func compress(_ codec: ParquetCodec, _ input: UnsafeRawBufferPointer, level: Int? = nil) throws(ParquetError) -> [UInt8] {
        guard input.count <= maxCompressInput else {
            throw ParquetError("\(codec.name): \(input.count) bytes are too many to compress as one page (at most \(maxCompressInput))")
        }
        switch codec {
        case .none: return Array(input)
        case .snappy: return try snappyCompress(input)
        case .gzip: return try gzipCompress(input, level: level ?? 6)
        case .zstd: return try zstdCompress(input, level: level ?? 1)
        }
    }

    /// `input` compressed with `codec` (see the unsafe-buffer form).
    package static func compress(_ codec: ParquetCodec, _ input: [UInt8], level: Int? = nil) throws(ParquetError) -> [UInt8] {
        try input.withUnsafeBufferPointer { (buffer) throws(ParquetError) in try compress(codec, UnsafeRawBufferPointer(buffer), level: level) }
    }

    /// An array of at most `capacity` bytes filled by `body`, which returns the bytes written; much spare capacity
    /// (compressible data) is given back by copying into an array of the exact size.
    static func compressed(capacity: Int, _ body: (UnsafeMutableRawBufferPointer) throws(ParquetError) -> Int) throws(ParquetError) -> [UInt8] {
        var failure: ParquetError?
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            initialized = 0
            do throws(ParquetError) {
                initialized = try body(UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[0..<capacity])))
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return output.capacity - output.count > max(4096, output.count / 4) ? Array(output[...]) : output
    }

    private static func snappyCompress(_ input: UnsafeRawBufferPointer) throws(ParquetError) -> [UInt8] {
        let capacity = snappy_max_compressed_length(input.count)
        return try compressed(capacity: capacity) { (out) throws(ParquetError) in
            var length = out.count
            let status = withBase(input) { source in
                snappy_compress(
                    source.assumingMemoryBound(to: CChar.self), input.count, out.baseAddress?.assumingMemoryBound(to: CChar.self), &length)
            }
            guard status == SNAPPY_OK else { throw ParquetError("snappy: compressing \(input.count) bytes failed (status \(status.rawValue))") }
            return length
        }
    }

    private static func zstdCompress(_ input: UnsafeRawBufferPointer, level: Int) throws(ParquetError) -> [UInt8] {
        guard (Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel())).contains(level) else {
            throw ParquetError("zstd: compression level \(level) is out of range \(ZSTD_minCLevel())…\(ZSTD_maxCLevel())")
        }
        let capacity = ZSTD_compressBound(input.count)
        return try compressed(capacity: capacity) { (out) throws(ParquetError) in
            let written = ZSTD_compress(out.baseAddress, out.count, input.baseAddress, input.count, Int32(level))
            guard ZSTD_isError(written) == 0 else {
                throw ParquetError("zstd: compressing \(input.count) bytes failed (\(String(cString: ZSTD_getErrorName(written))))")
            }
            return written
        }
    }

    private static func gzipCompress(_ input: UnsafeRawBufferPointer, level: Int) throws(ParquetError) -> [UInt8] {
        guard (0...9).contains(level) else { throw ParquetError("gzip: compression level \(level) is out of range 0…9") }
        var stream = z_stream()
        // windowBits 15 + 16: a gzip header and trailer around the deflate data.
        guard
            deflateInit2_(&stream, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else {
            throw ParquetError("gzip: deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        let capacity = Int(deflateBound(&stream, uLong(input.count)))
        return try compressed(capacity: capacity) { (out) throws(ParquetError) in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(out.count)
            let status = deflate(&stream, Z_FINISH)
            guard status == Z_STREAM_END else { throw ParquetError("gzip: compressing \(input.count) bytes failed (deflate status \(status))") }
            return out.count - Int(stream.avail_out)
        }
    }

    /// `body` with a non-null pointer to `buffer`'s bytes (a dummy byte when it is empty: snappy wants non-null).
    static func withBase<R>(_ buffer: UnsafeRawBufferPointer, _ body: (UnsafeRawPointer) -> R) -> R {
        if let base = buffer.baseAddress { return body(base) }
        var byte: UInt8 = 0
        return withUnsafeMutablePointer(to: &byte) { body(UnsafeRawPointer($0)) }
    }
}
