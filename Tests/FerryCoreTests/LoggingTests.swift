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

    @Test func unwritableLogFileIsAConfigurationError() {
        #expect(throws: FerryError.self) { _ = try LogSink(file: "/proc/ferry-cannot-write/x.log", toStandardError: false) }
    }
}
