/// The dictionary of a column chunk of BYTE_ARRAY (or FIXED_LEN_BYTE_ARRAY) values being written: the distinct values
/// stored back to back in one buffer in the order first seen, each value's index, and the dictionary page's PLAIN
/// bytes. An open-addressing hash table (linear probing, load at most 1/2) keyed by (hash, offset, length) into the
/// buffer finds values without allocating per value; indices never change once given.
///
/// The hash is seeded per builder, so crafted inputs cannot choose colliding values in advance. Storage is limited to
/// 2 GiB (32-bit offsets, like PLAIN byte arrays); a writer keeps a dictionary far below that (1 MiB by default).
package struct ByteArrayDictionaryBuilder {
    /// The distinct values back to back: value `i` is `storage[offsets[i]..<offsets[i + 1]]`.
    package private(set) var storage: [UInt8] = []
    /// `count + 1` offsets into `storage`, the first 0.
    package private(set) var offsets: [Int32] = [0]
    /// Each value's hash, to compare hashes before bytes and to grow without hashing again.
    private var hashes: [UInt64] = []
    /// 0 for an empty slot, else an index into `offsets` plus one.
    private var slots: [UInt32]
    private var shift: UInt64
    private let seed: UInt64

    /// An empty dictionary with room for about `expectedCount` values before its table grows.
    package init(expectedCount: Int = 0) {
        var slotCount = 16
        while slotCount < 2 * expectedCount { slotCount *= 2 }
        slots = [UInt32](repeating: 0, count: slotCount)
        shift = UInt64(64 - slotCount.trailingZeroBitCount)
        seed = UInt64.random(in: 0...UInt64.max)
        offsets.reserveCapacity(expectedCount + 1)
        hashes.reserveCapacity(expectedCount)
    }

    /// The number of distinct values.
    package var count: Int { hashes.count }

    /// The bytes of the dictionary page's values, PLAIN-encoded: a 4-byte length and the bytes of each.
    package var plainEncodedSize: Int { 4 * hashes.count + storage.count }

    /// The value at `index`.
    package func value(at index: Int) -> ArraySlice<UInt8> {
        storage[Int(offsets[index])..<Int(offsets[index + 1])]
    }

    /// `value`'s index, added as the next index when it is new.
    package mutating func index(of value: UnsafeRawBufferPointer) -> UInt32 {
        let hash = Self.hash(value, seed: seed)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash >> shift)
        while true {
            let entry = slots[slot]
            if entry == 0 { return insert(value, hash: hash, at: slot) }
            let index = Int(entry) - 1
            if hashes[index] == hash && equals(index, value) { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// `value`'s index, added as the next index when it is new.
    package mutating func index(of value: [UInt8]) -> UInt32 {
        value.withUnsafeBytes { index(of: $0) }
    }

    /// Appends the index of each value to `indices`, adding new values to the dictionary: value `i` is
    /// `bytes[offsets[i]..<offsets[i + 1]]` (offsets non-decreasing within `bytes`; anything else is a programming
    /// error).
    package mutating func appendIndices(bytes: UnsafeRawBufferPointer, offsets valueOffsets: UnsafeBufferPointer<Int32>, to indices: inout [UInt32]) {
        guard valueOffsets.count > 1 else { return }
        indices.reserveCapacity(indices.count + valueOffsets.count - 1)
        var start = Int(valueOffsets[0])
        for i in 1..<valueOffsets.count {
            let end = Int(valueOffsets[i])
            precondition(start >= 0 && start <= end && end <= bytes.count, "dictionary: byte array offsets \(start)…\(end) outside 0…\(bytes.count)")
            indices.append(index(of: UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
            start = end
        }
    }

    /// Appends the index of each value given as contiguous `bytes` and `offsets` (see the unsafe-buffer form).
    package mutating func appendIndices(bytes: [UInt8], offsets valueOffsets: [Int32], to indices: inout [UInt32]) {
        bytes.withUnsafeBytes { raw in
            valueOffsets.withUnsafeBufferPointer { appendIndices(bytes: raw, offsets: $0, to: &indices) }
        }
    }

    /// Appends the dictionary page's values, PLAIN-encoded as BYTE_ARRAY (`plainEncodedSize` bytes), to `out`.
    package func encodePlain(into out: inout [UInt8]) {
        storage.withUnsafeBytes { raw in
            offsets.withUnsafeBufferPointer { PlainEncoding.encode(byteArrays: raw, offsets: $0, into: &out) }
        }
    }

    /// Appends the dictionary page's values as FIXED_LEN_BYTE_ARRAY: the bytes alone (every value must be the
    /// column's width).
    package func encodePlainFixed(into out: inout [UInt8]) {
        out.append(contentsOf: storage)
    }

    // MARK: - The table

    private func equals(_ index: Int, _ value: UnsafeRawBufferPointer) -> Bool {
        let start = Int(offsets[index])
        let length = Int(offsets[index + 1]) - start
        guard length == value.count else { return false }
        return storage.withUnsafeBytes { stored in
            Self.bytesEqual(UnsafeRawBufferPointer(rebasing: stored[start..<(start + length)]), value)
        }
    }

    private mutating func insert(_ value: UnsafeRawBufferPointer, hash: UInt64, at slot: Int) -> UInt32 {
        precondition(storage.count + value.count <= Int(Int32.max), "dictionary: more than 2 GiB of distinct byte arrays")
        precondition(hashes.count < Int(UInt32.max - 1), "dictionary: more than 2^32 - 2 distinct values")
        storage.append(contentsOf: value)
        offsets.append(Int32(storage.count))
        hashes.append(hash)
        let index = UInt32(hashes.count - 1)
        slots[slot] = index + 1
        if 2 * hashes.count > slots.count { grow() }
        return index
    }

    /// Doubles the table and puts every value back (by its stored hash).
    private mutating func grow() {
        let slotCount = slots.count * 2
        let mask = slotCount - 1
        shift -= 1
        var newSlots = [UInt32](repeating: 0, count: slotCount)
        for (index, hash) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: hash >> shift)
            while newSlots[slot] != 0 { slot = (slot + 1) & mask }
            newSlots[slot] = UInt32(index + 1)
        }
        slots = newSlots
    }

    // MARK: - Hashing and comparing bytes

    /// A 64-bit hash of `bytes` (8 bytes a step, murmur-style mixing), well spread in its high bits.
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        let count = bytes.count
        var i = 0
        while count - i >= 8 {
            h = mixStep(h, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < count {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = mixStep(h, tail)
        }
        // murmur3's finalizer: every input bit reaches the high bits the table uses.
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }

    @inline(__always)
    private static func mixStep(_ h: UInt64, _ word: UInt64) -> UInt64 {
        var k = word &* 0x87C3_7B91_1142_53D5
        k = (k << 31) | (k >> 33)
        k = k &* 0x4CF5_AD43_2745_937F
        let mixed = h ^ k
        return ((mixed << 27) | (mixed >> 37)) &* 5 &+ 0x52DC_E729
    }

    /// Whether `a` and `b` (of equal length) hold the same bytes, compared 8 at a time.
    static func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let count = a.count
        guard count == b.count else { return false }
        var i = 0
        while count - i >= 8 {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < count {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }
}
