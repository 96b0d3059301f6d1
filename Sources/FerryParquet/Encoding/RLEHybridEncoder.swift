/// A streaming RLE / bit-packing hybrid encoder: values go in one at a time (or in bulk), `finish()` returns the runs
/// without any length prefix, exactly as `RLEHybrid.encode(_:bitWidth:)` would for the same values (parquet-cpp's
/// choice of runs). Values are buffered (4 bytes each) until `finish()`, which empties the encoder for the next page.
package struct RLEHybridEncoder {
    /// The width of every value, 0…32; values are cut to their low `bitWidth` bits.
    package let bitWidth: Int
    private var values: [UInt32] = []

    /// An encoder for values of `bitWidth` bits (0…32; anything else is a programming error).
    package init(bitWidth: Int) {
        precondition((0...32).contains(bitWidth), "RLE/bit-packed hybrid: bit width \(bitWidth) is out of range 0…32")
        self.bitWidth = bitWidth
    }

    /// The values appended since the last `finish()`.
    package var count: Int { values.count }

    /// Room for `count` more values without reallocating.
    package mutating func reserveCapacity(_ count: Int) {
        values.reserveCapacity(values.count + count)
    }

    /// Adds one value.
    @inline(__always)
    package mutating func append(_ value: UInt32) {
        values.append(value)
    }

    /// Adds `newValues`, in order.
    package mutating func append(contentsOf newValues: UnsafeBufferPointer<UInt32>) {
        values.append(contentsOf: newValues)
    }

    /// Adds `newValues`, in order.
    package mutating func append(contentsOf newValues: [UInt32]) {
        values.append(contentsOf: newValues)
    }

    /// The runs of every value appended since the last `finish()`; the encoder is empty afterwards.
    package mutating func finish() -> [UInt8] {
        let bytes = values.withUnsafeBufferPointer { RLEHybrid.encodeRuns($0, bitWidth: bitWidth) }
        values.removeAll(keepingCapacity: true)
        return bytes
    }

    /// Appends the runs of every value appended since the last `finish()` to `out`; the encoder is empty afterwards.
    package mutating func finish(into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { RLEHybrid.appendRuns($0, bitWidth: bitWidth, to: &out) }
        values.removeAll(keepingCapacity: true)
    }
}
