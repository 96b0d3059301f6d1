/// The PLAIN encoding of every physical type (Encodings.md): values back to back with no framing. BOOLEAN is
/// bit-packed LSB first; INT32, INT64, FLOAT and DOUBLE are little endian (IEEE 754 for the floating types); INT96 is
/// 12 bytes (8 of nanoseconds of the day, then 4 of Julian day), decoded only; BYTE_ARRAY is a 4-byte little-endian
/// length and then the bytes; FIXED_LEN_BYTE_ARRAY is the bytes alone.
///
/// Encoders append to an output buffer. Decoders read `count` values from the start of their input (trailing bytes
/// are left alone), check the count against the bytes available before allocating, and never trap on the input.
package enum PlainEncoding {
    // MARK: - Encoding fixed-width numbers

    /// Appends `values` as 4-byte little-endian integers.
    package static func encode(int32s values: UnsafeBufferPointer<Int32>, into out: inout [UInt8]) {
        appendLittleEndian(values, into: &out)
    }

    /// Appends `values` as 4-byte little-endian integers.
    package static func encode(int32s values: [Int32], into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { appendLittleEndian($0, into: &out) }
    }

    /// Appends `values` as 8-byte little-endian integers.
    package static func encode(int64s values: UnsafeBufferPointer<Int64>, into out: inout [UInt8]) {
        appendLittleEndian(values, into: &out)
    }

    /// Appends `values` as 8-byte little-endian integers.
    package static func encode(int64s values: [Int64], into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { appendLittleEndian($0, into: &out) }
    }

    /// Appends `values` as 4-byte little-endian IEEE 754 floats (bit patterns kept, NaN payloads included).
    package static func encode(floats values: UnsafeBufferPointer<Float>, into out: inout [UInt8]) {
        appendLittleEndian(values, into: &out)
    }

    /// Appends `values` as 4-byte little-endian IEEE 754 floats.
    package static func encode(floats values: [Float], into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { appendLittleEndian($0, into: &out) }
    }

    /// Appends `values` as 8-byte little-endian IEEE 754 doubles (bit patterns kept, NaN payloads included).
    package static func encode(doubles values: UnsafeBufferPointer<Double>, into out: inout [UInt8]) {
        appendLittleEndian(values, into: &out)
    }

    /// Appends `values` as 8-byte little-endian IEEE 754 doubles.
    package static func encode(doubles values: [Double], into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { appendLittleEndian($0, into: &out) }
    }

    /// The raw bytes of `values`, little endian.
    @inline(__always)
    static func appendLittleEndian<T: BitwiseCopyable>(_ values: UnsafeBufferPointer<T>, into out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: UnsafeRawBufferPointer(values))
        #if _endian(big)
            out.withUnsafeMutableBytes { swapEachValue(UnsafeMutableRawBufferPointer(rebasing: $0[start...]), size: MemoryLayout<T>.size) }
        #else
            _ = start
        #endif
    }

    /// Reverses the bytes of each `size`-byte value in `buffer` (big-endian hosts only).
    static func swapEachValue(_ buffer: UnsafeMutableRawBufferPointer, size: Int) {
        var offset = 0
        while offset + size <= buffer.count {
            var low = offset
            var high = offset + size - 1
            while low < high {
                buffer.swapAt(low, high)
                low += 1
                high -= 1
            }
            offset += size
        }
    }

    // MARK: - Encoding booleans, byte arrays, fixed-length byte arrays

    /// Appends `values` bit-packed, LSB first, the last byte padded with zeros. One call per page: a second call
    /// would start on a new byte.
    package static func encode(booleans values: UnsafeBufferPointer<Bool>, into out: inout [UInt8]) {
        let packed = [UInt8](unsafeUninitializedCapacity: (values.count + 7) / 8) { buffer, initialized in
            var byte: UInt8 = 0
            var written = 0
            for (i, value) in values.enumerated() {
                byte |= (value ? 1 : 0) << UInt8(i & 7)
                if i & 7 == 7 {
                    buffer[written] = byte
                    written += 1
                    byte = 0
                }
            }
            if values.count & 7 != 0 {
                buffer[written] = byte
                written += 1
            }
            initialized = written
        }
        out.append(contentsOf: packed)
    }

    /// Appends `values` bit-packed, LSB first.
    package static func encode(booleans values: [Bool], into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { encode(booleans: $0, into: &out) }
    }

    /// Appends byte arrays: value `i` is `bytes[offsets[i]..<offsets[i + 1]]` (so `offsets` holds one more entry
    /// than there are values, non-decreasing, within `bytes`; anything else is a programming error), each written
    /// as a 4-byte little-endian length and then its bytes.
    package static func encode(byteArrays bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int32>, into out: inout [UInt8]) {
        guard let first = offsets.first, let last = offsets.last, offsets.count > 1 else { return }
        precondition(first >= 0 && first <= last && Int(last) <= bytes.count, "PLAIN byte arrays: offsets \(first)…\(last) outside 0…\(bytes.count)")
        let count = offsets.count - 1
        let total = 4 * count + Int(last - first)
        let encoded = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let target = UnsafeMutableRawBufferPointer(buffer)
            var written = 0
            var start = Int(first)
            for i in 1...count {
                let end = Int(offsets[i])
                precondition(end >= start && end <= Int(last), "PLAIN byte arrays: offset \(end) of value \(i - 1) is out of order")
                let length = end - start
                target.storeBytes(of: UInt32(length).littleEndian, toByteOffset: written, as: UInt32.self)
                written += 4
                if length > 0, let source = bytes.baseAddress, let destination = target.baseAddress {
                    (destination + written).copyMemory(from: source + start, byteCount: length)
                }
                written += length
                start = end
            }
            initialized = written
        }
        if out.isEmpty { out = encoded } else { out.append(contentsOf: encoded) }
    }

    /// Appends byte arrays given as contiguous `bytes` and `offsets` (see the unsafe-buffer form).
    package static func encode(byteArrays bytes: [UInt8], offsets: [Int32], into out: inout [UInt8]) {
        bytes.withUnsafeBytes { raw in
            offsets.withUnsafeBufferPointer { encode(byteArrays: raw, offsets: $0, into: &out) }
        }
    }

    /// Appends fixed-length byte arrays: `bytes` holds the values back to back, `width` bytes each (`bytes.count` a
    /// multiple of `width`; anything else is a programming error).
    package static func encode(fixed bytes: UnsafeRawBufferPointer, width: Int, into out: inout [UInt8]) {
        precondition(
            width > 0 ? bytes.count % width == 0 : bytes.isEmpty, "PLAIN fixed-length byte arrays: \(bytes.count) bytes is not a multiple of \(width)"
        )
        out.append(contentsOf: bytes)
    }

    /// Appends fixed-length byte arrays of `width` bytes each, back to back.
    package static func encode(fixed bytes: [UInt8], width: Int, into out: inout [UInt8]) {
        bytes.withUnsafeBytes { encode(fixed: $0, width: width, into: &out) }
    }
}
