import CCompression

/// Decompression of page bodies into exactly the size the page header states.
extension ParquetCompression {
    /// `input` decompressed with `codec` into exactly `uncompressedSize` bytes (0…1 GiB; the caller range-checks it
    /// against its own limits too). Empty input with a size of 0 is an empty page for every codec.
    package static func decompress(_ codec: ParquetCodec, _ input: UnsafeRawBufferPointer, uncompressedSize: Int) throws(ParquetError) -> [UInt8] {
        guard uncompressedSize >= 0, uncompressedSize <= maxUncompressedSize else {
            throw ParquetError("\(codec.name): the page's uncompressed size \(uncompressedSize) is out of range 0…\(maxUncompressedSize) (1 GiB)")
        }
        if input.isEmpty && uncompressedSize == 0 { return [] }
        switch codec {
        case .none:
            guard input.count == uncompressedSize else {
                throw ParquetError("uncompressed: the page holds \(input.count) bytes, its header says \(uncompressedSize)")
            }
            return Array(input)
        case .snappy: return try snappyDecompress(input, size: uncompressedSize)
        case .gzip: return try gzipDecompress(input, size: uncompressedSize)
        case .zstd: return try zstdDecompress(input, size: uncompressedSize)
        }
    }

    /// `input` decompressed with `codec` into exactly `uncompressedSize` bytes (see the unsafe-buffer form).
    package static func decompress(_ codec: ParquetCodec, _ input: ArraySlice<UInt8>, uncompressedSize: Int) throws(ParquetError) -> [UInt8] {
        try input.withUnsafeBufferPointer { (buffer) throws(ParquetError) in
            try decompress(codec, UnsafeRawBufferPointer(buffer), uncompressedSize: uncompressedSize)
        }
    }

    /// An array of exactly `size` bytes filled by `body`, which returns the bytes it produced (checked to be `size`)
    /// or throws.
    static func decompressed(
        size: Int, codec: ParquetCodec, _ body: (UnsafeMutableRawBufferPointer) throws(ParquetError) -> Int
    ) throws(ParquetError) -> [UInt8] {
        var failure: ParquetError?
        let output = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            do throws(ParquetError) {
                let produced = try body(UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[0..<size])))
                guard produced == size else {
                    throw ParquetError("\(codec.name): the page decompresses to \(produced) bytes, its header says \(size)")
                }
                initialized = size
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Throws when `compressed` bytes cannot hold `size` bytes at the codec's largest possible ratio.
    static func checkRatio(_ codec: ParquetCodec, compressed: Int, size: Int, maxRatio: Int) throws(ParquetError) {
        guard size / maxRatio <= compressed else {
            throw ParquetError(
                "\(codec.name): the page's \(compressed) compressed bytes cannot hold the \(size) bytes its header says (\(codec.name) expands at most \(maxRatio)×)"
            )
        }
    }

    // MARK: - Snappy

    private static func snappyDecompress(_ input: UnsafeRawBufferPointer, size: Int) throws(ParquetError) -> [UInt8] {
        guard let source = input.baseAddress?.assumingMemoryBound(to: CChar.self) else {
            throw ParquetError("snappy: the page has no compressed bytes for \(size) bytes of data")
        }
        var stated = 0
        guard snappy_uncompressed_length(source, input.count, &stated) == SNAPPY_OK else {
            throw ParquetError("snappy: the page's compressed bytes are corrupt (no valid length at their start)")
        }
        guard stated == size else { throw ParquetError("snappy: the page decompresses to \(stated) bytes, its header says \(size)") }
        // A snappy copy element makes at most 64 bytes out of 3: more than that ratio is corrupt, found before allocating.
        try checkRatio(.snappy, compressed: input.count, size: size, maxRatio: 32)
        return try decompressed(size: size, codec: .snappy) { (out) throws(ParquetError) in
            var length = out.count
            let status = withBase(UnsafeRawBufferPointer(out)) { base in
                snappy_uncompress(source, input.count, UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: CChar.self)), &length)
            }
            guard status == SNAPPY_OK else { throw ParquetError("snappy: the page's compressed bytes are corrupt") }
            return length
        }
    }

    // MARK: - Zstd

    private static func zstdDecompress(_ input: UnsafeRawBufferPointer, size: Int) throws(ParquetError) -> [UInt8] {
        let contentSize = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if contentSize == UInt64.max - 1 {  // ZSTD_CONTENTSIZE_ERROR
            throw ParquetError("zstd: the page's compressed bytes are corrupt (not a zstd frame)")
        }
        // One frame over the whole input that states its size: compare before allocating anything.
        if contentSize != UInt64.max, ZSTD_findFrameCompressedSize(input.baseAddress, input.count) == input.count, contentSize != UInt64(size) {
            throw ParquetError("zstd: the page decompresses to \(contentSize) bytes, its header says \(size)")
        }
        // Single-shot decompression writes straight into the output (no window buffer is allocated, however large the
        // frame's window) and works for frames without a content size too: it stops with an error on any frame
        // that would produce more than `size` bytes.
        return try decompressed(size: size, codec: .zstd) { (out) throws(ParquetError) in
            let produced = ZSTD_decompress(out.baseAddress, out.count, input.baseAddress, input.count)
            guard ZSTD_isError(produced) == 0 else {
                throw ParquetError(
                    "zstd: the page's compressed bytes are corrupt or decompress to more than the \(size) bytes its header says "
                        + "(\(String(cString: ZSTD_getErrorName(produced))))")
            }
            return produced
        }
    }

    // MARK: - Gzip

    private static func gzipDecompress(_ input: UnsafeRawBufferPointer, size: Int) throws(ParquetError) -> [UInt8] {
        guard input.count <= Int(UInt32.max) else { throw ParquetError("gzip: \(input.count) compressed bytes are more than 4 GiB") }
        // Deflate makes at most 1032 bytes out of one (258-byte matches of under 2 bits each).
        try checkRatio(.gzip, compressed: input.count, size: size, maxRatio: 1040)
        var stream = z_stream()
        // windowBits 15 + 32: a gzip or zlib header, detected.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ParquetError("gzip: inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        // One spare byte shows output beyond the stated size without a second buffer.
        var failure: ParquetError?
        var output = [UInt8](unsafeUninitializedCapacity: size + 1) { buffer, initialized in
            initialized = 0
            do throws(ParquetError) {
                let target = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[0...size]))
                initialized = try inflateMembers(&stream, input, into: target, size: size)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        guard output.count == size else { throw ParquetError("gzip: the page decompresses to \(output.count) bytes, its header says \(size)") }
        if output.capacity > size + 4096 { output = Array(output[...]) }
        return output
    }

    /// Inflates every gzip member of `input` (members written one after another are one stream to gzip readers)
    /// into `out`, which has one byte more than `size`; returns the bytes produced, at most `size`.
    private static func inflateMembers(
        _ stream: inout z_stream, _ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, size: Int
    ) throws(ParquetError) -> Int {
        guard let source = input.baseAddress, let target = out.baseAddress else {
            throw ParquetError("gzip: the page has no compressed bytes for \(size) bytes of data")
        }
        stream.next_in = UnsafeMutablePointer(mutating: source.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = target.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(out.count)
        while true {
            let status = inflate(&stream, Z_NO_FLUSH)
            let produced = out.count - Int(stream.avail_out)
            guard produced <= size else {
                throw ParquetError("gzip: the page decompresses to more than \(size) bytes, its header says \(size)")
            }
            switch status {
            case Z_STREAM_END:
                // The end of one member: another may follow.
                if stream.avail_in == 0 { return produced }
                guard inflateReset(&stream) == Z_OK else { throw ParquetError("gzip: inflateReset failed") }
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible: the input ended inside a member (the output has a spare byte left).
                throw ParquetError("gzip: the page's compressed bytes end early, after \(produced) of \(size) bytes")
            default:
                let detail = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                throw ParquetError("gzip: the page's compressed bytes are corrupt (\(detail))")
            }
        }
    }
}
