import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging

/// A private PostgreSQL that archives its WAL through `ferry wal push` into a repository beside it, both (and a copy
/// of the ferry binary, when PostgreSQL's account cannot reach the built one) where PostgreSQL's account can reach
/// them: archive_command and restore_command run as that account.
struct ArchivingServer {
    let instance: PostgresInstance
    let repository: String
    /// The ferry binary PostgreSQL's account can run.
    let binary: String
    /// Where restored data directories may go (reachable by PostgreSQL's account).
    let servers: String
    private let root: String

    static func start(_ name: String, settings: [String: String] = [:]) async throws -> ArchivingServer {
        let logger = Logger(label: "ferry.test.\(name)")
        let root = FerryProcess.packageRoot + "/.ferry/test/\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let servers = try Sandbox.reachableServerRoot(for: root)
        let repository = servers + "/repository"
        try FileManager.default.createDirectory(atPath: repository, withIntermediateDirectories: true)
        var binary = FerryProcess.binary
        if let owner = SystemUser.forPostgres() {
            FileSystem.chownRecursive(repository, to: owner)
            if !FileSystem.canTraverse(binary, as: owner) {
                binary = servers + "/ferry"
                try FileManager.default.copyItem(atPath: FerryProcess.binary, toPath: binary)
            }
        }
        var all = [
            "archive_mode": "on", "archive_command": "'\(binary) wal push %p --repository \(repository)'", "wal_keep_size": "'512MB'",
        ]
        all.merge(settings) { $1 }
        let instance = try await PostgresInstance.create(
            directory: servers + "/node1", settings: all, cache: Sandbox.cacheDirectory(serverRoot: servers, root: root), logger: logger)
        try await instance.start()
        return ArchivingServer(instance: instance, repository: repository, binary: binary, servers: servers, root: root)
    }

    /// Stops the server and removes everything.
    func stop() async {
        await instance.stop()
        try? FileManager.default.removeItem(atPath: root)
        if servers != root { try? FileManager.default.removeItem(atPath: servers) }
    }

    /// Runs `body`, then stops the server whatever happened.
    static func with(_ name: String, settings: [String: String] = [:], _ body: (ArchivingServer) async throws -> Void) async throws {
        let server = try await start(name, settings: settings)
        do {
            try await body(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}
