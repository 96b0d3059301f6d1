import Foundation
import NIOCore
import Testing

@testable import FerrySync

@Suite struct JSONBytesTests {
    private func value(_ bytes: [UInt8]) -> String {
        var out = ByteBuffer()
        JSONBytes.appendValue(ByteBuffer(bytes: bytes), to: &out)
        return String(buffer: out)
    }

    @Test func plainTextIsQuotedAsIs() {
        #expect(value(Array("hello".utf8)) == "\"hello\"")
        #expect(value([]) == "\"\"")
        #expect(value(Array("añb €".utf8)) == "\"añb €\"")
    }

    @Test func escapesQuotesBackslashesAndControlCharacters() {
        #expect(value(Array("a\"b\\c\nd\re\tf".utf8)) == #""a\"b\\c\nd\re\tf""#)
        #expect(value([0x01, 0x1F, 0x41]) == #""\u0001\u001fA""#)
        // Whatever is written parses back to the original text.
        let original = "q\"\\\u{1}\n\t€x"
        var out = ByteBuffer()
        JSONBytes.appendValue(ByteBuffer(string: original), to: &out)
        let decoded = try? JSONSerialization.jsonObject(with: Data(out.readableBytesView), options: [.fragmentsAllowed]) as? String
        #expect(decoded == original)
    }

    @Test func bytesThatAreNotTextBecomeBase64() {
        #expect(value([0x61, 0x00, 0x62]) == #"{"base64":"YQBi"}"#)
        #expect(value([0xFF, 0xFE]) == #"{"base64":"//4="}"#)
    }

    @Test func keysCarryTheirSeparators() {
        var out = ByteBuffer()
        JSONBytes.appendKey(ByteBuffer(string: "a"), first: true, to: &out)
        JSONBytes.appendValue(ByteBuffer(string: "1"), to: &out)
        JSONBytes.appendKey(ByteBuffer(string: "b\""), first: false, to: &out)
        JSONBytes.appendValue(ByteBuffer(string: "2"), to: &out)
        JSONBytes.appendKey(ByteBuffer(bytes: [0x00]), first: false, to: &out)
        JSONBytes.appendValue(ByteBuffer(string: "3"), to: &out)
        #expect(String(buffer: out) == #""a":"1","b\"":"2","base64:AA==":"3""#)
    }

    private func order(_ names: [String]) -> [Int] {
        let buffers = names.map { ByteBuffer(string: $0) }
        var result: [Int] = []
        JSONBytes.forEachInJSONBOrder(count: buffers.count, name: { buffers[$0] }, body: { result.append($0) })
        return result
    }

    @Test func objectKeysFollowJsonbStorageOrder() {
        // jsonb: shorter keys first, equal lengths bytewise.
        #expect(order(["device", "sensor", "value", "unit", "seq"]) == [4, 3, 2, 0, 1])
        #expect(order(["a", "b", "c"]) == [0, 1, 2])
        #expect(order([]) == [])
        #expect(order(["b", "B", "ab"]) == [1, 0, 2])
        // Names alike in their first eight bytes are told apart by the rest.
        #expect(order(["measurement_b", "measurement_a", "measurement_c"]) == [1, 0, 2])
        #expect(order(["temperature_2", "temperature_1", "x"]) == [2, 1, 0])
    }

    @Test func theOrderIsStableSoTheLaterOfTwoEqualKeysStillWins() {
        #expect(order(["x", "aa", "x"]) == [0, 2, 1])
        let many = (0..<40).map { $0 % 2 == 0 ? "dup" : "k\($0)" }
        let result = order(many)
        let duplicates = result.filter { many[$0] == "dup" }
        #expect(duplicates == duplicates.sorted())
        #expect(result.count == 40 && Set(result).count == 40)
        #expect(result.map { many[$0].utf8.count } == result.map { many[$0].utf8.count }.sorted())
    }
}
