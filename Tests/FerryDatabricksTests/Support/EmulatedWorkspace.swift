import DatabricksEmulator
import FerryCore
import FerryDatabricks

/// A started emulator with the volume `/Volumes/main/default/landing` and the token `dapi-ferry-test-token`, and
/// clients of it whose retries wait milliseconds, not seconds.
struct EmulatedWorkspace {
    static let token = "dapi-ferry-test-token"
    static let volume = "/Volumes/main/default/landing"

    let emulator: DatabricksEmulator

    func configuration(
        _ authentication: DatabricksConfiguration.Authentication = .token(Secret(token)), retryBase: Duration = .milliseconds(20)
    ) throws -> DatabricksConfiguration {
        var configuration = try DatabricksConfiguration(host: emulator.host, authentication: authentication)
        configuration.retry.base = retryBase
        return configuration
    }

    /// Runs `body` with a client of the workspace (its own HTTP client, shut down after).
    func withClient<T>(
        _ configuration: DatabricksConfiguration? = nil, _ body: (DatabricksFilesClient) async throws -> T
    ) async throws -> T {
        let client = DatabricksFilesClient(configuration: try configuration ?? self.configuration(), logger: emulator.logger)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Runs `body` with a fresh emulator, stopped after.
    static func with<T>(_ body: (EmulatedWorkspace) async throws -> T) async throws -> T {
        let emulator = DatabricksEmulator()
        try await emulator.start()
        emulator.addToken(token)
        emulator.createVolume(volume)
        do {
            let result = try await body(EmulatedWorkspace(emulator: emulator))
            await emulator.stop()
            return result
        } catch {
            await emulator.stop()
            throw error
        }
    }

    /// Runs `body` with a fresh emulator and a client of it.
    static func withClient<T>(_ body: (DatabricksEmulator, DatabricksFilesClient) async throws -> T) async throws -> T {
        try await with { workspace in try await workspace.withClient { try await body(workspace.emulator, $0) } }
    }
}

/// The FerryError `body` throws; a test fails when it throws none or another error.
func ferryError(_ body: () async throws -> Void) async -> FerryError? {
    do {
        try await body()
        return nil
    } catch let error as FerryError {
        return error
    } catch {
        return nil
    }
}
