package import FerryCore
package import Logging
package import ServiceLifecycle
import UnixSignals

/// Reloads the configuration on SIGHUP and hands it to `apply`; a configuration with problems is refused (the
/// running one stays) and the problems are logged.
package struct ConfigurationReloader: Service {
    let loader: ConfigLoader
    let logger: Logger
    let apply: @Sendable (FerryConfiguration) -> Void

    package init(loader: ConfigLoader, logger: Logger, apply: @escaping @Sendable (FerryConfiguration) -> Void) {
        self.loader = loader
        self.logger = logger
        self.apply = apply
    }

    package func run() async throws {
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
