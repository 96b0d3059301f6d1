/// PLAIN decoders: `count` values from the start of the input, checked against the bytes there are before anything is
/// allocated. Errors say which type and how many bytes were missing; the caller adds the column and page.
extension PlainEncoding {
    // MARK: - Fixed-width numbers

    /// `count` 4-byte little-endian integers.
    package static func decodeInt32s(_ bytes: ArraySlice<UInt8>, count: Int) throws(ParquetError) -> [Int32] {
        try decodeLittleEndian(bytes, count: count, type: "INT32")
    }

    /// `count` 8-byte little-endian integers.
    package static func decodeInt64s(_ bytes: ArraySlice<UInt8>, count: Int) throws(ParquetError) -> [Int64] {
        try decodeLittleEndian(bytes, count: count, type: "INT64")
    }

    /// `count` 4-byte little-endian IEEE 754 floats (bit patterns kept).
    package static func decodeFloats(_ bytes: ArraySlice<UInt8>, count: Int) throws(ParquetError) -> [Float] {
        try decodeLittleEndian(bytes, count: count, type: "FLOAT")
    }

    /// `count` 8-byte little-endian IEEE 754 doubles (bit patterns kept).
    package static func decodeDoubles(_ bytes: ArraySlice<UInt8>, count: Int) throws(ParquetError) -> [Double] {
        try decodeLittleEndian(bytes, count: count, type: "DOUBLE")
    }

    /// `count` values of `T`'s size, copied out of `bytes` (and byte-swapped on big-endian hosts).
    static func decodeLittleEndian<T: BitwiseCopyable>(_ bytes: ArraySlice<UInt8>, count: Int, type: String) throws(ParquetError) -> [T] {
        let size = MemoryLayout<T>.size
        try checkCount(count, of: size, bytes: bytes.count, type: type)
        return try makeArray(count: count) { (buffer) throws(ParquetError) in
            let target = UnsafeMutableRawBufferPointer(buffer)
            bytes.withUnsafeBytes { source in
                if let from = source.baseAddress, let to = target.baseAddress, count > 0 {
                    to.copyMemory(from: from, byteCount: count * size)
                }
            }
            #if _endian(big)
                swapEachValue(target, size: size)
            #endif
        }
    }

    /// Throws unless `count` values of `size` bytes fit in `available` bytes (checked without overflow).
    static func checkCount(_ count: Int, of size: Int, bytes available: Int, type: String) throws(ParquetError) {
        guard count >= 0 else { throw ParquetError("PLAIN \(type): negative value count \(count)") }
        guard count <= available / size else {
            throw ParquetError("PLAIN \(type): \(count) values of \(size) bytes do not fit in the \(available) bytes there are")
        }
    }

    // MARK: - INT96

    /// `count` INT96 values (legacy timestamps): 8 bytes of nanoseconds of the day, then 4 of Julian day, little endian.
    package static func decodeInt96(_ bytes: ArraySlice<UInt8>, count: Int) throws(ParquetError) -> [(nanosOfDay: Int64, julianDay: Int32)] {
        try checkCount(count, of: 12, bytes: bytes.count, type: "INT96")
        return bytes.withUnsafeBytes { source in
            [(nanosOfDay: Int64, julianDay: Int32)](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count {
                    let nanos = source.loadUnaligned(fromByteOffset: 12 * i, as: Int64.self)
                    let day = source.loadUnaligned(fromByteOffset: 12 * i + 8, as: Int32.self)
                    buffer.initializeElement(at: i, to: (Int64(littleEndian: nanos), Int32(littleEndian: day)))
                }
                initialized = count
            }
        }
    }

    // MARK: - Booleans

    /// `count` booleans bit-packed LSB first (`(count + 7) / 8` bytes).
    package static func decodeBooleans(_ bytes: ArraySlice<UInt8>, count: Int) throws(ParquetError) -> [Bool] {
        guard count >= 0 else { throw ParquetError("PLAIN BOOLEAN: negative value count \(count)") }
        guard count <= bytes.count * 8 else {
            throw ParquetError("PLAIN BOOLEAN: \(count) values need \(count / 8 + (count % 8 == 0 ? 0 : 1)) bytes where there are \(bytes.count)")
        }
        return bytes.withUnsafeBufferPointer { source in
            [Bool](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count {
                    buffer[i] = (source[i >> 3] >> UInt8(i & 7)) & 1 != 0
                }
                initialized = count
            }
        }
    }

    // MARK: - Byte arrays

    /// `count` byte arrays (each a 4-byte little-endian length, then its bytes) as contiguous bytes and `count + 1`
    /// offsets into them (value `i` is `bytes[offsets[i]..<offsets[i + 1]]`, `offsets[0]` is 0). Each length is
    /// checked against the bytes left, so the result is never larger than the input.
    package static func decodeByteArrays(_ bytes: ArraySlice<UInt8>, count: Int) throws(ParquetError) -> (bytes: [UInt8], offsets: [Int32]) {
        try checkCount(count, of: 4, bytes: bytes.count, type: "BYTE_ARRAY")
        guard bytes.count - 4 * count <= Int(Int32.max) else {
            throw ParquetError("PLAIN BYTE_ARRAY: \(bytes.count) bytes of values are more than 2 GiB")
        }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(ParquetError) in
            let source = UnsafeRawBufferPointer(buffer)
            var offsets = [Int32](repeating: 0, count: count + 1)
            var failure: ParquetError?
            // Every byte but the lengths could be value bytes: a bound the input justifies.
            let values = [UInt8](unsafeUninitializedCapacity: source.count - 4 * count) { buffer, initialized in
                initialized = 0
                do throws(ParquetError) {
                    initialized = try copyByteArrays(from: source, count: count, to: buffer, offsets: &offsets)
                } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
            return (values, offsets)
        }
    }

    /// The loop of `decodeByteArrays`: copies each value's bytes to `target`, records the offsets, returns the bytes
    /// copied.
    private static func copyByteArrays(
        from source: UnsafeRawBufferPointer, count: Int, to target: UnsafeMutableBufferPointer<UInt8>, offsets: inout [Int32]
    ) throws(ParquetError) -> Int {
        var position = 0
        var written = 0
        for i in 0..<count {
            guard source.count - position >= 4 else {
                throw ParquetError("PLAIN BYTE_ARRAY: value \(i) of \(count): its length is cut short at byte \(position)")
            }
            let length = Int(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
            position += 4
            guard length <= source.count - position else {
                throw ParquetError(
                    "PLAIN BYTE_ARRAY: value \(i) of \(count) at byte \(position - 4) is \(length) bytes long where \(source.count - position) are left"
                )
            }
            // The lengths of the values still to come take 4 bytes each, so written + length fits in `target`.
            guard length <= target.count - written else {
                throw ParquetError("PLAIN BYTE_ARRAY: value \(i) of \(count) at byte \(position - 4) runs past the lengths of the values after it")
            }
            if length > 0, let from = source.baseAddress, let to = target.baseAddress {
                UnsafeMutableRawPointer(to + written).copyMemory(from: from + position, byteCount: length)
            }
            position += length
            written += length
            offsets[i + 1] = Int32(written)
        }
        return written
    }

    // MARK: - Fixed-length byte arrays

    /// `count` values of `width` bytes each, back to back (a width of 0 gives no bytes).
    package static func decodeFixed(_ bytes: ArraySlice<UInt8>, count: Int, width: Int) throws(ParquetError) -> [UInt8] {
        guard width >= 0 else { throw ParquetError("PLAIN FIXED_LEN_BYTE_ARRAY: negative width \(width)") }
        guard width > 0 else {
            guard count >= 0 else { throw ParquetError("PLAIN FIXED_LEN_BYTE_ARRAY: negative value count \(count)") }
            return []
        }
        try checkCount(count, of: width, bytes: bytes.count, type: "FIXED_LEN_BYTE_ARRAY(\(width))")
        return Array(bytes.prefix(count * width))
    }
}
