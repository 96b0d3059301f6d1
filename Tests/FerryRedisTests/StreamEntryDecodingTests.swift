import FerryRESP
import NIOCore
import Testing

@testable import FerryRedis

@Suite("Stream entries from replies")
struct StreamEntryDecodingTests {
    func entries(_ text: String) throws -> [RedisStreamEntry] {
        try RedisStreamEntry.list(fromRESP: RESPToken(validating: ByteBuffer(string: text)))
    }

    func field(_ name: String, _ value: String) -> RedisStreamField {
        RedisStreamField(name: ByteBuffer(string: name), value: ByteBuffer(string: value))
    }

    @Test func plainEntriesAreReadInOnePass() throws {
        let reply = "*2\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$0\r\n\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nc\r\n$3\r\nx\ry\r\n"
        #expect(
            try entries(reply) == [
                RedisStreamEntry(id: "1-0", fields: [field("a", "1"), field("b", "")]),
                RedisStreamEntry(id: "2-0", fields: [field("c", "x\ry")]),
            ])
    }

    @Test func anEntryDeletedWhilePendingFallsBackToTheTokenWalk() throws {
        // The second entry's fields are null (RESP2 `*-1`): the fast reader gives up and the tokens read it all.
        let reply = "*3\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\n2-0\r\n*-1\r\n*2\r\n$3\r\n3-0\r\n*0\r\n"
        #expect(
            try entries(reply) == [
                RedisStreamEntry(id: "1-0", fields: [field("a", "1")]),
                RedisStreamEntry(id: "2-0", fields: nil),
                RedisStreamEntry(id: "3-0", fields: []),
            ])
        #expect(try entries("*-1\r\n") == [])
    }
}
