package import FerryCore
package import FerryPostgresNode
import Foundation
package import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Private PostgreSQL, Redis and (on request) etcd servers on free loopback ports, for `ferry sandbox`, the demo and every test.
///
/// State lives in `<root>/sandbox.json`, so a later process (`ferry sandbox down`) can stop what an earlier one
/// started. A sandbox owned by a test process records that process; ``reapOrphans(under:)`` stops sandboxes whose
/// owner died without cleaning up.
package struct Sandbox: Sendable, Codable {
    package struct Options: Sendable {
        package var postgres = true
        package var redis = true
        /// Redis with `requirepass`. Default true.
        package var redisPassword = true
        /// PostgreSQL with fsync. Tests turn it off for speed; a killed process loses nothing either way
        /// because the OS keeps written pages.
        package var durable = true
        package var redisConfiguration: [String] = []
        package var postgresSettings: [String: String] = [:]
        /// Also a single-member etcd (for the HA cluster). Default false.
        package var etcd = false

        package init() {}
    }

    /// The sandbox directory (`.ferry/sandbox` for the CLI).
    package var root: String
    /// Where PostgreSQL's files are: `root`, or a directory the `postgres` account can reach when `root` is under
    /// a private home directory.
    package var serverRoot: String
    /// The test process that owns this sandbox; 0 for one started by `ferry sandbox up`.
    package var ownerPID: Int32
    package var postgres: PostgresInstance?
    package var redis: RedisInstance?
    package var etcd: EtcdInstance?

    package static let stateFileName = "sandbox.json"

    /// Creates and starts the servers. On failure, whatever was started is stopped again.
    package static func start(root: String, options: Options = .init(), owned: Bool = false, logger: Logger) async throws(FerryError) -> Sandbox {
        let root = FileSystem.absolute(root)
        if let existing = load(root: root), existing.ownerPID != 0, !ProcessTable.isAlive(existing.ownerPID) {
            // Left behind by a process that died (a killed test or benchmark): clear it.
            await existing.stop()
            existing.removeFiles()
        }
        if let existing = load(root: root), existing.isAnyRunning {
            throw FerryError(.sandbox, "a sandbox is already running in \(root)", fix: "use it, or stop it first with `ferry sandbox down`")
        }
        try FileSystem.makeDirectory(root)
        let serverRoot = try Self.reachableServerRoot(for: root)
        var sandbox = Sandbox(root: root, serverRoot: serverRoot, ownerPID: owned ? getpid() : 0)
        do {
            if options.postgres {
                let instance = try await PostgresInstance.create(
                    directory: serverRoot + "/postgres",
                    durable: options.durable,
                    settings: options.postgresSettings,
                    cache: Self.cacheDirectory(serverRoot: serverRoot, root: root),
                    logger: logger
                )
                sandbox.postgres = instance
                try sandbox.save()
                try await instance.start()
            }
            if options.redis {
                let instance = try RedisInstance.create(
                    directory: root + "/redis", password: options.redisPassword, extraConfiguration: options.redisConfiguration)
                sandbox.redis = instance
                try sandbox.save()
                try await instance.start()
            }
            if options.etcd {
                let instance = try EtcdInstance.create(directory: root + "/etcd")
                sandbox.etcd = instance
                try sandbox.save()
                try await instance.start()
            }
            try sandbox.save()
        } catch {
            await sandbox.stop()
            throw error
        }
        return sandbox
    }

    /// Runs `body` with a fresh sandbox and always stops it afterwards, also when `body` throws.
    package static func with<T>(
        root: String? = nil,
        options: Options = .init(),
        logger: Logger = Logger(label: "ferry.sandbox"),
        _ body: (Sandbox) async throws -> T
    ) async throws -> T {
        let base = FileSystem.absolute(".ferry/test")
        await reapOrphans(under: base)
        let directory = root ?? base + "/" + Self.uniqueName()
        let sandbox = try await start(root: directory, options: options, owned: true, logger: logger)
        do {
            let result = try await body(sandbox)
            await sandbox.stop()
            sandbox.removeFiles()
            return result
        } catch {
            await sandbox.stop()
            sandbox.removeFiles()
            throw error
        }
    }

    /// Stops every server of this sandbox (state file stays, so `status` shows them stopped).
    package func stop() async {
        async let pg: Void = postgres?.stop() ?? ()
        async let redis: Void = redis?.stop() ?? ()
        async let etcd: Void = etcd?.stop() ?? ()
        _ = await (pg, redis, etcd)
    }

    /// Deletes the sandbox's files (after ``stop()``).
    package func removeFiles() {
        FileSystem.remove(root)
        if serverRoot != root { FileSystem.remove(serverRoot) }
    }

    package var isAnyRunning: Bool { (postgres?.isRunning ?? false) || (redis?.isRunning ?? false) || (etcd?.isRunning ?? false) }

    /// Loads the sandbox recorded in `root`, if any.
    package static func load(root: String) -> Sandbox? {
        let path = FileSystem.absolute(root) + "/" + stateFileName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(Sandbox.self, from: data)
    }

    package func save() throws(FerryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else {
            throw FerryError(.sandbox, "cannot encode the sandbox state")
        }
        try FileSystem.write(text + "\n", to: root + "/" + Self.stateFileName, mode: 0o600)
    }

    /// Stops and deletes sandboxes under `base` whose owning test process is gone.
    package static func reapOrphans(under base: String) async {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for entry in entries {
            let directory = base + "/" + entry
            guard let sandbox = load(root: directory) else { continue }
            guard sandbox.ownerPID != 0, !ProcessTable.isAlive(sandbox.ownerPID) else { continue }
            await sandbox.stop()
            sandbox.removeFiles()
        }
    }

    /// A configuration file for Ferry that points at this sandbox.
    package func configurationYAML(extra: String = "") -> String {
        var text = """
            # Written by `ferry sandbox up`: Ferry's configuration for the local sandbox servers.
            # Passwords are the sandbox's own, generated at start; this file is for local use only.

            """
        if let postgres {
            text += """

                postgres:
                  host: 127.0.0.1
                  port: \(postgres.port)
                  database: \(postgres.database)
                  user: \(postgres.user)
                  password: "\(postgres.password)"
                  tls: disable

                """
        }
        if let redis {
            text += """

                redis:
                  host: 127.0.0.1
                  port: \(redis.port)

                """
            if let password = redis.password { text += "  password: \"\(password)\"\n" }
        }
        return text + extra
    }

    static func uniqueName() -> String {
        var generator = SystemRandomNumberGenerator()
        return "sb-\(getpid())-\(String(generator.next() & 0xFFFF_FFFF, radix: 36))"
    }

    /// `root` when the PostgreSQL account can reach it; otherwise a directory under `/var/tmp` (PostgreSQL must
    /// run unprivileged, and a root-owned home directory is usually closed to other accounts).
    package static func reachableServerRoot(for root: String) throws(FerryError) -> String {
        guard let owner = SystemUser.forPostgres(), !FileSystem.canTraverse(root, as: owner) else { return root }
        var hasher = Hasher()
        hasher.combine(root)
        let base = "/var/tmp/ferry-sandboxes"
        try FileSystem.makeDirectory(base)
        chmod(base, 0o1777)
        let directory =
            base + "/" + String(UInt(bitPattern: hasher.finalize()), radix: 36) + "-"
            + (root.split(separator: "/").last.map(String.init) ?? "sandbox")
        try FileSystem.makeDirectory(directory)
        return directory
    }

    /// `binary`, or a copy of it in `serverRoot` when PostgreSQL's account cannot run it where it is (a checkout under
    /// a private home directory): archive and restore commands run as that account.
    package static func reachableBinary(_ binary: String, serverRoot: String) throws(FerryError) -> String {
        guard let owner = SystemUser.forPostgres(), !FileSystem.canTraverse(binary, as: owner) else { return binary }
        let copy = serverRoot + "/ferry"
        FileSystem.remove(copy)
        do {
            try FileManager.default.copyItem(atPath: binary, toPath: copy)
        } catch {
            throw FerryError(
                .sandbox, "cannot copy \(binary) to \(copy): \(error.localizedDescription)", fix: "check free disk space in \(serverRoot)")
        }
        chmod(copy, 0o755)
        return copy
    }

    /// Creates `path` (and its parents) owned by the account PostgreSQL runs as, mode 0700: a data directory
    /// for a server started by another tool (the HA benchmark's Patroni).
    package static func makeServerDirectory(_ path: String) throws(FerryError) { try FileSystem.makeServerDirectory(path) }

    /// Template cache shared by every sandbox of this checkout.
    package static func cacheDirectory(serverRoot: String, root: String) -> String {
        if serverRoot == root {
            // `.ferry/test/<name>` and `.ferry/sandbox` share `.ferry/cache`.
            var components = root.split(separator: "/", omittingEmptySubsequences: false)
            if let ferry = components.lastIndex(where: { $0 == ".ferry" }) {
                components = Array(components[...ferry])
                return components.joined(separator: "/") + "/cache"
            }
            return root + "/cache"
        }
        return "/var/tmp/ferry-sandboxes/cache"
    }
}
