import Testing

@testable import FerryParquet

/// Page compression: round trips for every codec (empty, tiny, 10 MB compressible and random), bytes made by
/// pyarrow and the zstd tool, concatenated gzip members, and corrupt or mislabelled input, which must throw (never
/// trap, never return the wrong number of bytes).
@Suite struct CompressionTests {
    static let codecs: [ParquetCodec] = [.none, .snappy, .gzip, .zstd]
    static let sample = Array("The quick brown fox jumps over the lazy dog. ".utf8)
    static let fox = Array(repeating: sample, count: 4).flatMap { $0 }

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return result
    }

    /// 10 MB of text-like bytes (compressible) or of random bytes.
    static func large(random: Bool) -> [UInt8] {
        let count = 10 << 20
        if random {
            var generator = EncodingTestRandom(seed: 42)
            return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                let words = UnsafeMutableRawBufferPointer(buffer)
                for i in 0..<(count / 8) { words.storeBytes(of: generator.next(), toByteOffset: 8 * i, as: UInt64.self) }
                initialized = count
            }
        }
        var generator = EncodingTestRandom(seed: 43)
        let words = ["ferry", "parquet", "column", "page", "row", "group", "12345", "2026-01-01", "null", "snappy"].map { Array($0.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(count + 16)
        while out.count < count {
            out += words[Int(generator.next() % UInt64(words.count))]
            out.append(0x20)
        }
        return Array(out.prefix(count))
    }

    @Test(arguments: codecs) func smallRoundTrips(codec: ParquetCodec) throws {
        for input in [[], [0x41], Array(Self.sample.prefix(7)), Self.fox] as [[UInt8]] {
            let compressed = try ParquetCompression.compress(codec, input)
            #expect(try ParquetCompression.decompress(codec, compressed[...], uncompressedSize: input.count) == input)
        }
        // Empty input with a size of 0 is an empty page for every codec.
        #expect(try ParquetCompression.decompress(codec, ArraySlice<UInt8>(), uncompressedSize: 0) == [])
    }

    @Test(arguments: codecs) func largeRoundTrips(codec: ParquetCodec) throws {
        for random in [false, true] {
            let input = Self.large(random: random)
            let compressed = try ParquetCompression.compress(codec, input)
            if codec != .none && !random { #expect(compressed.count < input.count / 2) }
            let output = try ParquetCompression.decompress(codec, compressed[...], uncompressedSize: input.count)
            #expect(output == input)
        }
    }

    @Test func levels() throws {
        for level in [0, 1, 9] {
            let compressed = try ParquetCompression.compress(.gzip, Self.fox, level: level)
            #expect(try ParquetCompression.decompress(.gzip, compressed[...], uncompressedSize: Self.fox.count) == Self.fox)
        }
        for level in [-5, 1, 3, 19] {
            let compressed = try ParquetCompression.compress(.zstd, Self.fox, level: level)
            #expect(try ParquetCompression.decompress(.zstd, compressed[...], uncompressedSize: Self.fox.count) == Self.fox)
        }
        #expect(throws: ParquetError.self) { try ParquetCompression.compress(.gzip, Self.fox, level: 10) }
        #expect(throws: ParquetError.self) { try ParquetCompression.compress(.zstd, Self.fox, level: 1000) }
    }

    /// Bytes compressed by pyarrow 26 (`pyarrow.compress(data, codec=…)`) and by `zstd --no-content-size`.
    @Test func otherWriters() throws {
        let snappy = Self.bytes(
            hex: "b401b054686520717569636b2062726f776e20666f78206a756d7073206f76657220746865206c617a7920646f672e20fe2d00fe2d000d2d")
        let zstd = Self.bytes(
            hex: "28b52ffd20b4b50100d40254686520717569636b2062726f776e20666f78206a756d7073206f76657220746865206c617a7920646f672e20010025404a9501")
        let gzip = Self.bytes(
            hex:
                "1f8b08000000000002030bc94855282ccd4cce56482aca2fcf5348cbaf50c82acd2d2856c82f4b2d5228014ae72456552aa4e4a7eb29840c0ec5001b8dff44b4000000"
        )
        let zstdWithoutSize = Self.bytes(
            hex:
                "28b52ffd0458b50100d40254686520717569636b2062726f776e20666f78206a756d7073206f76657220746865206c617a7920646f672e20010025404a9501a470900d"
        )
        #expect(try ParquetCompression.decompress(.snappy, snappy[...], uncompressedSize: 180) == Self.fox)
        #expect(try ParquetCompression.decompress(.zstd, zstd[...], uncompressedSize: 180) == Self.fox)
        #expect(try ParquetCompression.decompress(.gzip, gzip[...], uncompressedSize: 180) == Self.fox)
        #expect(try ParquetCompression.decompress(.zstd, zstdWithoutSize[...], uncompressedSize: 180) == Self.fox)
        // Without a content size in the frame, a wrong size is found while decompressing.
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(.zstd, zstdWithoutSize[...], uncompressedSize: 179) }
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(.zstd, zstdWithoutSize[...], uncompressedSize: 181) }
    }

    @Test func concatenatedGzipMembers() throws {
        let first = Self.fox
        let second = Array("a second member".utf8)
        let joined =
            try ParquetCompression.compress(.gzip, first) + ParquetCompression.compress(.gzip, second) + ParquetCompression.compress(.gzip, [])
        #expect(try ParquetCompression.decompress(.gzip, joined[...], uncompressedSize: first.count + second.count) == first + second)
        // Each size check still holds across members.
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(.gzip, joined[...], uncompressedSize: first.count) }
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(.gzip, joined[...], uncompressedSize: first.count + second.count + 1) }
        // Garbage after the last member.
        #expect(throws: ParquetError.self) {
            try ParquetCompression.decompress(.gzip, (joined + [1, 2, 3])[...], uncompressedSize: first.count + second.count)
        }
    }

    /// zstd frames one after another are one stream, like gzip members.
    @Test func concatenatedZstdFrames() throws {
        let joined = try ParquetCompression.compress(.zstd, Self.fox) + ParquetCompression.compress(.zstd, Self.sample)
        #expect(try ParquetCompression.decompress(.zstd, joined[...], uncompressedSize: 180 + 45) == Self.fox + Self.sample)
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(.zstd, joined[...], uncompressedSize: 180) }
    }

    /// A few bytes claiming far more output than the codec can make of them are refused before any allocation.
    @Test func impossibleRatios() {
        do throws(ParquetError) {
            _ = try ParquetCompression.decompress(.snappy, [0xC0, 0x84, 0x3D, 0x00][...], uncompressedSize: 1_000_000)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("cannot hold"), "\(error.message)")
        }
        do throws(ParquetError) {
            _ = try ParquetCompression.decompress(.gzip, [UInt8](repeating: 0, count: 30)[...], uncompressedSize: 1 << 30)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("cannot hold"), "\(error.message)")
        }
    }

    @Test(arguments: codecs) func wrongSizes(codec: ParquetCodec) throws {
        let compressed = try ParquetCompression.compress(codec, Self.fox)
        for size in [0, 1, 179, 181, 100_000] {
            #expect(throws: ParquetError.self) { try ParquetCompression.decompress(codec, compressed[...], uncompressedSize: size) }
        }
        for size in [-1, (1 << 30) + 1, Int.max] {
            #expect(throws: ParquetError.self) { try ParquetCompression.decompress(codec, compressed[...], uncompressedSize: size) }
        }
        // No bytes for a page that should have some.
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(codec, ArraySlice<UInt8>(), uncompressedSize: 10) }
    }

    @Test func errorMessagesNameTheCodec() throws {
        let zstd = try ParquetCompression.compress(.zstd, Array(repeating: 7, count: 70))
        do throws(ParquetError) {
            _ = try ParquetCompression.decompress(.zstd, zstd[...], uncompressedSize: 64)
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "zstd: the page decompresses to 70 bytes, its header says 64")
        }
        let snappy = try ParquetCompression.compress(.snappy, Array(repeating: 7, count: 70))
        do throws(ParquetError) {
            _ = try ParquetCompression.decompress(.snappy, snappy[...], uncompressedSize: 64)
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "snappy: the page decompresses to 70 bytes, its header says 64")
        }
        do throws(ParquetError) {
            _ = try ParquetCompression.decompress(.gzip, [1, 2, 3, 4][...], uncompressedSize: 64)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.hasPrefix("gzip: "), "\(error.message)")
        }
    }

    /// Every truncation of a valid stream throws (each codec stores the size or ends with a marker or checksum).
    @Test(arguments: [ParquetCodec.snappy, .gzip, .zstd]) func truncations(codec: ParquetCodec) throws {
        let input = Self.large(random: false).prefix(20_000)
        let compressed = try ParquetCompression.compress(codec, Array(input))
        for length in stride(from: 0, to: compressed.count, by: max(1, compressed.count / 300)) {
            #expect(throws: ParquetError.self) { try ParquetCompression.decompress(codec, compressed.prefix(length), uncompressedSize: input.count) }
        }
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(codec, compressed.dropLast(), uncompressedSize: input.count) }
    }

    /// Flipped bytes and random garbage throw or (for codecs without a checksum) decompress to exactly the stated
    /// size: never a trap, never a different size.
    @Test(arguments: [ParquetCodec.snappy, .gzip, .zstd]) func corruptInput(codec: ParquetCodec) throws {
        let input = Array(Self.large(random: false).prefix(5000))
        let compressed = try ParquetCompression.compress(codec, input)
        var random = EncodingTestRandom(seed: 77)
        var thrown = 0
        for _ in 0..<500 {
            var damaged = compressed
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                damaged[Int.random(in: 0..<damaged.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            }
            do throws(ParquetError) {
                let output = try ParquetCompression.decompress(codec, damaged[...], uncompressedSize: input.count)
                #expect(output.count == input.count)
            } catch {
                thrown += 1
                #expect(error.message.hasPrefix(codec.name + ": "), "\(error.message)")
            }
        }
        #expect(thrown > 0)
        for _ in 0..<500 {
            let garbage = (0..<Int.random(in: 1...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            if let output = try? ParquetCompression.decompress(codec, garbage[...], uncompressedSize: 1000) {
                #expect(output.count == 1000)
            }
        }
        if codec == .gzip {
            // gzip checks a CRC-32: every damaged stream above was refused or came out right.
            #expect(thrown > 400)
        }
    }

    @Test func uncompressedPages() throws {
        #expect(try ParquetCompression.compress(.none, Self.fox) == Self.fox)
        #expect(try ParquetCompression.decompress(.none, Self.fox[...], uncompressedSize: 180) == Self.fox)
        #expect(throws: ParquetError.self) { try ParquetCompression.decompress(.none, Self.fox[...], uncompressedSize: 181) }
    }
}
