package import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A swift-log handler that writes readable lines (`text`) or one JSON object per line (`json`).
package struct FerryLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    package var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogSettings.Format
    private let sink: LogSink

    package init(label: String, level: Logger.Level, format: LogSettings.Format, sink: LogSink) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let timestamp = Self.timestamp()
        switch format {
        case .text:
            // One event, one line: names from outside (a stream called "x\n… ERROR …") cannot forge another.
            var line = "\(timestamp) \(levelText(event.level)) \(label): \(PrintableText.escaped(event.message.description))"
            for key in merged.keys.sorted() { line += " \(key)=\(PrintableText.escaped(merged[key]!.description))" }
            sink.write(line + "\n")
        case .json:
            var line = "{\"ts\":\"\(timestamp)\",\"level\":\"\(event.level.rawValue)\",\"logger\":"
            JSONText.appendString(label, to: &line)
            line += ",\"msg\":"
            JSONText.appendString("\(event.message)", to: &line)
            for key in merged.keys.sorted() {
                line += ","
                JSONText.appendString(key, to: &line)
                line += ":"
                JSONText.appendMetadata(merged[key]!, to: &line)
            }
            sink.write(line + "}\n")
        }
    }

    private func levelText(_ level: Logger.Level) -> String {
        let name = level.rawValue.uppercased()
        let padded = name + String(repeating: " ", count: max(0, 8 - name.count))
        guard sink.isTerminal else { return padded }
        let color: String
        switch level {
        case .trace, .debug: color = "2"
        case .info, .notice: color = "32"
        case .warning: color = "33"
        case .error, .critical: color = "31"
        }
        return "\u{1B}[\(color)m\(padded)\u{1B}[0m"
    }

    /// UTC time with milliseconds, RFC 3339.
    static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let millis = Int32(spec.tv_nsec / 1_000_000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }
}

extension LogSettings.Level {
    /// The swift-log level with the same name.
    package var loggerLevel: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}
