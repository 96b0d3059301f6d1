import ArgumentParser
import FerryCore
import Foundation
import Logging
import Synchronization

/// Options every command that reads the configuration accepts.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("Configuration file (default: ./ferry.yaml, or FERRY_CONFIG).", valueName: "path"))
    var configPath: String?

    @Option(name: .customLong("env-file"), help: ArgumentHelp("Read variables from this file (default: ./.env when present).", valueName: "path"))
    var envFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: LOG_LEVEL or info).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text (readable lines) or json (one object per line).")
    var logFormat: String?

    @Option(name: .customLong("log-file"), help: ArgumentHelp("Also append log lines to this file, e.g. logs/sync.log.", valueName: "path"))
    var logFile: String?

    /// Where the configuration comes from (also what SIGHUP reloads).
    var loader: ConfigLoader { ConfigLoader(explicitPath: configPath, envFile: envFile) }

    /// Loads the configuration, applies the logging flags, and bootstraps logging once.
    func load() throws -> ConfigLoader.Loaded {
        var loaded = try loader.load()
        try applyLogging(to: &loaded.configuration.log)
        try bootstrapLogging(loaded.configuration.log)
        return loaded
    }

    /// Logging only, for commands that need no configuration file.
    func bootstrapLoggingOnly() throws {
        var settings = LogSettings()
        if let level = ProcessInfo.processInfo.environment["LOG_LEVEL"], let parsed = LogSettings.Level(rawValue: level.lowercased()) {
            settings.level = parsed
        }
        try applyLogging(to: &settings)
        try bootstrapLogging(settings)
    }

    private func applyLogging(to settings: inout LogSettings) throws {
        if let logLevel {
            guard let level = LogSettings.Level(rawValue: logLevel.lowercased()) else {
                throw ValidationError(
                    "--log-level: \"\(logLevel)\" is not a level; use one of \(LogSettings.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.level = level
        }
        if let logFormat {
            guard let format = LogSettings.Format(rawValue: logFormat.lowercased()) else {
                throw ValidationError("--log-format: \"\(logFormat)\" is not a format; use text or json")
            }
            settings.format = format
        }
        if let logFile { settings.file = logFile }
    }

    private func bootstrapLogging(_ settings: LogSettings) throws {
        try LoggingBootstrap.once(settings)
    }
}

/// swift-log may be bootstrapped once per process.
enum LoggingBootstrap {
    private static let sink = Mutex<LogSink?>(nil)

    static func once(_ settings: LogSettings) throws {
        try sink.withLock { sink in
            guard sink == nil else { return }
            sink = try LoggingSetup.bootstrap(settings)
        }
    }
}
