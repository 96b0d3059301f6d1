/// A fixed-width value a dictionary can hold, hashed and compared by its bit pattern: so for floating point, -0.0
/// and 0.0 are different entries, and NaNs are equal exactly when their bits are, as their PLAIN bytes would be.
package protocol DictionaryValue: BitwiseCopyable {
    /// The bits this value is stored as: its identity in a dictionary.
    associatedtype Bits: FixedWidthInteger & UnsignedInteger
    /// This value's bit pattern.
    var dictionaryBits: Bits { get }
}

extension Int32: DictionaryValue {
    package var dictionaryBits: UInt32 { UInt32(bitPattern: self) }
}

extension Int64: DictionaryValue {
    package var dictionaryBits: UInt64 { UInt64(bitPattern: self) }
}

extension Float: DictionaryValue {
    package var dictionaryBits: UInt32 { bitPattern }
}

extension Double: DictionaryValue {
    package var dictionaryBits: UInt64 { bitPattern }
}

/// The dictionary of a column chunk of INT32, INT64, FLOAT or DOUBLE values being written: the distinct values in the
/// order first seen, each value's index, and the dictionary page's PLAIN bytes. An open-addressing hash table (linear
/// probing, load at most 1/2) maps bit patterns to indices; indices never change once given.
package struct DictionaryBuilder<Value: DictionaryValue> {
    /// The distinct values, index `i` at position `i`.
    package private(set) var values: [Value] = []
    /// 0 for an empty slot, else an index into `values` plus one.
    private var slots: [UInt32]
    /// The shift that takes a 64-bit hash to a slot number (64 - log2 of the slot count).
    private var shift: UInt64

    /// An empty dictionary with room for about `expectedCount` values before it grows.
    package init(expectedCount: Int = 0) {
        var slotCount = 16
        while slotCount < 2 * expectedCount { slotCount *= 2 }
        slots = [UInt32](repeating: 0, count: slotCount)
        shift = UInt64(64 - slotCount.trailingZeroBitCount)
        values.reserveCapacity(expectedCount)
    }

    /// The number of distinct values.
    package var count: Int { values.count }

    /// The bytes of the dictionary page's values, PLAIN-encoded.
    package var plainEncodedSize: Int { values.count * MemoryLayout<Value>.size }

    /// `value`'s index, added as the next index when it is new.
    @specialized(where Value == Int32)
    @specialized(where Value == Int64)
    @specialized(where Value == Float)
    @specialized(where Value == Double)
    package mutating func index(of value: Value) -> UInt32 {
        let bits = value.dictionaryBits
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: (UInt64(truncatingIfNeeded: bits) &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while true {
            let entry = slots[slot]
            if entry == 0 { return insert(value, at: slot) }
            if values[Int(entry) - 1].dictionaryBits == bits { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// Appends the index of each of `newValues` to `indices`, adding new values to the dictionary.
    @specialized(where Value == Int32)
    @specialized(where Value == Int64)
    @specialized(where Value == Float)
    @specialized(where Value == Double)
    package mutating func appendIndices(of newValues: UnsafeBufferPointer<Value>, to indices: inout [UInt32]) {
        indices.reserveCapacity(indices.count + newValues.count)
        for value in newValues { indices.append(index(of: value)) }
    }

    /// Appends the index of each of `newValues` to `indices`, adding new values to the dictionary.
    package mutating func appendIndices(of newValues: [Value], to indices: inout [UInt32]) {
        newValues.withUnsafeBufferPointer { appendIndices(of: $0, to: &indices) }
    }

    /// Appends the dictionary page's values, PLAIN-encoded (`plainEncodedSize` bytes), to `out`.
    package func encodePlain(into out: inout [UInt8]) {
        values.withUnsafeBufferPointer { PlainEncoding.appendLittleEndian($0, into: &out) }
    }

    private mutating func insert(_ value: Value, at slot: Int) -> UInt32 {
        precondition(values.count < Int(UInt32.max - 1), "dictionary: more than 2^32 - 2 distinct values")
        values.append(value)
        let index = UInt32(values.count - 1)
        slots[slot] = index + 1
        if 2 * values.count > slots.count { grow() }
        return index
    }

    /// Doubles the table and puts every value back.
    private mutating func grow() {
        let slotCount = slots.count * 2
        let mask = slotCount - 1
        shift -= 1
        var newSlots = [UInt32](repeating: 0, count: slotCount)
        for (index, value) in values.enumerated() {
            var slot = Int(truncatingIfNeeded: (UInt64(truncatingIfNeeded: value.dictionaryBits) &* 0x9E37_79B9_7F4A_7C15) >> shift)
            while newSlots[slot] != 0 { slot = (slot + 1) & mask }
            newSlots[slot] = UInt32(index + 1)
        }
        slots = newSlots
    }
}
