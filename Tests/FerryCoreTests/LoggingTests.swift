import FerryCore
import Foundation
import Logging
import Testing

@Suite("Logging")
struct LoggingTests {
    @Test func jsonLinesGoToTheFile() throws {
        let path = NSTemporaryDirectory() + "ferry-log-\(UUID().uuidString)/sub/sync.log"
        let sink = try LogSink(file: path, toStandardError: false)
        var logger = Logger(label: "ferry.test") { label in FerryLogHandler(label: label, level: .info, format: .json, sink: sink) }
        logger[metadataKey: "ferry.pipeline"] = "ventas"
        logger.debug("hidden")
        logger.info("batch applied", metadata: ["rows": "500", "quote": "a\"b"])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect(object?["msg"] as? String == "batch applied")
        #expect(object?["level"] as? String == "info")
        #expect(object?["ferry.pipeline"] as? String == "ventas")
        #expect(object?["quote"] as? String == "a\"b")
        #expect((object?["ts"] as? String)?.hasSuffix("Z") == true)
    }

    @Test func textLinesAreReadable() throws {
        let path = NSTemporaryDirectory() + "ferry-log-\(UUID().uuidString).log"
        let sink = try LogSink(file: path, toStandardError: false)
        let logger = Logger(label: "ferry.test") { label in FerryLogHandler(label: label, level: .trace, format: .text, sink: sink) }
        logger.warning("redis restarted", metadata: ["ferry.address": "127.0.0.1:6379"])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("WARNING  ferry.test: redis restarted ferry.address=127.0.0.1:6379"))
    }

    /// A name from outside cannot forge a log line or drive the terminal: control characters are escaped.
    @Test func aTextLineIsOneLineWhateverTheNamesHold() throws {
        let path = NSTemporaryDirectory() + "ferry-log-\(UUID().uuidString).log"
        let sink = try LogSink(file: path, toStandardError: false)
        let logger = Logger(label: "ferry.test") { label in FerryLogHandler(label: label, level: .trace, format: .text, sink: sink) }
        let forged = "orders\n2026-12-05T00:00:00.000Z CRITICAL ferry.test: forged\r\u{1B}[31m\u{0}"
        logger.warning("stream \(forged) stalled", metadata: ["ferry.stream": "\(forged)"])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 1)
        #expect(text.contains("stream orders\\n2026-12-05T00:00:00.000Z CRITICAL ferry.test: forged\\r\\x1b[31m\\x00 stalled"))
        #expect(!text.contains("\u{1B}") && !text.contains("\r") && !text.contains("\u{0}"))
    }

    @Test func printableTextEscapesControlsAndInvalidBytes() {
        #expect(PrintableText.escaped("plain ünïcode") == "plain ünïcode")
        #expect(PrintableText.escaped("a\tb\u{7F}\u{85}\u{2028}") == "a\\tb\\x7f\\x85\\u{2028}")
        #expect(PrintableText.escaped(bytes: Array("bad".utf8) + [0xFF, 0xFE] + Array("é".utf8) + [0]) == "bad\\xff\\xfeé\\x00")
        #expect(PrintableText.escaped(bytes: [0xE2, 0x82]) == "\\xe2\\x82", "a truncated sequence")
        #expect(PrintableText.textProblem(Array("fine: ✓".utf8)) == nil)
        #expect(PrintableText.textProblem(Array("nul".utf8) + [0] + Array("x".utf8)) == "contains a NUL byte (at byte 3)")
        #expect(PrintableText.textProblem(Array("ab".utf8) + [0xC3]) == "is not valid UTF-8 (byte 0xc3 at byte 2)")
        #expect(PrintableText.textProblem([0xED, 0xA0, 0x80]) != nil, "a UTF-16 surrogate is not UTF-8")
    }

    @Test func unwritableLogFileIsAConfigurationError() {
        #expect(throws: FerryError.self) { _ = try LogSink(file: "/proc/ferry-cannot-write/x.log", toStandardError: false) }
    }
}
