/// A decoder of RLE / bit-packing hybrid runs (no length prefix: the caller strips it) for a known number of values.
///
/// Safe against hostile input:
/// - a run's count is cut to the values still wanted: writers end pages with longer runs (parquet-cpp pads the last
///   bit-packed group to 8 values, DuckDB its last runs to 256 or more), and the extra values are ignored;
/// - only the bytes present are ever read, whatever a header claims; a bit-packed run cut short by the end of the
///   data yields the whole values its bytes hold (some writers cut the padding of the last group), and a value wanted
///   past them is an error, like any other running out of bytes;
/// - a run header is at most 5 bytes and 32 bits, and an RLE value must fit the bit width.
///
/// Decoding never allocates beyond the output the caller asks for; `valueCount` is the caller's to bound (an RLE run
/// of 2^31 values takes 6 bytes). After an error the decoder's state is unspecified: drop it.
package struct RLEHybridDecoder {
    private let bytes: ArraySlice<UInt8>
    /// The width of every value, 0…32.
    package let bitWidth: Int
    private let mask: UInt32
    /// The values `init` was told to expect.
    package let valueCount: Int
    /// Values not decoded yet.
    package private(set) var remaining: Int
    /// Offset (from the slice's start) of the next run header; the bytes of a bit-packed run are consumed with its
    /// header.
    private var position = 0
    private var repeatLeft = 0
    private var repeatValue: UInt32 = 0
    private var literalLeft = 0
    private var literalNext = 0
    private var literalEnd = 0
    private var accumulator: UInt64 = 0
    private var accumulatorBits = 0

    /// A decoder of `valueCount` values of `bitWidth` bits (0…32) from `bytes`.
    package init(_ bytes: ArraySlice<UInt8>, bitWidth: Int, valueCount: Int) throws(ParquetError) {
        guard (0...32).contains(bitWidth) else {
            throw ParquetError("RLE/bit-packed hybrid data: bit width \(bitWidth) is out of range 0…32")
        }
        guard valueCount >= 0 else { throw ParquetError("RLE/bit-packed hybrid data: negative value count \(valueCount)") }
        self.bytes = bytes
        self.bitWidth = bitWidth
        self.mask = RLEHybrid.mask(bitWidth: bitWidth)
        self.valueCount = valueCount
        self.remaining = valueCount
    }

    /// The bytes read so far: run headers, RLE values and whole bit-packed runs.
    package var bytesConsumed: Int { position }

    /// Decodes the next `count` values and appends them to `out` (on error, `out` is left as it was).
    package mutating func decode(count: Int, into out: inout [UInt32]) throws(ParquetError) {
        try checkWanted(count)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: count))
        do throws(ParquetError) {
            try out.withUnsafeMutableBufferPointer { (buffer) throws(ParquetError) in
                try decode(into: UnsafeMutableBufferPointer(rebasing: buffer[start...]))
            }
        } catch {
            out.removeLast(out.count - start)
            throw error
        }
    }

    /// The next `count` values.
    package mutating func decode(count: Int) throws(ParquetError) -> [UInt32] {
        try checkWanted(count)
        return try makeArray(count: count) { (buffer) throws(ParquetError) in try decode(into: buffer) }
    }

    /// Fills `out` with the next `out.count` values.
    package mutating func decode(into out: UnsafeMutableBufferPointer<UInt32>) throws(ParquetError) {
        try decodeValues(into: out)
    }

    /// Fills `out` with the next `out.count` values, which must fit a byte: `bitWidth` is at most 8 (for levels).
    package mutating func decode(into out: UnsafeMutableBufferPointer<UInt8>) throws(ParquetError) {
        guard bitWidth <= 8 else { throw ParquetError("RLE/bit-packed hybrid data: bit width \(bitWidth) is too wide for levels (at most 8)") }
        try decodeValues(into: out)
    }

    /// The next `count` values as bytes (`bitWidth` at most 8).
    package mutating func decodeBytes(count: Int) throws(ParquetError) -> [UInt8] {
        try checkWanted(count)
        return try makeArray(count: count) { (buffer) throws(ParquetError) in try decode(into: buffer) }
    }

    private func checkWanted(_ count: Int) throws(ParquetError) {
        guard count >= 0, count <= remaining else {
            throw ParquetError("RLE/bit-packed hybrid data: \(count) values asked for where \(remaining) of \(valueCount) remain")
        }
    }

    // MARK: - The loop

    private mutating func decodeValues<T: FixedWidthInteger & UnsignedInteger>(into out: UnsafeMutableBufferPointer<T>) throws(ParquetError) {
        try checkWanted(out.count)
        guard let base = out.baseAddress, !out.isEmpty else { return }
        let count = out.count
        let bytes = self.bytes  // a local copy (a retain), so the closure below may mutate self
        try bytes.withUnsafeBufferPointer { (input) throws(ParquetError) in
            var done = 0
            while done < count {
                if repeatLeft > 0 {
                    let k = min(repeatLeft, count - done)
                    (base + done).initialize(repeating: T(truncatingIfNeeded: repeatValue), count: k)
                    repeatLeft -= k
                    done += k
                } else if literalLeft > 0 {
                    let k = min(literalLeft, count - done)
                    unpack(k, from: input, to: base + done)
                    literalLeft -= k
                    done += k
                } else {
                    try readRun(input, wanted: remaining - done)
                }
            }
        }
        remaining -= count
    }

    /// Reads the next run header (and an RLE run's value, or skips past a bit-packed run's bytes).
    private mutating func readRun(_ input: UnsafeBufferPointer<UInt8>, wanted: Int) throws(ParquetError) {
        let headerOffset = position
        guard position < input.count else {
            throw ParquetError(
                "RLE/bit-packed hybrid data: the data ends (\(input.count) bytes) after \(valueCount - wanted) of \(valueCount) values")
        }
        let header = try readVarint(input)
        if header & 1 == 0 {
            // A run longer than the values still wanted is cut to them: writers (DuckDB) end pages with long runs.
            let runCount = min(Int(header >> 1), wanted)
            let valueBytes = (bitWidth + 7) / 8
            guard valueBytes <= input.count - position else {
                throw ParquetError("RLE/bit-packed hybrid data: the RLE run at byte \(headerOffset) is cut short (its value is missing)")
            }
            var value: UInt32 = 0
            for k in 0..<valueBytes { value |= UInt32(input[position + k]) << UInt32(8 * k) }
            position += valueBytes
            guard value & ~mask == 0 else {
                throw ParquetError(
                    "RLE/bit-packed hybrid data: the RLE run at byte \(headerOffset) repeats \(value), which needs more than the bit width \(bitWidth)"
                )
            }
            repeatValue = value
            repeatLeft = runCount
        } else {
            let groups = Int(header >> 1)
            // Only the groups holding values still wanted are read from a longer run (DuckDB pads its last run to 256
            // values); its bytes are skipped whole (as far as there are bytes).
            let runValues = min(groups, (wanted + 7) / 8) * 8
            let available = min(groups * bitWidth, input.count - position)
            literalNext = position
            literalEnd = position + available
            position = literalEnd
            literalLeft = bitWidth == 0 ? runValues : min(runValues, available * 8 / bitWidth)
            accumulator = 0
            accumulatorBits = 0
        }
    }

    /// A run header: ULEB128 of at most 5 bytes and 32 bits.
    private mutating func readVarint(_ input: UnsafeBufferPointer<UInt8>) throws(ParquetError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < input.count else {
                throw ParquetError("RLE/bit-packed hybrid data: the run header at byte \(start) is cut short")
            }
            let byte = input[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
            guard shift < 35 else { throw ParquetError("RLE/bit-packed hybrid data: the run header at byte \(start) is longer than 5 bytes") }
        }
        guard result <= UInt64(UInt32.max) else {
            throw ParquetError("RLE/bit-packed hybrid data: the run header at byte \(start) is wider than 32 bits")
        }
        return result
    }

    /// The next `count` values of the open bit-packed run (which holds at least `count` whole values in its bytes).
    @inline(__always)
    private mutating func unpack<T: FixedWidthInteger>(_ count: Int, from input: UnsafeBufferPointer<UInt8>, to out: UnsafeMutablePointer<T>) {
        guard bitWidth > 0 else {
            out.initialize(repeating: 0, count: count)
            return
        }
        guard let source = input.baseAddress else { return }
        let width = bitWidth
        let valueMask = UInt64(mask)
        let end = literalEnd
        var next = literalNext
        var bits = accumulatorBits
        var acc = accumulator
        for j in 0..<count {
            if bits < width {
                if end - next >= 4 {
                    let word = UnsafeRawPointer(source + next).loadUnaligned(as: UInt32.self)
                    acc |= UInt64(UInt32(littleEndian: word)) &<< UInt64(truncatingIfNeeded: bits)
                    next += 4
                    bits += 32
                } else {
                    while bits < width && next < end {
                        acc |= UInt64(source[next]) &<< UInt64(truncatingIfNeeded: bits)
                        next += 1
                        bits += 8
                    }
                }
            }
            (out + j).initialize(to: T(truncatingIfNeeded: acc & valueMask))
            acc &>>= UInt64(truncatingIfNeeded: width)
            bits -= width
        }
        literalNext = next
        accumulatorBits = bits
        accumulator = acc
    }
}

/// An array of `count` elements filled by `body`, without zero-filling first; `body` must initialize every element.
func makeArray<T: BitwiseCopyable>(
    count: Int, _ body: (UnsafeMutableBufferPointer<T>) throws(ParquetError) -> Void
) throws(ParquetError) -> [T] {
    var failure: ParquetError?
    let array = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        do throws(ParquetError) {
            try body(UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            initialized = count
        } catch {
            failure = error
            initialized = 0
        }
    }
    if let failure { throw failure }
    return array
}
