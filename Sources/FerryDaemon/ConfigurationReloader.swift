public import FerryCore
public import Logging
public import ServiceLifecycle
import UnixSignals

/// Reloads the configuration on SIGHUP and hands it to `apply`; a configuration with problems is refused (the
/// running one stays) and the problems are logged.
public struct ConfigurationReloader: Service {
    let loader: ConfigLoader
    let logger: Logger
    let apply: @Sendable (FerryConfiguration) -> Void

    public init(loader: ConfigLoader, logger: Logger, apply: @escaping @Sendable (FerryConfiguration) -> Void) {
        self.loader = loader
        self.logger = logger
        self.apply = apply
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                apply(try loader.load().configuration)
            } catch {
                logger.error("configuration not reloaded; the running one stays", metadata: ["ferry.error": "\(error)"])
            }
        }
    }
}
