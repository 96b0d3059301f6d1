import Logging

/// Installs Ferry's log handler for the whole process, once, at start-up.
package enum LoggingSetup {
    /// Bootstraps swift-log with `settings`. Returns the sink so callers can keep it alive.
    @discardableResult
    package static func bootstrap(_ settings: LogSettings) throws(FerryError) -> LogSink {
        let sink = try LogSink(file: settings.file)
        let level = settings.level.loggerLevel
        let format = settings.format
        LoggingSystem.bootstrap { label in
            FerryLogHandler(label: label, level: level, format: format, sink: sink)
        }
        return sink
    }
}
