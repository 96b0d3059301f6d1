import NIOCore
import NIOTestUtils
import Testing

@testable import FerryRESP

@Suite("RESP decoding")
struct RESPDecoderTests {
    func token(_ text: String) throws -> RESPToken {
        try RESPToken(validating: ByteBuffer(string: text))
    }

    func string(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    @Test func simpleTypes() throws {
        #expect(try token("+OK\r\n").value == .simpleString(ByteBuffer(string: "OK")))
        #expect(try token("-ERR wrong\r\n").value == .simpleError(ByteBuffer(string: "ERR wrong")))
        #expect(try token(":42\r\n").value == .number(42))
        #expect(try token(":-9223372036854775808\r\n").value == .number(.min))
        #expect(try token(",3.25\r\n").value == .double(3.25))
        #expect(try token(",1.5e3\r\n").value == .double(1500))
        #expect(try token(",inf\r\n").value == .double(.infinity))
        #expect(try token(",-inf\r\n").value == .double(-.infinity))
        if case .double(let nan) = try token(",nan\r\n").value { #expect(nan.isNaN) } else { Issue.record("nan") }
        #expect(try token("#t\r\n").value == .boolean(true))
        #expect(try token("#f\r\n").value == .boolean(false))
        #expect(
            try token("(3492890328409238509324850943850943825024385\r\n").value
                == .bigNumber(ByteBuffer(string: "3492890328409238509324850943850943825024385")))
    }

    @Test func nullsAndEmptyStrings() throws {
        #expect(try token("_\r\n").value == .null)
        #expect(try token("$-1\r\n").value == .null)
        #expect(try token("*-1\r\n").value == .null)
        #expect(try token("$0\r\n\r\n").value == .bulkString(ByteBuffer()), "an empty bulk string is not null")
        #expect(try token("*0\r\n").value == .array(.init(count: 0, children: ByteBuffer())))
    }

    @Test func blobs() throws {
        #expect(try token("$5\r\nhello\r\n").value == .bulkString(ByteBuffer(string: "hello")))
        #expect(try token("$4\r\na\r\nb\r\n").value == .bulkString(ByteBuffer(string: "a\r\nb")), "binary-safe")
        #expect(try token("!21\r\nSYNTAX invalid syntax\r\n").value == .bulkError(ByteBuffer(string: "SYNTAX invalid syntax")))
        #expect(try token("=15\r\ntxt:Some string\r\n").value == .verbatimString(ByteBuffer(string: "txt:Some string")))
        #expect(try token("=15\r\ntxt:Some string\r\n").decode(as: String.self) == "Some string")
    }

    @Test func aggregates() throws {
        let array = try token("*3\r\n:1\r\n$3\r\ntwo\r\n*2\r\n+a\r\n_\r\n")
        guard case .array(let elements) = array.value else {
            Issue.record("not an array")
            return
        }
        let items = elements.elements
        #expect(items.count == 3)
        #expect(items[0].value == .number(1))
        #expect(try items[1].decode(as: String.self) == "two")
        #expect(try items[2].elements().map(\.value) == [.simpleString(ByteBuffer(string: "a")), .null])

        let map = try token("%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#t\r\n")
        let pairs = try map.pairs()
        #expect(try pairs.map { try $0.key.decode(as: String.self) } == ["first", "second"])
        #expect(pairs.map(\.value.value) == [.number(1), .boolean(true)])

        let set = try token("~2\r\n+a\r\n+b\r\n")
        guard case .set(let members) = set.value else {
            Issue.record("not a set")
            return
        }
        #expect(try members.map { try $0.decode(as: String.self) } == ["a", "b"])
    }

    @Test func attributesAttachToTheFollowingValue() throws {
        let annotated = try token("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n")
        #expect(annotated.identifier == .array)
        #expect(try annotated.decode(as: [Int].self) == [2_039_123, 9_543_892])
        let attributes = try #require(annotated.attributes)
        #expect(attributes.count == 1)
        let first = try #require(Array(attributes).first)
        #expect(try first.key.decode(as: String.self) == "key-popularity")

        // An attribute on an element inside an aggregate does not count as an element.
        let nested = try token("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n")
        #expect(try nested.decode(as: [Int].self) == [1, 2])
        #expect(try nested.elements()[0].attributes?.count == 1)
    }

    @Test func pushesAreMarked() throws {
        let push = try token(">3\r\n$7\r\nmessage\r\n$7\r\nchannel\r\n$5\r\nhello\r\n")
        #expect(push.isPush)
        #expect(try push.decode(as: [String].self) == ["message", "channel", "hello"])
        #expect(!(try token("*1\r\n+x\r\n")).isPush)
    }

    static let frames: [String] = [
        "+OK\r\n", "-ERR x\r\n", ":0\r\n", ":-12\r\n", "$0\r\n\r\n", "$-1\r\n", "$3\r\n\r\n\n\r\n", "*-1\r\n", "*0\r\n",
        "*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", "_\r\n", "#t\r\n", ",1.25\r\n", ",-inf\r\n", "(12345678901234567890\r\n",
        "!3\r\nERR\r\n", "=7\r\ntxt:abc\r\n", "%1\r\n+k\r\n*1\r\n%0\r\n", "~1\r\n:1\r\n", ">2\r\n+pubsub\r\n+x\r\n",
        "|1\r\n+a\r\n+b\r\n+value\r\n", "|0\r\n:5\r\n", "*3\r\n*1\r\n*1\r\n:1\r\n%1\r\n|1\r\n+m\r\n+n\r\n+k\r\n+v\r\n$2\r\nok\r\n",
    ]

    @Test func byteByByteAndEveryChunking() throws {
        var input = ByteBuffer()
        var expected: [RESPToken] = []
        for frame in Self.frames {
            input.writeString(frame)
            expected.append(try token(frame))
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(input, expected)]) { RESPTokenDecoder() }
    }

    @Test func randomSplitsGiveTheSameTokens() throws {
        var generator = SeededGenerator(seed: 7)
        var input = ByteBuffer()
        for _ in 0..<50 { for frame in Self.frames { input.writeString(frame) } }
        let reference = try decodeAll(input, chunkSizes: [input.readableBytes])
        for _ in 0..<200 {
            var sizes: [Int] = []
            var remaining = input.readableBytes
            while remaining > 0 {
                let size = min(remaining, Int.random(in: 1...64, using: &generator))
                sizes.append(size)
                remaining -= size
            }
            #expect(try decodeAll(input, chunkSizes: sizes) == reference)
        }
        #expect(reference.count == Self.frames.count * 50)
    }

    func decodeAll(_ input: ByteBuffer, chunkSizes: [Int]) throws -> [RESPToken] {
        let processor = NIOSingleStepByteToMessageProcessor(RESPTokenDecoder())
        var tokens: [RESPToken] = []
        var input = input
        for size in chunkSizes {
            let chunk = input.readSlice(length: size)!
            try processor.process(buffer: chunk) { tokens.append($0) }
        }
        return tokens
    }

    @Test func largeRepliesAreNotRescanned() throws {
        var input = ByteBuffer()
        let count = 20_000
        input.writeString("*\(count)\r\n")
        for index in 0..<count { input.writeString("$\(String(index).utf8.count)\r\n\(index)\r\n") }
        let total = input.readableBytes
        var scanner = RESPFrameScanner()
        var accumulated = ByteBuffer()
        var length: Int?
        while input.readableBytes > 0 {
            var chunk = input.readSlice(length: min(97, input.readableBytes))!
            accumulated.writeBuffer(&chunk)
            length = try scanner.scan(accumulated)
        }
        #expect(length == total)
        #expect(scanner.bytesExamined < total * 2, "examined \(scanner.bytesExamined) bytes for a \(total)-byte reply")
    }

    @Test(arguments: [
        "?x\r\n", ":12a\r\n", ":\r\n", ":99999999999999999999\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "*-2\r\n", "#x\r\n", "_x\r\n",
        ",1.2.3\r\n", ",0x1p3\r\n", "(12a\r\n", "+ok\rX", "+ok\nmore\r\n", "=2\r\nab\r\n", "%-1x\r\n", ">-1\r\n", "$abc\r\n",
    ])
    func malformedInputIsAnErrorNotACrash(text: String) {
        #expect(throws: RESPParsingError.self) { _ = try RESPToken(validating: ByteBuffer(string: text)) }
    }

    @Test func limitsAreEnforcedWithClearErrors() {
        var limits = RESPFrameScanner.Limits()
        limits.maxDepth = 3
        limits.maxElements = 10
        limits.maxBulkLength = 8
        limits.maxLineLength = 16
        func error(_ text: String) -> RESPParsingError.Code? {
            do {
                _ = try RESPToken(validating: ByteBuffer(string: text), limits: limits)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(error("*1\r\n*1\r\n*1\r\n:1\r\n") == nil)
        #expect(error("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n") == .tooDeep)
        #expect(error("*11\r\n") == .tooManyElements)
        #expect(error("%6\r\n") == .tooManyElements || error("%6\r\n") == .missingCRLF)
        #expect(error("$9\r\n") == .bulkTooLong)
        #expect(error("+" + String(repeating: "x", count: 40)) == .lineTooLong)
        #expect("\(RESPParsingError(.tooDeep, offset: 12))" == "RESP protocol error: nesting deeper than the limit at byte 12 of the reply")
    }

    @Test func decodableConversions() throws {
        #expect(try token(":7\r\n").decode(as: Int.self) == 7)
        #expect(try token("$2\r\n12\r\n").decode(as: Int.self) == 12)
        #expect(try token("_\r\n").decode(as: String?.self) == nil)
        #expect(try token("*2\r\n$1\r\na\r\n$-1\r\n").decode(as: [String?].self) == ["a", nil])
        #expect(throws: RESPDecodeError.self) { try token("*1\r\n:1\r\n").decode(as: Int.self) }
        #expect(try token("*4\r\n+a\r\n:1\r\n+b\r\n:2\r\n").pairs().count == 2, "RESP2 flat arrays read as pairs")
    }
}

/// Deterministic random numbers for reproducible splits.
struct SeededGenerator: RandomNumberGenerator {
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

@Suite("RESP plain reader")
struct RESPReaderTests {
    func array(_ text: String) throws -> RESPToken.Array {
        guard case .array(let children) = try RESPToken(validating: ByteBuffer(string: text)).value else {
            throw RESPParsingError(.invalidData, offset: 0)
        }
        return children
    }

    @Test func readsHeadersAndStringsInOrder() throws {
        var reader = try array("*3\r\n*2\r\n$2\r\nab\r\n+OK\r\n$0\r\n\r\n~1\r\n$12\r\nhello\r\nworld\r\n").reader
        #expect(reader.readArrayHeader() == 2)
        #expect(reader.readString().map { String(buffer: $0) } == "ab")
        #expect(reader.readString().map { String(buffer: $0) } == "OK")
        #expect(reader.readString().map { String(buffer: $0) } == "")
        #expect(reader.readArrayHeader() == 1)
        #expect(reader.readString().map { String(buffer: $0) } == "hello\r\nworld")
        #expect(reader.isAtEnd)
    }

    @Test func anythingElseReadsAsNilWithoutMoving() throws {
        var reader = try array("*4\r\n$-1\r\n*-1\r\n:5\r\n+x\r\n").reader
        #expect(reader.readString() == nil)
        #expect(reader.readArrayHeader() == nil)
        var skipped = try array("*2\r\n:5\r\n+x\r\n").reader
        #expect(skipped.readString() == nil)
        #expect(skipped.readArrayHeader() == nil)
        #expect(!skipped.isAtEnd)
    }
}
