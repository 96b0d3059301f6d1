/// The framings of RLE / bit-packed runs inside pages: levels (v1 with a 4-byte length prefix, v2 without), RLE
/// values with a length prefix (booleans in v2 pages), and dictionary indices (one bit-width byte, then the runs).
///
/// Levels are bytes (`UInt8`): a maximum level is at most 255 here, and decoded levels above the column's maximum
/// are an error. A maximum level of 0 means the page has no levels at all: encoders return nothing and decoders read
/// nothing and return zeros.
extension RLEHybrid {
    /// The most levels may be: levels are bytes.
    package static let maxLevelLimit = 255

    // MARK: - Levels

    /// `levels` (each at most `maxLevel`) as runs of `bitWidth(forMaximum: maxLevel)` bits, without a length prefix
    /// (data page v2); empty when `maxLevel` is 0.
    package static func encodeLevelsV2(_ levels: UnsafeBufferPointer<UInt8>, maxLevel: Int) -> [UInt8] {
        encodeLevels(levels, maxLevel: maxLevel, lengthPrefix: false)
    }

    /// `levels` as runs without a length prefix (data page v2); see the `UInt8` form.
    package static func encodeLevelsV2(_ levels: UnsafeBufferPointer<UInt32>, maxLevel: Int) -> [UInt8] {
        encodeLevels(levels, maxLevel: maxLevel, lengthPrefix: false)
    }

    /// `levels` as runs without a length prefix (data page v2); see the unsafe-buffer form.
    package static func encodeLevelsV2(_ levels: [UInt8], maxLevel: Int) -> [UInt8] {
        levels.withUnsafeBufferPointer { encodeLevels($0, maxLevel: maxLevel, lengthPrefix: false) }
    }

    /// `levels` as runs without a length prefix (data page v2); see the unsafe-buffer form.
    package static func encodeLevelsV2(_ levels: [UInt32], maxLevel: Int) -> [UInt8] {
        levels.withUnsafeBufferPointer { encodeLevels($0, maxLevel: maxLevel, lengthPrefix: false) }
    }

    /// `levels` (each at most `maxLevel`) as a 4-byte little-endian length and then the runs (data page v1); empty
    /// when `maxLevel` is 0.
    package static func encodeLevelsV1(_ levels: UnsafeBufferPointer<UInt8>, maxLevel: Int) -> [UInt8] {
        encodeLevels(levels, maxLevel: maxLevel, lengthPrefix: true)
    }

    /// `levels` with the 4-byte length prefix (data page v1); see the `UInt8` form.
    package static func encodeLevelsV1(_ levels: UnsafeBufferPointer<UInt32>, maxLevel: Int) -> [UInt8] {
        encodeLevels(levels, maxLevel: maxLevel, lengthPrefix: true)
    }

    /// `levels` with the 4-byte length prefix (data page v1); see the unsafe-buffer form.
    package static func encodeLevelsV1(_ levels: [UInt8], maxLevel: Int) -> [UInt8] {
        levels.withUnsafeBufferPointer { encodeLevels($0, maxLevel: maxLevel, lengthPrefix: true) }
    }

    /// `levels` with the 4-byte length prefix (data page v1); see the unsafe-buffer form.
    package static func encodeLevelsV1(_ levels: [UInt32], maxLevel: Int) -> [UInt8] {
        levels.withUnsafeBufferPointer { encodeLevels($0, maxLevel: maxLevel, lengthPrefix: true) }
    }

    static func encodeLevels<T: FixedWidthInteger & UnsignedInteger>(_ levels: UnsafeBufferPointer<T>, maxLevel: Int, lengthPrefix: Bool) -> [UInt8] {
        precondition((0...maxLevelLimit).contains(maxLevel), "RLE/bit-packed hybrid: maximum level \(maxLevel) is out of range 0…255")
        guard maxLevel > 0 else { return [] }
        let width = bitWidth(forMaximum: UInt32(maxLevel))
        return lengthPrefix ? encodeLengthPrefixed(levels, bitWidth: width) : encodeRuns(levels, bitWidth: width)
    }

    /// `count` levels from the start of `bytes`, which begin with the 4-byte length of their runs (data page v1), and
    /// the bytes consumed (4 + that length); zeros and 0 bytes when `maxLevel` is 0.
    package static func decodeLevelsV1(_ bytes: ArraySlice<UInt8>, count: Int, maxLevel: Int) throws(ParquetError) -> (levels: [UInt8], consumed: Int)
    {
        let width = try levelBitWidth(maxLevel: maxLevel, count: count)
        guard maxLevel > 0 else { return ([UInt8](repeating: 0, count: count), 0) }
        let runs = try lengthPrefixedRuns(bytes, what: "levels")
        let levels = try decodeLevelRuns(runs, count: count, bitWidth: width, maxLevel: maxLevel)
        return (levels, 4 + runs.count)
    }

    /// `count` levels from `bytes`, exactly the runs (data page v2, whose header states their length); zeros when
    /// `maxLevel` is 0.
    package static func decodeLevelsV2(_ bytes: ArraySlice<UInt8>, count: Int, maxLevel: Int) throws(ParquetError) -> [UInt8] {
        let width = try levelBitWidth(maxLevel: maxLevel, count: count)
        guard maxLevel > 0 else { return [UInt8](repeating: 0, count: count) }
        return try decodeLevelRuns(bytes, count: count, bitWidth: width, maxLevel: maxLevel)
    }

    private static func levelBitWidth(maxLevel: Int, count: Int) throws(ParquetError) -> Int {
        guard (0...maxLevelLimit).contains(maxLevel) else { throw ParquetError("levels: maximum level \(maxLevel) is out of range 0…255") }
        guard count >= 0 else { throw ParquetError("levels: negative level count \(count)") }
        return bitWidth(forMaximum: UInt32(maxLevel))
    }

    private static func decodeLevelRuns(_ runs: ArraySlice<UInt8>, count: Int, bitWidth: Int, maxLevel: Int) throws(ParquetError) -> [UInt8] {
        var decoder = try RLEHybridDecoder(runs, bitWidth: bitWidth, valueCount: count)
        let levels = try decoder.decodeBytes(count: count)
        let highest = levels.withUnsafeBufferPointer { buffer in
            var top: UInt8 = 0
            for level in buffer { top = max(top, level) }
            return top
        }
        if Int(highest) > maxLevel, let index = levels.firstIndex(where: { Int($0) > maxLevel }) {
            throw ParquetError("levels: level \(levels[index]) at value \(index) is above the column's maximum level \(maxLevel)")
        }
        return levels
    }

    // MARK: - Length-prefixed runs

    /// `values` as a 4-byte little-endian length and then their runs (the RLE encoding of booleans in v2 pages uses
    /// bit width 1).
    package static func encodeLengthPrefixed<T: FixedWidthInteger & UnsignedInteger>(_ values: UnsafeBufferPointer<T>, bitWidth: Int) -> [UInt8] {
        let bound = maxEncodedSize(count: values.count, bitWidth: bitWidth) + 4
        let scratch = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            let length = writeRuns(values, bitWidth: bitWidth, to: UnsafeMutableBufferPointer(rebasing: buffer[4...]))
            precondition(length <= Int(UInt32.max), "RLE/bit-packed hybrid: \(length) bytes of runs do not fit the 4-byte length")
            UnsafeMutableRawBufferPointer(buffer).storeBytes(of: UInt32(length).littleEndian, as: UInt32.self)
            initialized = 4 + length
        }
        return scratch.capacity - scratch.count > 4096 ? Array(scratch[...]) : scratch
    }

    /// `count` values of `bitWidth` bits from the start of `bytes`, which begin with the 4-byte length of their runs,
    /// and the bytes consumed (4 + that length).
    package static func decodeLengthPrefixed(
        _ bytes: ArraySlice<UInt8>, count: Int, bitWidth: Int
    ) throws(ParquetError) -> (values: [UInt32], consumed: Int) {
        let runs = try lengthPrefixedRuns(bytes, what: "RLE data")
        var decoder = try RLEHybridDecoder(runs, bitWidth: bitWidth, valueCount: count)
        return (try decoder.decode(count: count), 4 + runs.count)
    }

    /// The runs after a 4-byte little-endian length, checked against the bytes there are.
    private static func lengthPrefixedRuns(_ bytes: ArraySlice<UInt8>, what: String) throws(ParquetError) -> ArraySlice<UInt8> {
        guard bytes.count >= 4 else {
            throw ParquetError("\(what): the 4-byte length prefix is cut short (\(bytes.count) bytes)")
        }
        let start = bytes.startIndex
        var length = 0
        for k in 0..<4 { length |= Int(bytes[start + k]) << (8 * k) }
        guard length <= bytes.count - 4 else {
            throw ParquetError("\(what): the length prefix says \(length) bytes where \(bytes.count - 4) follow")
        }
        return bytes[(start + 4)..<(start + 4 + length)]
    }

    // MARK: - Dictionary indices

    /// Dictionary indices as a data page's values: one byte with `bitWidth` (0…32), then the runs.
    package static func encodeIndices(_ indices: UnsafeBufferPointer<UInt32>, bitWidth: Int) -> [UInt8] {
        precondition((0...32).contains(bitWidth), "RLE/bit-packed hybrid: bit width \(bitWidth) is out of range 0…32")
        let bound = maxEncodedSize(count: indices.count, bitWidth: bitWidth) + 1
        let scratch = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            buffer[0] = UInt8(bitWidth)
            initialized = 1 + writeRuns(indices, bitWidth: bitWidth, to: UnsafeMutableBufferPointer(rebasing: buffer[1...]))
        }
        return scratch.capacity - scratch.count > 4096 ? Array(scratch[...]) : scratch
    }

    /// Dictionary indices with their bit-width byte; see the unsafe-buffer form.
    package static func encodeIndices(_ indices: [UInt32], bitWidth: Int) -> [UInt8] {
        indices.withUnsafeBufferPointer { encodeIndices($0, bitWidth: bitWidth) }
    }

    /// `count` dictionary indices from a data page's values (a bit-width byte, then the runs), each checked to be
    /// below `dictionarySize`. No values (`count` 0) need no bytes at all.
    package static func decodeIndices(_ bytes: ArraySlice<UInt8>, count: Int, dictionarySize: Int) throws(ParquetError) -> [UInt32] {
        guard count > 0 else {
            guard count == 0 else { throw ParquetError("dictionary indices: negative value count \(count)") }
            return []
        }
        guard let widthByte = bytes.first else {
            throw ParquetError("dictionary indices: the page has no bytes for \(count) indices (not even the bit width)")
        }
        guard widthByte <= 32 else { throw ParquetError("dictionary indices: bit width \(widthByte) is out of range 0…32") }
        var decoder = try RLEHybridDecoder(bytes.dropFirst(), bitWidth: Int(widthByte), valueCount: count)
        let indices = try decoder.decode(count: count)
        try checkIndices(indices, dictionarySize: dictionarySize)
        return indices
    }

    /// Throws, naming the first one, if any index is not below `dictionarySize`.
    static func checkIndices(_ indices: [UInt32], dictionarySize: Int) throws(ParquetError) {
        let highest = indices.withUnsafeBufferPointer { buffer in
            var top: UInt32 = 0
            for index in buffer { top = max(top, index) }
            return top
        }
        guard !indices.isEmpty, Int(highest) >= dictionarySize else { return }
        let position = indices.firstIndex { Int($0) >= dictionarySize } ?? 0
        throw ParquetError(
            "dictionary indices: index \(indices[position]) at value \(position) is out of range: the dictionary holds \(dictionarySize) values")
    }
}
