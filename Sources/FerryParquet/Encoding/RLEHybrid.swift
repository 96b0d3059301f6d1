/// The RLE / bit-packing hybrid encoding of Parquet (Encodings.md, "Run Length Encoding / Bit-Packing Hybrid"): the
/// encoding of definition and repetition levels, dictionary indices and RLE booleans.
///
/// The data is a sequence of runs, each starting with a ULEB128 header:
/// - `count << 1`: an RLE run, `count` copies of one value stored in `ceil(bitWidth / 8)` little-endian bytes;
/// - `groups << 1 | 1`: a bit-packed run, `8 × groups` values of `bitWidth` bits each, packed LSB first.
///
/// This enum holds the encoder's core (`encode`), the bit width helper and, in other files, the framings around the
/// runs (the 4-byte length prefix of v1 levels, the bit-width byte of dictionary indices). `RLEHybridEncoder` and
/// `RLEHybridDecoder` are the streaming forms.
package enum RLEHybrid {
    /// The most groups of 8 values in one bit-packed run the encoder writes: 63, so that the run's header is one
    /// byte (parquet-cpp's limit too).
    static let maxLiteralGroups = 63

    /// The longest RLE run the encoder writes: its header, `count << 1`, stays within the 32 bits readers expect.
    static let maxRepeatCount = Int(Int32.max)

    /// The bit width of values up to `maximum`: 0 for 0, else the position of its highest set bit plus one (1 → 1,
    /// 2 → 2, 3 → 2, 255 → 8).
    package static func bitWidth(forMaximum maximum: UInt32) -> Int {
        UInt32.bitWidth - maximum.leadingZeroBitCount
    }

    /// The mask of the low `bitWidth` bits (`bitWidth` in 0…32).
    @inline(__always)
    static func mask(bitWidth: Int) -> UInt32 {
        bitWidth == 0 ? 0 : UInt32.max >> UInt32(32 - bitWidth)
    }

    /// `values` as RLE / bit-packed runs of `bitWidth` bits (0…32), without any length prefix. Values are cut to
    /// their low `bitWidth` bits. Runs are chosen like parquet-cpp's encoder: 8 or more equal values starting at a
    /// group boundary make an RLE run, anything else goes into bit-packed groups of 8 (the last one padded with
    /// zeros), at most 63 groups per run.
    package static func encode(_ values: UnsafeBufferPointer<UInt32>, bitWidth: Int) -> [UInt8] {
        encodeRuns(values, bitWidth: bitWidth)
    }

    /// `values` as RLE / bit-packed runs of `bitWidth` bits (see `encode(_:bitWidth:)` for an unsafe buffer).
    package static func encode(_ values: [UInt32], bitWidth: Int) -> [UInt8] {
        values.withUnsafeBufferPointer { encodeRuns($0, bitWidth: bitWidth) }
    }

    /// `values` as RLE / bit-packed runs of `bitWidth` bits, appended to `out`.
    package static func encode(_ values: UnsafeBufferPointer<UInt32>, bitWidth: Int, into out: inout [UInt8]) {
        appendRuns(values, bitWidth: bitWidth, to: &out)
    }

    // MARK: - The encoder's core

    /// An upper bound on the bytes `writeRuns` writes for `count` values: a bit-packed group of 8 takes `bitWidth`
    /// bytes plus at most one header byte; an RLE run (at most 5 header bytes and 4 value bytes) covers at least one
    /// group's worth of values.
    static func maxEncodedSize(count: Int, bitWidth: Int) -> Int {
        (count + 7) / 8 * (max(bitWidth, 7) + 2) + 16
    }

    /// The runs of `values`, in an array of their exact size (no large spare capacity kept).
    static func encodeRuns<T: FixedWidthInteger & UnsignedInteger>(_ values: UnsafeBufferPointer<T>, bitWidth: Int) -> [UInt8] {
        let bound = maxEncodedSize(count: values.count, bitWidth: bitWidth)
        let scratch = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            initialized = writeRuns(values, bitWidth: bitWidth, to: buffer)
        }
        // A run-length encoded page of levels is often a few bytes out of a bound of megabytes: keep only those.
        return scratch.capacity - scratch.count > 4096 ? Array(scratch[...]) : scratch
    }

    /// The runs of `values` appended to `out`.
    static func appendRuns<T: FixedWidthInteger & UnsignedInteger>(_ values: UnsafeBufferPointer<T>, bitWidth: Int, to out: inout [UInt8]) {
        let bound = maxEncodedSize(count: values.count, bitWidth: bitWidth)
        let scratch = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            initialized = writeRuns(values, bitWidth: bitWidth, to: buffer)
        }
        out.append(contentsOf: scratch)
    }

    /// Writes the runs of `values` into `out` (room for `maxEncodedSize` bytes) and returns the bytes written.
    static func writeRuns<T: FixedWidthInteger & UnsignedInteger>(
        _ values: UnsafeBufferPointer<T>, bitWidth: Int, to buffer: UnsafeMutableBufferPointer<UInt8>
    ) -> Int {
        precondition((0...32).contains(bitWidth), "RLE/bit-packed hybrid: bit width \(bitWidth) is out of range 0…32")
        precondition(buffer.count >= maxEncodedSize(count: values.count, bitWidth: bitWidth), "RLE/bit-packed hybrid: output buffer too small")
        guard let v = values.baseAddress, let out = buffer.baseAddress, !values.isEmpty else { return 0 }
        let n = values.count
        let mask = mask(bitWidth: bitWidth)
        var written = 0
        var header = -1  // where the open bit-packed run's header byte goes, or -1 when none is open
        var groups = 0  // groups in the open bit-packed run
        var i = 0
        while i < n {
            let first = UInt32(truncatingIfNeeded: v[i]) & mask
            let left = n - i
            if left >= 8 && allEqual(v + i, count: 8, to: first, mask: mask) {
                var end = i + 8
                while end < n && UInt32(truncatingIfNeeded: v[end]) & mask == first { end += 1 }
                if header >= 0 {
                    out[header] = UInt8(truncatingIfNeeded: groups << 1 | 1)
                    header = -1
                    groups = 0
                }
                written += writeRepeated(count: end - i, value: first, bitWidth: bitWidth, to: out + written)
                i = end
            } else if left < 8 && header < 0 && allEqual(v + i, count: left, to: first, mask: mask) {
                // The tail, all equal, after an RLE run or a closed bit-packed run: parquet-cpp makes it an RLE run.
                written += writeRepeated(count: left, value: first, bitWidth: bitWidth, to: out + written)
                i = n
            } else {
                if header < 0 {
                    header = written
                    written += 1
                }
                packGroup(v + i, count: min(8, left), mask: mask, bitWidth: bitWidth, to: out + written)
                written += bitWidth
                groups += 1
                i += 8
                if groups == maxLiteralGroups {
                    out[header] = UInt8(truncatingIfNeeded: groups << 1 | 1)
                    header = -1
                    groups = 0
                }
            }
        }
        if header >= 0 { out[header] = UInt8(truncatingIfNeeded: groups << 1 | 1) }
        return written
    }

    /// Whether the `count` values at `p`, cut to `mask`, all equal `value`.
    @inline(__always)
    static func allEqual<T: FixedWidthInteger>(_ p: UnsafePointer<T>, count: Int, to value: UInt32, mask: UInt32) -> Bool {
        var difference: UInt32 = 0
        for k in 0..<count { difference |= UInt32(truncatingIfNeeded: p[k]) ^ value }
        return difference & mask == 0
    }

    /// RLE runs for `count` copies of `value` (split every `maxRepeatCount` values); returns the bytes written.
    @inline(__always)
    static func writeRepeated(count: Int, value: UInt32, bitWidth: Int, to out: UnsafeMutablePointer<UInt8>) -> Int {
        let valueBytes = (bitWidth + 7) / 8
        var left = count
        var written = 0
        while left > 0 {
            let run = min(left, maxRepeatCount)
            written += writeVarint(UInt64(run) << 1, to: out + written)
            for k in 0..<valueBytes { out[written + k] = UInt8(truncatingIfNeeded: value >> UInt32(8 * k)) }
            written += valueBytes
            left -= run
        }
        return written
    }

    /// `value` as ULEB128 at `out`; returns the bytes written (1…10).
    @inline(__always)
    static func writeVarint(_ value: UInt64, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var rest = value
        var written = 0
        while rest >= 0x80 {
            out[written] = UInt8(truncatingIfNeeded: rest) | 0x80
            rest >>= 7
            written += 1
        }
        out[written] = UInt8(truncatingIfNeeded: rest)
        return written + 1
    }

    /// One bit-packed group: the first `count` (≤ 8) values at `p`, then zeros up to 8, packed LSB first into exactly
    /// `bitWidth` bytes at `out`.
    @inline(__always)
    static func packGroup<T: FixedWidthInteger>(
        _ p: UnsafePointer<T>, count: Int, mask: UInt32, bitWidth: Int, to out: UnsafeMutablePointer<UInt8>
    ) {
        var accumulator: UInt64 = 0
        var bits: UInt64 = 0
        var offset = 0
        let width = UInt64(bitWidth)
        for k in 0..<8 {
            let value = k < count ? UInt32(truncatingIfNeeded: p[k]) & mask : 0
            accumulator |= UInt64(value) << bits
            bits += width
            if bits >= 32 {
                // Unaligned stores are fine for storeBytes; 8 × bitWidth bits are exactly bitWidth bytes, so the
                // 4-byte stores never pass the group's end.
                UnsafeMutableRawPointer(out + offset).storeBytes(of: UInt32(truncatingIfNeeded: accumulator).littleEndian, as: UInt32.self)
                offset += 4
                accumulator >>= 32
                bits -= 32
            }
        }
        while bits > 0 {
            out[offset] = UInt8(truncatingIfNeeded: accumulator)
            offset += 1
            accumulator >>= 8
            bits -= 8
        }
    }
}
