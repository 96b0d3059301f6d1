import Testing

@testable import FerryParquet

/// A small deterministic random generator (SplitMix64), so failures reproduce.
struct EncodingTestRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The RLE / bit-packing hybrid encoding: the spec's byte vectors, round trips for every bit width, the choice of
/// runs, and hostile input (truncations, huge run headers, bad bit widths, indices past the dictionary).
@Suite struct RLEHybridTests {
    static let lengths = [0, 1, 7, 8, 9, 63, 64, 65, 1000]

    /// `count` values of `bitWidth` bits: random, or runs of random lengths (some shorter than 8), or a mix.
    static func values(count: Int, bitWidth: Int, style: Int, seed: UInt64) -> [UInt32] {
        var random = EncodingTestRandom(seed: seed &+ UInt64(bitWidth) &* 1000 &+ UInt64(count))
        let mask = bitWidth == 0 ? 0 : UInt32.max >> UInt32(32 - bitWidth)
        var values: [UInt32] = []
        while values.count < count {
            let value = UInt32(truncatingIfNeeded: random.next()) & mask
            let run: Int
            switch style {
            case 0: run = 1
            case 1: run = Int.random(in: 1...40, using: &random)
            default: run = Bool.random(using: &random) ? 1 : Int.random(in: 1...20, using: &random)
            }
            values.append(contentsOf: repeatElement(value, count: min(run, count - values.count)))
        }
        return values
    }

    /// A plain reading of runs, bit by bit, written from the spec independently of `RLEHybridDecoder`.
    static func referenceDecode(_ bytes: [UInt8], bitWidth: Int, count: Int) -> [UInt32]? {
        var values: [UInt32] = []
        var position = 0
        while values.count < count {
            var header: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < bytes.count else { return nil }
                header |= UInt64(bytes[position] & 0x7F) << shift
                position += 1
                if bytes[position - 1] < 0x80 { break }
                shift += 7
            }
            if header & 1 == 0 {
                var value: UInt32 = 0
                for k in 0..<((bitWidth + 7) / 8) {
                    guard position < bytes.count else { return nil }
                    value |= UInt32(bytes[position]) << UInt32(8 * k)
                    position += 1
                }
                values.append(contentsOf: repeatElement(value, count: Int(header >> 1)))
            } else {
                let total = Int(header >> 1) * 8
                for i in 0..<total {
                    var value: UInt32 = 0
                    for bit in 0..<bitWidth {
                        let at = i * bitWidth + bit
                        guard position + at / 8 < bytes.count else { return nil }
                        if bytes[position + at / 8] >> UInt8(at % 8) & 1 == 1 { value |= 1 << UInt32(bit) }
                    }
                    values.append(value)
                }
                position += Int(header >> 1) * bitWidth
            }
        }
        return Array(values.prefix(count))
    }

    static func decode(_ bytes: [UInt8], bitWidth: Int, count: Int) throws(ParquetError) -> [UInt32] {
        var decoder = try RLEHybridDecoder(bytes[...], bitWidth: bitWidth, valueCount: count)
        return try decoder.decode(count: count)
    }

    @Test func bitWidthForMaximum() {
        #expect(RLEHybrid.bitWidth(forMaximum: 0) == 0)
        #expect(RLEHybrid.bitWidth(forMaximum: 1) == 1)
        #expect(RLEHybrid.bitWidth(forMaximum: 2) == 2)
        #expect(RLEHybrid.bitWidth(forMaximum: 3) == 2)
        #expect(RLEHybrid.bitWidth(forMaximum: 4) == 3)
        #expect(RLEHybrid.bitWidth(forMaximum: 255) == 8)
        #expect(RLEHybrid.bitWidth(forMaximum: 256) == 9)
        #expect(RLEHybrid.bitWidth(forMaximum: UInt32.max) == 32)
    }

    /// Encodings.md: 0…7 bit-packed with bit width 3 are the bytes 0x88 0xC6 0xFA (after the header 1 << 1 | 1).
    @Test func specVectors() throws {
        #expect(RLEHybrid.encode([0, 1, 2, 3, 4, 5, 6, 7], bitWidth: 3) == [0x03, 0x88, 0xC6, 0xFA])
        #expect(try Self.decode([0x03, 0x88, 0xC6, 0xFA], bitWidth: 3, count: 8) == [0, 1, 2, 3, 4, 5, 6, 7])
        // An RLE run: header 8 << 1, then the value in one byte.
        #expect(RLEHybrid.encode(Array(repeating: 5, count: 8), bitWidth: 3) == [0x10, 0x05])
        // Values of 9…16 bits take two bytes in an RLE run, of 17…24 three, 25…32 four.
        #expect(RLEHybrid.encode(Array(repeating: 0x1234, count: 10), bitWidth: 13) == [0x14, 0x34, 0x12])
        #expect(RLEHybrid.encode(Array(repeating: 0x0012_3456, count: 8), bitWidth: 21) == [0x10, 0x56, 0x34, 0x12])
        #expect(RLEHybrid.encode(Array(repeating: 0xDEAD_BEEF, count: 8), bitWidth: 32) == [0x10, 0xEF, 0xBE, 0xAD, 0xDE])
        // Bit width 0: one RLE run with no value bytes.
        #expect(RLEHybrid.encode(Array(repeating: 0, count: 300), bitWidth: 0) == [0xD8, 0x04])
        #expect(try Self.decode([0xD8, 0x04], bitWidth: 0, count: 300) == Array(repeating: 0, count: 300))
        // Fewer than 8 mixed values: one group padded with zeros.
        #expect(RLEHybrid.encode([1, 2, 3], bitWidth: 2) == [0x03, 0x39, 0x00])
        // Fewer than 8 equal values with nothing before them: an RLE run (like parquet-cpp).
        #expect(RLEHybrid.encode([1, 1, 1], bitWidth: 1) == [0x06, 0x01])
        #expect(RLEHybrid.encode([], bitWidth: 5) == [])
    }

    /// The runs chosen are parquet-cpp's: 8 equal values from a group boundary make an RLE run, the rest are groups.
    @Test func runChoice() throws {
        // 3 literals then 9 × 7: the first group (1 2 3 7 7 7 7 7) is packed, the 4 sevens after it too (padded).
        let values: [UInt32] = [1, 2, 3] + Array(repeating: 7, count: 9)
        let bytes = RLEHybrid.encode(values, bitWidth: 3)
        #expect(bytes.first == 0x05)  // 2 groups
        #expect(bytes.count == 1 + 2 * 3)
        // 8 literals then 20 × 7: one group, then an RLE run of 20.
        let second: [UInt32] = [0, 1, 2, 3, 4, 5, 6, 7] + Array(repeating: 7, count: 20)
        #expect(RLEHybrid.encode(second, bitWidth: 3) == [0x03, 0x88, 0xC6, 0xFA, 40, 7])
        // 63 groups fill a bit-packed run; the 64th starts another.
        let long = (0..<(64 * 8)).map { UInt32($0 % 2) }
        let encoded = RLEHybrid.encode(long, bitWidth: 1)
        #expect(encoded.count == 1 + 63 + 1 + 1)
        #expect(encoded[0] == 63 << 1 | 1)
        #expect(encoded[64] == 1 << 1 | 1)
        #expect(try Self.decode(encoded, bitWidth: 1, count: long.count) == long)
    }

    @Test(arguments: 0...32) func roundTrips(bitWidth: Int) throws {
        for count in Self.lengths {
            for style in 0..<3 {
                let values = Self.values(count: count, bitWidth: bitWidth, style: style, seed: 7)
                let bytes = RLEHybrid.encode(values, bitWidth: bitWidth)
                #expect(bytes.count <= RLEHybrid.maxEncodedSize(count: count, bitWidth: bitWidth))
                #expect(try Self.decode(bytes, bitWidth: bitWidth, count: count) == values, "width \(bitWidth) count \(count) style \(style)")
                #expect(Self.referenceDecode(bytes, bitWidth: bitWidth, count: count) == values, "width \(bitWidth) count \(count) style \(style)")
                var encoder = RLEHybridEncoder(bitWidth: bitWidth)
                for value in values { encoder.append(value) }
                #expect(encoder.finish() == bytes)
                #expect(encoder.count == 0)
            }
        }
    }

    /// Decoding in pieces of odd sizes (across runs and inside bit-packed groups) gives the same values.
    @Test(arguments: [1, 3, 8, 13, 17, 32]) func decodeInPieces(bitWidth: Int) throws {
        let values = Self.values(count: 5000, bitWidth: bitWidth, style: 2, seed: 11)
        let bytes = RLEHybrid.encode(values, bitWidth: bitWidth)
        var decoder = try RLEHybridDecoder(bytes[...], bitWidth: bitWidth, valueCount: values.count)
        var random = EncodingTestRandom(seed: 3)
        var decoded: [UInt32] = []
        while decoder.remaining > 0 {
            let piece = min(decoder.remaining, Int.random(in: 0...37, using: &random))
            try decoder.decode(count: piece, into: &decoded)
        }
        #expect(decoded == values)
        #expect(decoder.bytesConsumed == bytes.count)
        #expect(throws: ParquetError.self) { try decoder.decode(count: 1, into: &decoded) }
    }

    /// Values wider than the bit width are cut to it by the encoder.
    @Test func encoderMasksValues() throws {
        let bytes = RLEHybrid.encode([0xFF, 0x01, 0xFE, 0x03, 0, 0, 0, 0], bitWidth: 2)
        #expect(try Self.decode(bytes, bitWidth: 2, count: 8) == [3, 1, 2, 3, 0, 0, 0, 0])
    }

    /// Every prefix of a valid encoding either throws or, when only padding bytes of the last group were cut, gives
    /// exactly the original values: never wrong values, never a trap.
    @Test(arguments: [1, 2, 3, 7, 8, 12, 20, 32]) func truncations(bitWidth: Int) {
        for count in [1, 9, 100] {
            for style in 0..<3 {
                let values = Self.values(count: count, bitWidth: bitWidth, style: style, seed: 5)
                let bytes = RLEHybrid.encode(values, bitWidth: bitWidth)
                let paddingBytes = 7 * bitWidth / 8
                for length in 0..<bytes.count {
                    let result = Result { () throws(ParquetError) in try Self.decode(Array(bytes.prefix(length)), bitWidth: bitWidth, count: count) }
                    switch result {
                    case .success(let decoded):
                        #expect(decoded == values)
                        #expect(length >= bytes.count - paddingBytes, "width \(bitWidth) count \(count): \(length) of \(bytes.count) bytes decoded")
                    case .failure: break
                    }
                }
            }
        }
    }

    @Test func hostileHeaders() throws {
        // An RLE run of 2^31 - 1 values where 10 are wanted: cut to the 10 (writers end pages with long runs).
        let huge: [UInt8] = [0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]
        #expect(try Self.decode(huge, bitWidth: 1, count: 10) == Array(repeating: 1, count: 10))
        // A header claiming 2^31 values: 2^32, wider than 32 bits.
        #expect(throws: ParquetError.self) { try Self.decode([0x80, 0x80, 0x80, 0x80, 0x10, 0x01], bitWidth: 1, count: 10) }
        // A header of 6 bytes.
        #expect(throws: ParquetError.self) { try Self.decode([0x80, 0x80, 0x80, 0x80, 0x80, 0x00], bitWidth: 1, count: 10) }
        // A bit-packed run of 2^30 - 1 groups with no bytes behind it.
        #expect(throws: ParquetError.self) { try Self.decode([0xFF, 0xFF, 0xFF, 0xFF, 0x07], bitWidth: 1, count: 10) }
        // Bit-packed runs longer than the values wanted: the rest is padding (DuckDB pads to 256 values)…
        #expect(try Self.decode([0x03, 0x07], bitWidth: 1, count: 3) == [1, 1, 1])
        #expect(try Self.decode([0x05, 0xFF, 0xFF], bitWidth: 1, count: 8) == Array(repeating: 1, count: 8))
        #expect(try Self.decode([0x41, 0xFF, 0x00, 0x00, 0x00], bitWidth: 1, count: 9) == Array(repeating: 1, count: 8) + [0])
        // …but the values wanted must be in the bytes there are.
        #expect(throws: ParquetError.self) { try Self.decode([0x41, 0xFF], bitWidth: 1, count: 9) }
        // An RLE value wider than the bit width.
        #expect(throws: ParquetError.self) { try Self.decode([0x10, 0x04], bitWidth: 2, count: 8) }
        // A run header cut short, and no bytes at all.
        #expect(throws: ParquetError.self) { try Self.decode([0x80], bitWidth: 1, count: 1) }
        #expect(throws: ParquetError.self) { try Self.decode([], bitWidth: 1, count: 1) }
        #expect(try Self.decode([], bitWidth: 1, count: 0) == [])
        // Bit widths outside 0…32, and negative counts.
        #expect(throws: ParquetError.self) { try RLEHybridDecoder([0x02, 0x00][...], bitWidth: 33, valueCount: 1) }
        #expect(throws: ParquetError.self) { try RLEHybridDecoder([0x02, 0x00][...], bitWidth: -1, valueCount: 1) }
        #expect(throws: ParquetError.self) { try RLEHybridDecoder([0x02, 0x00][...], bitWidth: 1, valueCount: -1) }
        // Zero-length runs are skipped.
        #expect(try Self.decode([0x00, 0x01, 0x06, 0x01], bitWidth: 1, count: 3) == [1, 1, 1])
        // Asking for more values than the decoder was told to expect.
        var decoder = try RLEHybridDecoder([0x06, 0x01][...], bitWidth: 1, valueCount: 3)
        #expect(throws: ParquetError.self) { try decoder.decode(count: 4) }
    }

    @Test func errorMessagesSayWhere() {
        do throws(ParquetError) {
            _ = try Self.decode([0x10, 0x01, 0x20, 0x02], bitWidth: 1, count: 12)
            Issue.record("expected an error")
        } catch {
            #expect(
                error.message == "RLE/bit-packed hybrid data: the RLE run at byte 2 repeats 2, which needs more than the bit width 1",
                "\(error.message)")
        }
        do throws(ParquetError) {
            _ = try Self.decode([0x10, 0x01], bitWidth: 1, count: 12)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("after 8 of 12 values"), "\(error.message)")
        }
    }

    /// Random bytes never trap the decoder: they decode or throw.
    @Test func randomGarbage() {
        var random = EncodingTestRandom(seed: 99)
        for trial in 0..<3000 {
            let length = Int.random(in: 0...40, using: &random)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let width = trial % 33
            let count = Int.random(in: 0...200, using: &random)
            if let values = try? Self.decode(bytes, bitWidth: width, count: count) {
                #expect(values.count == count)
                #expect(values.allSatisfy { width == 32 || $0 >> UInt32(width) == 0 })
            }
        }
    }

    // MARK: - Levels and indices

    @Test func levelsV1() throws {
        let levels: [UInt8] = (0..<1000).map { $0 % 7 == 0 ? 0 : 1 }
        let bytes = RLEHybrid.encodeLevelsV1(levels, maxLevel: 1)
        let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        #expect(length == bytes.count - 4)
        #expect(RLEHybrid.encodeLevelsV1(levels.map(UInt32.init), maxLevel: 1) == bytes)
        // The levels sit in front of the values: decoding reads only its own bytes.
        let page = bytes + [0xAA, 0xBB]
        let (decoded, consumed) = try RLEHybrid.decodeLevelsV1(page[...], count: levels.count, maxLevel: 1)
        #expect(decoded == levels)
        #expect(consumed == bytes.count)
        // All defined: one RLE run.
        #expect(RLEHybrid.encodeLevelsV1(Array(repeating: 1, count: 50) as [UInt8], maxLevel: 1) == [2, 0, 0, 0, 100, 1])
        #expect(RLEHybrid.encodeLevelsV1(Array(repeating: 1, count: 100) as [UInt8], maxLevel: 1) == [3, 0, 0, 0, 0xC8, 1, 1])
        // Maximum level 0: no bytes at all.
        #expect(RLEHybrid.encodeLevelsV1([0, 0] as [UInt8], maxLevel: 0) == [])
        let none = try RLEHybrid.decodeLevelsV1([0xAA][...], count: 3, maxLevel: 0)
        #expect(none.levels == [0, 0, 0] && none.consumed == 0)
        // Maximum level 3 with width 2.
        let deep: [UInt8] = (0..<77).map { UInt8($0 % 4) }
        #expect(try RLEHybrid.decodeLevelsV1(RLEHybrid.encodeLevelsV1(deep, maxLevel: 3)[...], count: 77, maxLevel: 3).levels == deep)
    }

    @Test func levelsV1Hostile() {
        let bytes = RLEHybrid.encodeLevelsV1(Array(repeating: 1, count: 100) as [UInt8], maxLevel: 1)
        // The length prefix cut short, or larger than the bytes after it.
        for length in 0..<4 {
            #expect(throws: ParquetError.self) { try RLEHybrid.decodeLevelsV1(bytes.prefix(length), count: 100, maxLevel: 1) }
        }
        #expect(throws: ParquetError.self) { try RLEHybrid.decodeLevelsV1([0xFF, 0xFF, 0xFF, 0xFF, 200, 1][...], count: 100, maxLevel: 1) }
        #expect(throws: ParquetError.self) { try RLEHybrid.decodeLevelsV1([3, 0, 0, 0, 200, 1][...], count: 100, maxLevel: 1) }
        // A level above the maximum (3 with maximum 2, bit width 2).
        #expect(throws: ParquetError.self) { try RLEHybrid.decodeLevelsV2([0x10, 0x03][...], count: 8, maxLevel: 2) }
        // A maximum level beyond a byte.
        #expect(throws: ParquetError.self) { try RLEHybrid.decodeLevelsV2([0x10, 0x03][...], count: 8, maxLevel: 256) }
    }

    @Test func levelsV2() throws {
        let levels: [UInt8] = (0..<333).map { UInt8(($0 * 7) % 3) }
        let bytes = RLEHybrid.encodeLevelsV2(levels, maxLevel: 2)
        #expect(try RLEHybrid.decodeLevelsV2(bytes[...], count: levels.count, maxLevel: 2) == levels)
        #expect(RLEHybrid.encodeLevelsV2(levels.map(UInt32.init), maxLevel: 2) == bytes)
        #expect(try RLEHybrid.decodeLevelsV2(ArraySlice<UInt8>(), count: 5, maxLevel: 0) == [0, 0, 0, 0, 0])
    }

    @Test func lengthPrefixedBooleans() throws {
        let bits: [UInt32] = (0..<50).map { $0 % 3 == 0 ? 1 : 0 }
        let bytes = bits.withUnsafeBufferPointer { RLEHybrid.encodeLengthPrefixed($0, bitWidth: 1) }
        let (values, consumed) = try RLEHybrid.decodeLengthPrefixed(bytes[...], count: 50, bitWidth: 1)
        #expect(values == bits)
        #expect(consumed == bytes.count)
    }

    @Test func indices() throws {
        let indices: [UInt32] = (0..<1000).map { UInt32(($0 * 31) % 100) }
        let bytes = RLEHybrid.encodeIndices(indices, bitWidth: 7)
        #expect(bytes[0] == 7)
        #expect(try RLEHybrid.decodeIndices(bytes[...], count: 1000, dictionarySize: 100) == indices)
        // An index past the dictionary is refused, and named.
        do throws(ParquetError) {
            _ = try RLEHybrid.decodeIndices(bytes[...], count: 1000, dictionarySize: 99)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("index 99"), "\(error.message)")
        }
        #expect(throws: ParquetError.self) { try RLEHybrid.decodeIndices(bytes[...], count: 1000, dictionarySize: 0) }
        // No values need no bytes; some values need at least the bit width.
        #expect(try RLEHybrid.decodeIndices(ArraySlice<UInt8>(), count: 0, dictionarySize: 0) == [])
        #expect(throws: ParquetError.self) { try RLEHybrid.decodeIndices(ArraySlice<UInt8>(), count: 1, dictionarySize: 5) }
        // A bit width of 33.
        #expect(throws: ParquetError.self) { try RLEHybrid.decodeIndices([33, 0x02, 0, 0, 0, 0][...], count: 1, dictionarySize: 5) }
        // Bit width 0: a one-value dictionary.
        let zeros = RLEHybrid.encodeIndices(Array(repeating: 0, count: 20), bitWidth: 0)
        #expect(zeros == [0, 40])
        #expect(try RLEHybrid.decodeIndices(zeros[...], count: 20, dictionarySize: 1) == Array(repeating: 0, count: 20))
        // Every truncation of the runs.
        for length in 1..<(bytes.count - 7 * 7 / 8) {
            #expect(throws: ParquetError.self) { try RLEHybrid.decodeIndices(bytes.prefix(length), count: 1000, dictionarySize: 100) }
        }
    }
}

/// PLAIN encoding of every physical type: known bytes, round trips (empty, small, huge), and input too short for the
/// values it should hold.
@Suite struct PlainEncodingTests {
    @Test func knownBytes() {
        var out: [UInt8] = []
        PlainEncoding.encode(int32s: [1, -2], into: &out)
        #expect(out == [1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF])
        out = []
        PlainEncoding.encode(int64s: [0x0102_0304_0506_0708], into: &out)
        #expect(out == [8, 7, 6, 5, 4, 3, 2, 1])
        out = []
        PlainEncoding.encode(floats: [1.0], into: &out)
        #expect(out == [0, 0, 0x80, 0x3F])
        out = []
        PlainEncoding.encode(doubles: [-2.0], into: &out)
        #expect(out == [0, 0, 0, 0, 0, 0, 0, 0xC0])
        out = []
        PlainEncoding.encode(booleans: [true, false, true, true, false, false, false, false, true], into: &out)
        #expect(out == [0b0000_1101, 0b1])
        out = []
        PlainEncoding.encode(byteArrays: Array("abcd".utf8), offsets: [0, 2, 2, 4], into: &out)
        #expect(out == [2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 2, 0, 0, 0, 0x63, 0x64])
        out = [0xEE]
        PlainEncoding.encode(fixed: [1, 2, 3, 4], width: 2, into: &out)
        #expect(out == [0xEE, 1, 2, 3, 4])
    }

    @Test func numbersRoundTrip() throws {
        var random = EncodingTestRandom(seed: 1)
        for count in [0, 1, 7, 1000] {
            let int32s = (0..<count).map { _ in Int32.random(in: .min ... .max, using: &random) } + (count > 0 ? [.min, .max, 0] : [])
            var out: [UInt8] = []
            PlainEncoding.encode(int32s: int32s, into: &out)
            #expect(out.count == 4 * int32s.count)
            #expect(try PlainEncoding.decodeInt32s(out[...], count: int32s.count) == int32s)

            let int64s = (0..<count).map { _ in Int64.random(in: .min ... .max, using: &random) } + (count > 0 ? [.min, .max, 0] : [])
            out = []
            PlainEncoding.encode(int64s: int64s, into: &out)
            #expect(try PlainEncoding.decodeInt64s(out[...], count: int64s.count) == int64s)

            let doubles = (0..<count).map { _ in Double(bitPattern: random.next()) }
            out = []
            PlainEncoding.encode(doubles: doubles, into: &out)
            #expect(try PlainEncoding.decodeDoubles(out[...], count: count).map(\.bitPattern) == doubles.map(\.bitPattern))

            let floats = (0..<count).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: random.next())) }
            out = []
            PlainEncoding.encode(floats: floats, into: &out)
            #expect(try PlainEncoding.decodeFloats(out[...], count: count).map(\.bitPattern) == floats.map(\.bitPattern))
        }
        // Special floating point values keep their bits.
        let specials: [Double] = [-0.0, .nan, .signalingNaN, .infinity, -.infinity, .leastNonzeroMagnitude]
        var out: [UInt8] = []
        PlainEncoding.encode(doubles: specials, into: &out)
        #expect(try PlainEncoding.decodeDoubles(out[...], count: specials.count).map(\.bitPattern) == specials.map(\.bitPattern))
    }

    /// Decoding reads from the slice's start, whatever its indices, and leaves trailing bytes alone.
    @Test func slicesAndTrailingBytes() throws {
        let bytes: [UInt8] = [0xFF, 1, 0, 0, 0, 2, 0, 0, 0, 0xFF]
        #expect(try PlainEncoding.decodeInt32s(bytes[1...], count: 2) == [1, 2])
        #expect(try PlainEncoding.decodeInt32s(bytes[1...], count: 0) == [])
    }

    @Test func shortInput() {
        let bytes: [UInt8] = Array(repeating: 0, count: 11)
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeInt32s(bytes[...], count: 3) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeInt64s(bytes[...], count: 2) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeFloats(bytes[...], count: Int.max) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeDoubles(bytes[...], count: -1) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeInt96(bytes[...], count: 1) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeBooleans(bytes[...], count: 89) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeBooleans(bytes[...], count: Int.max) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeFixed(bytes[...], count: 2, width: 6) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeFixed(bytes[...], count: Int.max, width: 3) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeFixed(bytes[...], count: 1, width: -1) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeByteArrays(bytes[...], count: Int.max) }
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeByteArrays(bytes[...], count: -1) }
    }

    @Test func booleansRoundTrip() throws {
        var random = EncodingTestRandom(seed: 2)
        for count in [0, 1, 7, 8, 9, 1000] {
            let values = (0..<count).map { _ in Bool.random(using: &random) }
            var out: [UInt8] = []
            PlainEncoding.encode(booleans: values, into: &out)
            #expect(out.count == (count + 7) / 8)
            #expect(try PlainEncoding.decodeBooleans(out[...], count: count) == values)
        }
    }

    @Test func int96() throws {
        // 1 second past midnight on Julian day 2440588 (1970-01-01), then -1 ns on day 0.
        var bytes: [UInt8] = [0x00, 0xCA, 0x9A, 0x3B, 0, 0, 0, 0, 0x8C, 0x3D, 0x25, 0x00]
        bytes += Array(repeating: 0xFF, count: 8) + [0, 0, 0, 0]
        let values = try PlainEncoding.decodeInt96(bytes[...], count: 2)
        #expect(values.count == 2)
        #expect(values[0].nanosOfDay == 1_000_000_000 && values[0].julianDay == 2_440_588)
        #expect(values[1].nanosOfDay == -1 && values[1].julianDay == 0)
        #expect(try PlainEncoding.decodeInt96(bytes[...], count: 0).isEmpty)
    }

    @Test func byteArraysRoundTrip() throws {
        var random = EncodingTestRandom(seed: 4)
        let huge = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let cases: [[[UInt8]]] = [
            [],
            [[]],
            [[0x41]],
            [[], [1], [], [2, 3]],
            (0..<500).map { _ in (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) } },
            [[9], huge, [8]],
        ]
        for strings in cases {
            var bytes: [UInt8] = []
            var offsets: [Int32] = [0]
            for string in strings {
                bytes += string
                offsets.append(Int32(bytes.count))
            }
            var out: [UInt8] = []
            PlainEncoding.encode(byteArrays: bytes, offsets: offsets, into: &out)
            #expect(out.count == 4 * strings.count + bytes.count)
            let decoded = try PlainEncoding.decodeByteArrays(out[...], count: strings.count)
            #expect(decoded.bytes == bytes)
            #expect(decoded.offsets == offsets)
        }
    }

    /// Byte arrays in the middle of a buffer: offsets need not start at 0.
    @Test func byteArraysFromOffsets() throws {
        let bytes = Array("xxhelloworld".utf8)
        var out: [UInt8] = []
        PlainEncoding.encode(byteArrays: bytes, offsets: [2, 7, 12], into: &out)
        let decoded = try PlainEncoding.decodeByteArrays(out[...], count: 2)
        #expect(decoded.bytes == Array("helloworld".utf8))
        #expect(decoded.offsets == [0, 5, 10])
    }

    @Test func byteArraysTruncated() {
        var out: [UInt8] = []
        PlainEncoding.encode(byteArrays: Array("abcdefgh".utf8), offsets: [0, 3, 3, 8], into: &out)
        for length in 0..<out.count {
            #expect(throws: ParquetError.self) { try PlainEncoding.decodeByteArrays(out.prefix(length), count: 3) }
        }
        // A length of 2^32 - 1 where 4 bytes follow.
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeByteArrays([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4][...], count: 1) }
        // A length that swallows the next value's length.
        #expect(throws: ParquetError.self) { try PlainEncoding.decodeByteArrays([4, 0, 0, 0, 0, 0, 0, 0][...], count: 2) }
        do throws(ParquetError) {
            _ = try PlainEncoding.decodeByteArrays([1, 0, 0, 0, 0x61, 9, 0, 0, 0, 0x62][...], count: 2)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("value 1 of 2"), "\(error.message)")
        }
    }

    @Test func fixedRoundTrip() throws {
        let bytes = (0..<160).map { UInt8($0) }
        var out: [UInt8] = []
        PlainEncoding.encode(fixed: bytes, width: 16, into: &out)
        #expect(try PlainEncoding.decodeFixed(out[...], count: 10, width: 16) == bytes)
        #expect(try PlainEncoding.decodeFixed(out[...], count: 0, width: 16) == [])
        #expect(try PlainEncoding.decodeFixed(out[...], count: 3, width: 0) == [])
    }
}

/// Dictionary building for the writer: indices stable and dense, duplicates found, and the PLAIN dictionary page
/// exactly `plainEncodedSize` bytes holding the values in index order.
@Suite struct DictionaryBuilderTests {
    @Test func int32s() throws {
        var builder = DictionaryBuilder<Int32>()
        var random = EncodingTestRandom(seed: 8)
        var reference: [Int32: UInt32] = [:]
        var order: [Int32] = []
        for _ in 0..<100_000 {
            let value = Int32.random(in: -20_000...20_000, using: &random)
            let index = builder.index(of: value)
            if let known = reference[value] {
                #expect(index == known)
            } else {
                #expect(index == UInt32(order.count))
                reference[value] = index
                order.append(value)
            }
        }
        #expect(builder.count == order.count)
        #expect(builder.values == order)
        #expect(builder.plainEncodedSize == 4 * order.count)
        var page: [UInt8] = []
        builder.encodePlain(into: &page)
        #expect(page.count == builder.plainEncodedSize)
        #expect(try PlainEncoding.decodeInt32s(page[...], count: order.count) == order)
        // Bulk lookups agree.
        var indices: [UInt32] = []
        builder.appendIndices(of: order, to: &indices)
        #expect(indices == (0..<order.count).map(UInt32.init))
        #expect(builder.count == order.count)
    }

    @Test func int64sAndDoubles() throws {
        var int64s = DictionaryBuilder<Int64>(expectedCount: 10)
        #expect(int64s.index(of: .max) == 0)
        #expect(int64s.index(of: .min) == 1)
        #expect(int64s.index(of: .max) == 0)
        #expect(int64s.plainEncodedSize == 16)

        var doubles = DictionaryBuilder<Double>()
        #expect(doubles.index(of: 0.0) == 0)
        #expect(doubles.index(of: -0.0) == 1)  // different bits
        #expect(doubles.index(of: .nan) == 2)
        #expect(doubles.index(of: .nan) == 2)  // same bits
        #expect(doubles.index(of: 1.5) == 3)
        var page: [UInt8] = []
        doubles.encodePlain(into: &page)
        #expect(page.count == doubles.plainEncodedSize)
        #expect(try PlainEncoding.decodeDoubles(page[...], count: 4).map(\.bitPattern) == [0.0, -0.0, .nan, 1.5].map(\.bitPattern))

        var floats = DictionaryBuilder<Float>()
        for value in (0..<1000).map({ Float($0 % 10) }) { _ = floats.index(of: value) }
        #expect(floats.count == 10)
        #expect(floats.plainEncodedSize == 40)
    }

    @Test func byteArrays() throws {
        var builder = ByteArrayDictionaryBuilder()
        var random = EncodingTestRandom(seed: 9)
        var reference: [[UInt8]: UInt32] = [:]
        var order: [[UInt8]] = []
        let pool: [[UInt8]] =
            [[], [0], [0, 0]]
            + (0..<5000).map { _ in (0..<Int.random(in: 0...30, using: &random)).map { _ in UInt8.random(in: 0...3, using: &random) } }
        for _ in 0..<50_000 {
            let value = pool[Int.random(in: 0..<pool.count, using: &random)]
            let index = builder.index(of: value)
            if let known = reference[value] {
                #expect(index == known)
            } else {
                #expect(index == UInt32(order.count))
                reference[value] = index
                order.append(value)
            }
        }
        #expect(builder.count == order.count)
        for (index, value) in order.enumerated() { #expect(Array(builder.value(at: index)) == value) }
        #expect(builder.plainEncodedSize == 4 * order.count + order.reduce(0) { $0 + $1.count })
        var page: [UInt8] = []
        builder.encodePlain(into: &page)
        #expect(page.count == builder.plainEncodedSize)
        let decoded = try PlainEncoding.decodeByteArrays(page[...], count: order.count)
        #expect(decoded.bytes == order.flatMap { $0 })
        // Bulk lookups from contiguous bytes and offsets agree.
        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        for value in order.reversed() {
            bytes += value
            offsets.append(Int32(bytes.count))
        }
        var indices: [UInt32] = []
        builder.appendIndices(bytes: bytes, offsets: offsets, to: &indices)
        #expect(indices == (0..<order.count).reversed().map(UInt32.init))
        #expect(builder.count == order.count)
    }

    /// Values that share a prefix, differ in one byte past 8, or only in length are different entries.
    @Test func byteArraysNearMisses() {
        var builder = ByteArrayDictionaryBuilder()
        let base = Array("0123456789abcdef".utf8)
        #expect(builder.index(of: base) == 0)
        #expect(builder.index(of: Array(base.prefix(15))) == 1)
        var changed = base
        changed[9] = 0x58
        #expect(builder.index(of: changed) == 2)
        #expect(builder.index(of: base + [0]) == 3)
        #expect(builder.index(of: base) == 0)
        #expect(builder.index(of: changed) == 2)
        #expect(builder.count == 4)
    }
}
