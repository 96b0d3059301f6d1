import NIOCore
import Testing

@testable import FerryRESP

@Suite("RESP command encoding")
struct RESPEncoderTests {
    func encode(_ body: (inout RESPCommandEncoder) -> Void) -> String {
        var encoder = RESPCommandEncoder(buffer: ByteBuffer())
        body(&encoder)
        return String(buffer: encoder.buffer)
    }

    @Test func commandsAreArraysOfBulkStrings() {
        #expect(encode { $0.encodeArray("SET", "key", "value") } == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
        #expect(encode { $0.encodeArray("INCRBY", "k", -1234) } == "*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$5\r\n-1234\r\n")
        #expect(
            encode { $0.encodeArray("X", 0, 9, 10, Int64.max) } == "*5\r\n$1\r\nX\r\n$1\r\n0\r\n$1\r\n9\r\n$2\r\n10\r\n$19\r\n9223372036854775807\r\n"
        )
        #expect(encode { $0.encodeArray("E", "") } == "*2\r\n$1\r\nE\r\n$0\r\n\r\n")
        #expect(encode { $0.encodeArray("U", "ñ") } == "*2\r\n$1\r\nU\r\n$2\r\nñ\r\n")
    }

    @Test func optionsFlagsAndLists() {
        let none: Int? = nil
        #expect(
            encode { $0.encodeArray("XREAD", RESPOption("COUNT", 10), RESPOption("BLOCK", none), RESPFlag("NOACK", true), ["a", "b"]) }
                == "*6\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$2\r\n10\r\n$5\r\nNOACK\r\n$1\r\na\r\n$1\r\nb\r\n")
        #expect(
            encode { $0.encodeArray("HSET", "h", [RESPPair("f", ByteBuffer(string: "v"))]) }
                == "*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n")
        #expect(encode { $0.encodeArray(arguments: ["PING"]) } == "*1\r\n$4\r\nPING\r\n")
    }

    @Test func encodedCommandsDecodeAsArrays() throws {
        var encoder = RESPCommandEncoder(buffer: ByteBuffer())
        encoder.encodeArray("XADD", "s", "*", "f", 1.5)
        let token = try RESPToken(validating: encoder.buffer)
        #expect(try token.decode(as: [String].self) == ["XADD", "s", "*", "f", "1.5"])
    }

    @Test(arguments: [0, 1, 9, 10, 99, 100, -1, -10, 123_456_789, Int64.min, Int64.max])
    func decimalLength(value: Int64) {
        #expect(RESPCommandEncoder.decimalLength(value) == String(value).count)
    }
}
