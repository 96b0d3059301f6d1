import ArgumentParser
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging

/// `ferry sandbox up | status | down`: private PostgreSQL and Redis servers for trying Ferry locally.
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Start, inspect or stop private PostgreSQL 15 and Redis 7 servers on free loopback ports.",
        discussion: """
            The servers run from the system's binaries with their files under .ferry/sandbox/. Redis uses AOF (appendfsync everysec) and maxmemory-policy noeviction. When run as root, PostgreSQL runs as the unprivileged `postgres` account, as it requires.
            """,
        subcommands: [Up.self, Status.self, Down.self, Reap.self]
    )

    struct Location: ParsableArguments {
        @Option(name: .customLong("dir"), help: ArgumentHelp("Sandbox directory.", valueName: "path"))
        var directory = ".ferry/sandbox"
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the sandbox servers and write a ferry.yaml that points at them.")

        @OptionGroup var location: Location

        @Option(name: .customLong("write-config"), help: ArgumentHelp("Where to write Ferry's configuration for the sandbox.", valueName: "path"))
        var configPath = "ferry.yaml"

        @Flag(name: .long, help: "Print the result as JSON.")
        var json = false

        @Flag(name: .long, help: "Also start a single-member etcd (for `ferry cluster`).")
        var etcd = false

        func run() async throws {
            try LoggingBootstrap.once(LogSettings())
            let logger = Logger(label: "ferry.sandbox")
            let (sandbox, started) = try await SandboxCommand.ensureUp(location.directory, quiet: json, etcd: etcd, logger: logger)
            let wrote = try SandboxConfigFile.write(sandbox, to: configPath)
            if json {
                Terminal.print(SandboxCommand.json(sandbox, config: wrote ? configPath : nil))
                return
            }
            Terminal.print(started ? "sandbox is up" : "sandbox was already up")
            Terminal.print(SandboxCommand.table(sandbox))
            if wrote {
                Terminal.print("\nwrote \(configPath); try: ferry check")
            } else {
                Terminal.print("\nkept your \(configPath) (not written by the sandbox); the sandbox's settings are in \(sandbox.root)/ferry.yaml")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether the sandbox servers run, with their ports and pids.")

        @OptionGroup var location: Location

        @Flag(name: .long, help: "Print the result as JSON.")
        var json = false

        func run() async throws {
            guard let sandbox = Sandbox.load(root: location.directory) else {
                if json {
                    Terminal.print("{\"running\":false,\"servers\":[]}")
                } else {
                    Terminal.print("no sandbox in \(location.directory); start one with `ferry sandbox up`")
                }
                return
            }
            Terminal.print(json ? SandboxCommand.json(sandbox, config: nil) : SandboxCommand.table(sandbox))
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the sandbox servers and delete their files.")

        @OptionGroup var location: Location

        @Flag(name: .long, help: "Stop the servers but keep their data for the next `up`.")
        var keepData = false

        func run() async throws {
            guard let sandbox = Sandbox.load(root: location.directory) else {
                Terminal.print("no sandbox in \(location.directory); nothing to stop")
                return
            }
            await sandbox.stop()
            let leftovers = [sandbox.postgres?.isRunning == true ? "postgres" : nil, sandbox.redis?.isRunning == true ? "redis" : nil].compactMap {
                $0
            }
            guard leftovers.isEmpty else {
                throw FerryError(
                    .sandbox, "could not stop: \(leftovers.joined(separator: ", "))",
                    fix: "look at the pids with `ferry sandbox status` and stop them by hand")
            }
            if !keepData { sandbox.removeFiles() }
            Terminal.print(keepData ? "sandbox stopped; data kept in \(sandbox.root)" : "sandbox stopped and removed")
        }
    }

    /// Stops sandboxes whose owning test process died; used by `scripts/test.sh`.
    struct Reap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop and delete sandboxes left by test processes that died.",
            shouldDisplay: false
        )

        @Option(name: .customLong("under"), help: "Directory holding test sandboxes.")
        var base = ".ferry/test"

        func run() async throws {
            await Sandbox.reapOrphans(under: FileManager.default.currentDirectoryPath + "/" + base)
        }
    }

    /// Starts the sandbox in `directory`, or restarts the stopped servers of one already there; returns it and
    /// whether it was started from nothing.
    static func ensureUp(_ directory: String, quiet: Bool, etcd: Bool = false, logger: Logger) async throws -> (Sandbox, started: Bool) {
        if var existing = Sandbox.load(root: directory), existing.isAnyRunning {
            if existing.postgres?.isRunning == false { try await existing.postgres?.start() }
            if existing.redis?.isRunning == false { try await existing.redis?.start() }
            if existing.etcd?.isRunning == false { try await existing.etcd?.start() }
            if etcd && existing.etcd == nil {
                let instance = try EtcdInstance.create(directory: existing.root + "/etcd")
                existing.etcd = instance
                try existing.save()
                try await instance.start()
            }
            return (existing, false)
        }
        if !quiet { Terminal.writeStandardError("starting the sandbox in \(directory) …\n") }
        var options = Sandbox.Options()
        options.etcd = etcd
        return (try await Sandbox.start(root: directory, options: options, logger: logger), true)
    }

    static func table(_ sandbox: Sandbox) -> String {
        var table = TextTable(["SERVER", "STATE", "ADDRESS", "PID", "URL"])
        if let pg = sandbox.postgres {
            table.add(["postgres", state(pg.isRunning), "127.0.0.1:\(pg.port)", pg.pid.map(String.init) ?? "-", pg.url])
        }
        if let redis = sandbox.redis {
            table.add(["redis", state(redis.isRunning), "127.0.0.1:\(redis.port)", redis.pid.map(String.init) ?? "-", redis.url])
        }
        if let etcd = sandbox.etcd {
            table.add(["etcd", state(etcd.isRunning), "127.0.0.1:\(etcd.clientPort)", etcd.pid.map(String.init) ?? "-", etcd.url])
        }
        return table.render()
    }

    private static func state(_ running: Bool) -> String {
        running ? Terminal.paint("running", .green) : Terminal.paint("stopped", .red)
    }

    static func json(_ sandbox: Sandbox, config: String?) -> String {
        var servers: [String] = []
        if let pg = sandbox.postgres {
            servers.append(
                "{\"server\":\"postgres\",\"running\":\(pg.isRunning),\"host\":\"127.0.0.1\",\"port\":\(pg.port),\"pid\":\(pg.pid.map(String.init) ?? "null"),\"url\":\(JSONText.string(pg.url)),\"directory\":\(JSONText.string(pg.directory))}"
            )
        }
        if let redis = sandbox.redis {
            servers.append(
                "{\"server\":\"redis\",\"running\":\(redis.isRunning),\"host\":\"127.0.0.1\",\"port\":\(redis.port),\"pid\":\(redis.pid.map(String.init) ?? "null"),\"url\":\(JSONText.string(redis.url)),\"directory\":\(JSONText.string(redis.directory))}"
            )
        }
        if let etcd = sandbox.etcd {
            servers.append(
                "{\"server\":\"etcd\",\"running\":\(etcd.isRunning),\"host\":\"127.0.0.1\",\"port\":\(etcd.clientPort),\"pid\":\(etcd.pid.map(String.init) ?? "null"),\"url\":\(JSONText.string(etcd.url)),\"directory\":\(JSONText.string(etcd.directory))}"
            )
        }
        return
            "{\"running\":\(sandbox.isAnyRunning),\"root\":\(JSONText.string(sandbox.root)),\"config\":\(config.map(JSONText.string) ?? "null"),\"servers\":[\(servers.joined(separator: ","))]}"
    }
}

/// Writes the sandbox's configuration: always into the sandbox directory, and to the requested path unless a
/// file there was written by someone else.
enum SandboxConfigFile {
    static let marker = "# Written by `ferry sandbox up`"

    /// Returns whether `path` was written.
    static func write(_ sandbox: Sandbox, to path: String) throws -> Bool {
        let text = sandbox.configurationYAML()
        // It holds both passwords: private (0600) from the moment it exists.
        try FileSystem.write(text, to: sandbox.root + "/ferry.yaml", mode: 0o600)
        if let existing = try? String(contentsOfFile: path, encoding: .utf8), !existing.hasPrefix(marker) {
            return false
        }
        do {
            try FileSystem.write(text, to: path, mode: 0o600)
        } catch {
            throw FerryError(.sandbox, "cannot write \(path)", fix: "check the directory's permissions or pass --write-config", underlying: error)
        }
        return true
    }
}
