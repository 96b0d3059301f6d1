import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerrySandbox
import Foundation
package import Logging
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

/// Ferry's base backups beside pgBackRest (Debian's `pgbackrest`, 2.45) in one run, on one PostgreSQL 15 whose
/// `archive_command` archives every WAL segment into both repositories: full backups with each compression, an
/// incremental after seconds of pgbench, and a restore to the latest WAL until the server is promoted, each with the
/// same parallelism for both tools (pgBackRest's `process-max`, Ferry's `--workers`).
///
/// Both tools run as the command-line programs a user runs, timed from start to exit. Each round alternates which
/// tool goes first (nothing is dropped from the page cache; the alternation is what keeps it fair), runs a
/// `CHECKPOINT` before each timed backup (neither tool pays for pgbench's or the other's dirty pages), and lists
/// the tools in `archive_command` in the round's order. Before each timed step, memory as large as what the step
/// writes is touched and freed: on a VM that hands freed memory back to its host (virtio-balloon free page
/// reporting), writing into memory freed seconds ago costs a fraction of writing into memory the host took back
/// (1.6 GB into the page cache: 0.3 s against 3.9 s here), and which tool came after a deletion would decide the
/// figure otherwise.
package struct BackupBenchmark: Sendable {
    package struct Options: Sendable {
        /// pgbench's scale: 100 is about 1.5 GB of data directory.
        package var scale = 100
        package var rounds = 2
        /// Each parallelism measured: pgBackRest's `process-max` and Ferry's `--workers`, the same for both.
        package var workers = [1, 2]
        /// The compressions of the full backups (Ferry's names); incrementals use the first.
        package var compressions = ["zstd", "lz4"]
        /// pgbench seconds (2 clients) before each incremental.
        package var pgbenchSeconds = 10
        package var skipPeer = false
        /// The `ferry` that is measured (backups and restores run as its subprocesses) and that `archive_command` runs.
        package var executable: String
        package var pgbackrest = "/usr/bin/pgbackrest"
        /// postgresql.conf settings for the server (e.g. shared_buffers).
        package var postgresSettings: [String: String] = [:]

        package init(executable: String) { self.executable = executable }
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    static let stanza = "bench"

    /// pgBackRest's name for one of Ferry's compressions.
    static func peerCompression(_ name: String) -> String {
        switch name {
        case "zstd": "zst"
        case "gzip": "gz"
        default: name
        }
    }

    /// The run's PostgreSQL, repositories and binaries.
    struct Setup: Sendable {
        var instance: PostgresInstance
        var root: String
        var serverRoot: String
        var ferryRepository: String
        var peerRoot: String
        var peerConfig: String
        /// Restored data directories go here (PostgreSQL's account creates entries in it).
        var restoreRoot: String
        var socketDirectory: String
        /// The data directory's bytes a backup holds (without pg_wal), for the memory touched before a restore.
        var dataBytes: Int64
        /// The ferry binary PostgreSQL's account can run.
        var reachableFerry: String
        var owner: SystemUser?
        var binaries: PostgresBinaries

        var peerRepository: String { peerRoot + "/repo" }
    }

    /// One timed backup.
    struct Taken: Sendable {
        var seconds: Double
        /// Bytes of the backup's directory in its repository (data and manifest; the WAL archive apart).
        var stored: Int64
        /// What the tool itself reports as stored.
        var reported: Int64
        /// Ferry's: the blocks it stored and the data directory's bytes it read.
        var blocks: Int?
        var bytes: Int64?
    }

    enum Tool: Sendable, Equatable {
        case ferry
        case peer
    }

    package func run(root: String, progress: @escaping @Sendable (String) -> Void) async throws -> [BenchmarkFigure] {
        if !options.skipPeer, !FileManager.default.isExecutableFile(atPath: options.pgbackrest) {
            throw FerryError(
                .invalidInput, "\(options.pgbackrest) not found", fix: "install Debian's pgbackrest (`scripts/setup.sh bench`), or pass --skip-peer")
        }
        let setup = try await prepare(root: FileSystem.absolute(root), progress: progress)
        do {
            let figures = try await measure(setup, progress: progress)
            await Self.stopServers(under: setup.restoreRoot, binaries: setup.binaries)
            await setup.instance.stop()
            Self.removeAll(setup)
            return figures
        } catch {
            await Self.stopServers(under: setup.restoreRoot, binaries: setup.binaries)
            await setup.instance.stop()
            progress("the benchmark failed; its files stay in \(setup.serverRoot) (pgBackRest's log in \(setup.peerRoot)/log)")
            throw error
        }
    }

    // MARK: Setup

    private func prepare(root: String, progress: @Sendable (String) -> Void) async throws -> Setup {
        var setup = try await createServer(root: root, progress: progress)
        do {
            try writePeerConfig(setup)
            if !options.skipPeer {
                let created = try await ProcessRunner.run(
                    options.pgbackrest, ["--config=\(setup.peerConfig)", "--stanza=\(Self.stanza)", "stanza-create"], as: setup.owner)
                guard created.succeeded else {
                    throw FerryError(.server, "pgbackrest stanza-create failed: \(created.standardError.trimmed) \(created.standardOutput.trimmed)")
                }
            }
            progress("pgbench -i -s \(options.scale)")
            let clock = ContinuousClock()
            let start = clock.now
            try await pgbench(setup, ["-i", "-s", "\(options.scale)", "-q"])
            try await sql(setup.instance.endpoint, "CHECKPOINT")
            progress(String(format: "  %.0f s; waiting until its WAL is archived by both tools", (clock.now - start).seconds))
            try await switchAndWaitForArchive(setup, timeout: .seconds(3600))
            let data = setup.instance.dataDirectory
            setup.dataBytes = Self.size(of: data) - Self.size(of: data + "/pg_wal")
            progress(String(format: "  data directory %.0f MB without pg_wal", Double(setup.dataBytes) / 1e6))
        } catch {
            await setup.instance.stop()
            throw error
        }
        return setup
    }

    /// Creates the directories and starts PostgreSQL.
    private func createServer(root: String, progress: @Sendable (String) -> Void) async throws -> Setup {
        let binaries = try PostgresBinaries.locate()
        let serverRoot = try Sandbox.reachableServerRoot(for: root)
        // A run killed midway leaves its servers running: stop them before their files go.
        await Self.stopServers(under: serverRoot + "/restored", binaries: binaries)
        await Self.stopServers(under: serverRoot + "/node", binaries: binaries)
        for directory in Set([root, serverRoot]) where FileSystem.exists(directory) {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] { FileSystem.remove(directory + "/" + entry) }
        }
        try FileSystem.makeDirectory(root)
        let owner = SystemUser.forPostgres()
        let ferryRepository = serverRoot + "/ferry-repo"
        let peerRoot = serverRoot + "/pgbackrest"
        let restoreRoot = serverRoot + "/restored"
        let socketDirectory = serverRoot + "/socket"
        for directory in [ferryRepository, peerRoot + "/repo", peerRoot + "/log", peerRoot + "/lock", restoreRoot, socketDirectory] {
            try FileSystem.makeDirectory(directory)
            if let owner { FileSystem.chownRecursive(directory, to: owner) }
        }
        if let owner { FileSystem.chownRecursive(peerRoot, to: owner) }
        var reachableFerry = options.executable
        if let owner, !FileSystem.canTraverse(reachableFerry, as: owner) {
            reachableFerry = serverRoot + "/ferry"
            try FileManager.default.copyItem(atPath: options.executable, toPath: reachableFerry)
            chmod(reachableFerry, 0o755)
        }
        let peerConfig = peerRoot + "/pgbackrest.conf"
        var settings = [
            "archive_mode": "on", "unix_socket_directories": "'\(socketDirectory)'",
            "archive_command": "'\(archiveCommand(first: .ferry, ferry: reachableFerry, repository: ferryRepository, config: peerConfig))'",
        ]
        settings.merge(options.postgresSettings) { $1 }
        progress("PostgreSQL 15 archiving into Ferry's repository\(options.skipPeer ? "" : " and pgBackRest's") (\(serverRoot))")
        let instance = try await PostgresInstance.create(
            directory: serverRoot + "/node", settings: settings, cache: Sandbox.cacheDirectory(serverRoot: serverRoot, root: root), logger: logger)
        try await instance.start()
        return Setup(
            instance: instance, root: root, serverRoot: serverRoot, ferryRepository: ferryRepository, peerRoot: peerRoot, peerConfig: peerConfig,
            restoreRoot: restoreRoot, socketDirectory: socketDirectory, dataBytes: 0, reachableFerry: reachableFerry, owner: owner, binaries: binaries
        )
    }

    /// `ferry wal push` and `pgbackrest archive-push`, `first` first.
    private func archiveCommand(first: Tool, ferry: String, repository: String, config: String) -> String {
        let ferryPush = "\(ferry) wal push %p --repository \(repository)"
        if options.skipPeer { return ferryPush }
        let peerPush = "\(options.pgbackrest) --config=\(config) --stanza=\(Self.stanza) archive-push %p"
        return first == .ferry ? ferryPush + " && " + peerPush : peerPush + " && " + ferryPush
    }

    /// pgBackRest's configuration: everything under the benchmark's directory, synchronous archiving, a fast start
    /// checkpoint (as Ferry's), one process unless a round asks for more; the compression given per backup.
    private func writePeerConfig(_ setup: Setup) throws {
        let endpoint = setup.instance.endpoint
        let text = """
            [global]
            repo1-path=\(setup.peerRepository)
            log-path=\(setup.peerRoot)/log
            lock-path=\(setup.peerRoot)/lock
            log-level-console=warn
            log-level-file=info
            archive-async=n
            start-fast=y
            process-max=1
            compress-type=\(Self.peerCompression(options.compressions.first ?? "zstd"))

            [\(Self.stanza)]
            pg1-path=\(setup.instance.dataDirectory)
            pg1-port=\(endpoint.port)
            pg1-socket-path=\(setup.socketDirectory)
            pg1-user=\(endpoint.user)
            pg1-database=\(endpoint.database)

            """
        try FileSystem.write(text, to: setup.peerConfig, mode: 0o644)
        if let owner = setup.owner { lchown(setup.peerConfig, owner.uid, owner.gid) }
    }

    // MARK: Rounds

    private func measure(_ setup: Setup, progress: @Sendable (String) -> Void) async throws -> [BenchmarkFigure] {
        // [compression][workers] → per-round samples.
        var fullFerry: [String: [Int: [Taken]]] = [:]
        var fullPeer: [String: [Int: [Taken]]] = [:]
        var incrementalFerry: [Int: [Taken]] = [:]
        var incrementalPeer: [Int: [Taken]] = [:]
        var restoreFerry: [Int: [Double]] = [:]
        var restorePeer: [Int: [Double]] = [:]
        let incrementalCompression = options.compressions.first ?? "zstd"
        for round in 1...options.rounds {
            let order: [Tool] = options.skipPeer ? [.ferry] : (round % 2 == 1 ? [.peer, .ferry] : [.ferry, .peer])
            progress("round \(round)/\(options.rounds): \(order.map(Self.name).joined(separator: " first, then "))")
            try await setArchiveOrder(setup, first: order[0])
            // The last compression's fulls start the chain the incrementals build on: the incrementals' compression last.
            for compression in options.compressions.reversed() {
                for workers in options.workers {
                    for tool in order {
                        try await sql(setup.instance.endpoint, "CHECKPOINT")
                        Self.touchMemory(Self.backupMemory)
                        let taken = try await backup(tool, full: true, compression: compression, workers: workers, setup: setup)
                        if tool == .ferry {
                            fullFerry[compression, default: [:]][workers, default: []].append(taken)
                        } else {
                            fullPeer[compression, default: [:]][workers, default: []].append(taken)
                        }
                        progress(Self.line("full \(compression), \(workers) worker(s)", tool, taken))
                    }
                }
            }
            for workers in options.workers {
                let output = try await pgbench(setup, ["-T", "\(options.pgbenchSeconds)", "-c", "2", "-n"])
                let summary = output.split(separator: "\n").filter {
                    $0.hasPrefix("number of transactions actually processed") || $0.hasPrefix("tps")
                }
                progress("  pgbench -T \(options.pgbenchSeconds) -c 2 -n: " + summary.map { $0.trimmed }.joined(separator: ", "))
                try await sql(setup.instance.endpoint, "CHECKPOINT")
                for tool in order {
                    try await sql(setup.instance.endpoint, "CHECKPOINT")
                    Self.touchMemory(Self.backupMemory)
                    let taken = try await backup(tool, full: false, compression: incrementalCompression, workers: workers, setup: setup)
                    if tool == .ferry {
                        incrementalFerry[workers, default: []].append(taken)
                    } else {
                        incrementalPeer[workers, default: []].append(taken)
                    }
                    progress(Self.line("incremental \(incrementalCompression), \(workers) worker(s)", tool, taken))
                }
            }
            try await switchAndWaitForArchive(setup, timeout: .seconds(600))
            let expected = try await history(setup.instance.endpoint)
            for workers in options.workers {
                for tool in order {
                    Self.touchMemory(Int(setup.dataBytes) * 5 / 4 + Self.backupMemory)
                    let (seconds, files) = try await restore(tool, workers: workers, setup: setup, expected: expected)
                    if tool == .ferry {
                        restoreFerry[workers, default: []].append(seconds)
                    } else {
                        restorePeer[workers, default: []].append(seconds)
                    }
                    progress(
                        String(format: "  restore to latest, %d worker(s), %@: %.2f s until promoted", workers, Self.name(tool), seconds)
                            + (files.map { String(format: " (server started after %.2f s)", $0) } ?? ""))
                }
            }
        }

        let peerName = options.skipPeer ? "-" : (try? await peerVersion()) ?? "pgBackRest"
        var figures: [BenchmarkFigure] = []
        for compression in options.compressions {
            for workers in options.workers {
                figures.append(
                    BenchmarkFigure(
                        name: "full backup, \(compression), \(workers) worker(s): time", unit: "s",
                        ferry: (fullFerry[compression]?[workers] ?? []).map(\.seconds), peer: (fullPeer[compression]?[workers] ?? []).map(\.seconds),
                        peerName: peerName, higherIsBetter: false, target: options.skipPeer ? nil : 1.0))
            }
            figures.append(
                BenchmarkFigure(
                    name: "full backup, \(compression): stored", unit: "MB",
                    ferry: options.workers.flatMap { fullFerry[compression]?[$0] ?? [] }.map(\.megabytes),
                    peer: options.workers.flatMap { fullPeer[compression]?[$0] ?? [] }.map(\.megabytes), peerName: peerName, higherIsBetter: false))
        }
        figures.append(
            BenchmarkFigure(
                name: "incremental after \(options.pgbenchSeconds) s of pgbench, \(incrementalCompression): stored", unit: "MB",
                ferry: options.workers.flatMap { incrementalFerry[$0] ?? [] }.map(\.megabytes),
                peer: options.workers.flatMap { incrementalPeer[$0] ?? [] }.map(\.megabytes), peerName: peerName, higherIsBetter: false,
                target: options.skipPeer ? nil : 0.1))
        for workers in options.workers {
            figures.append(
                BenchmarkFigure(
                    name: "incremental, \(incrementalCompression), \(workers) worker(s): time", unit: "s",
                    ferry: (incrementalFerry[workers] ?? []).map(\.seconds), peer: (incrementalPeer[workers] ?? []).map(\.seconds),
                    peerName: peerName,
                    higherIsBetter: false))
        }
        for workers in options.workers {
            figures.append(
                BenchmarkFigure(
                    name: "restore to latest (files + recovery until promoted), \(workers) worker(s)", unit: "s", ferry: restoreFerry[workers] ?? [],
                    peer: restorePeer[workers] ?? [], peerName: peerName, higherIsBetter: false, target: options.skipPeer ? nil : 0.7))
        }
        return figures
    }

    static func name(_ tool: Tool) -> String { tool == .ferry ? "ferry" : "pgbackrest" }

    static func line(_ what: String, _ tool: Tool, _ taken: Taken) -> String {
        var line = String(
            format: "  %@, %@: %.2f s, %.1f MB stored (the tool reports %.1f MB)", what, name(tool), taken.seconds, Double(taken.stored) / 1e6,
            Double(taken.reported) / 1e6)
        if let blocks = taken.blocks, let bytes = taken.bytes, bytes > 0 {
            let total = Double(bytes) / 8192
            line += String(format: "; %d of %.0f blocks (%.1f%%) of %.0f MB", blocks, total, Double(blocks) * 100 / total, Double(bytes) / 1e6)
        }
        return line
    }

    /// Rewrites `archive_command` with `first`'s push first, and waits until the server uses it.
    private func setArchiveOrder(_ setup: Setup, first: Tool) async throws {
        guard !options.skipPeer else { return }
        let command = archiveCommand(first: first, ferry: setup.reachableFerry, repository: setup.ferryRepository, config: setup.peerConfig)
        let quoted = command.replacingOccurrences(of: "'", with: "''")
        try await sql(setup.instance.endpoint, "ALTER SYSTEM SET archive_command = '\(quoted)'")
        try await sql(setup.instance.endpoint, "SELECT pg_reload_conf()")
        try await waitUntil("the server uses the new archive_command", timeout: .seconds(30)) {
            (try? await self.text(setup.instance.endpoint, "SELECT current_setting('archive_command')")) == command
        }
    }

    // MARK: Backups

    private func backup(_ tool: Tool, full: Bool, compression: String, workers: Int, setup: Setup) async throws -> Taken {
        let clock = ContinuousClock()
        switch tool {
        case .ferry:
            let endpoint = setup.instance.endpoint
            let arguments = [
                "backup", full ? "full" : "incr", "--repository", setup.ferryRepository, "--data-directory", setup.instance.dataDirectory, "--host",
                endpoint.host, "--port", "\(endpoint.port)", "--user", endpoint.user, "--database", endpoint.database, "--compression", compression,
                "--workers", "\(workers)", "--json", "--quiet",
            ]
            let start = clock.now
            let result = try await ProcessRunner.run(options.executable, arguments, environment: ["PGPASSWORD": endpoint.password?.value ?? ""])
            let seconds = (clock.now - start).seconds
            guard result.succeeded, let object = Self.jsonObject(result.standardOutput), let id = object["id"] as? String else {
                throw FerryError(
                    .server, "ferry backup failed (status \(result.status)): \(result.standardError.trimmed) \(result.standardOutput.trimmed)")
            }
            let reported = (object["stored_bytes"] as? NSNumber)?.int64Value ?? 0
            return Taken(
                seconds: seconds, stored: Self.size(of: setup.ferryRepository + "/backups/" + id), reported: reported,
                blocks: (object["stored_blocks"] as? NSNumber)?.intValue, bytes: (object["bytes"] as? NSNumber)?.int64Value)
        case .peer:
            let arguments = [
                "--config=\(setup.peerConfig)", "--stanza=\(Self.stanza)", "--type=\(full ? "full" : "incr")",
                "--compress-type=\(Self.peerCompression(compression))", "--process-max=\(workers)", "backup",
            ]
            let start = clock.now
            let result = try await ProcessRunner.run(options.pgbackrest, arguments, as: setup.owner)
            let seconds = (clock.now - start).seconds
            guard result.succeeded else {
                throw FerryError(
                    .server, "pgbackrest backup failed (status \(result.status)): \(result.standardError.trimmed) \(result.standardOutput.trimmed)",
                    fix: "read \(setup.peerRoot)/log")
            }
            let latest = try await peerLatestBackup(setup)
            return Taken(
                seconds: seconds, stored: Self.size(of: setup.peerRepository + "/backup/\(Self.stanza)/" + latest.label), reported: latest.stored)
        }
    }

    /// The newest backup in pgBackRest's repository: its label and what it stored (`info.repository.delta`).
    private func peerLatestBackup(_ setup: Setup) async throws -> (label: String, stored: Int64) {
        let info = try await ProcessRunner.run(
            options.pgbackrest, ["--config=\(setup.peerConfig)", "--stanza=\(Self.stanza)", "--output=json", "info"], as: setup.owner)
        guard info.succeeded, let data = info.standardOutput.data(using: .utf8),
            let stanzas = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]],
            let backups = stanzas.first?["backup"] as? [[String: Any]], let last = backups.last, let label = last["label"] as? String
        else {
            throw FerryError(.server, "pgbackrest info did not list the backup: \(info.standardError.trimmed) \(info.standardOutput.prefix(500))")
        }
        let repository = (last["info"] as? [String: Any])?["repository"] as? [String: Any]
        return (label, (repository?["delta"] as? NSNumber)?.int64Value ?? 0)
    }

    private func peerVersion() async throws -> String {
        let result = try await ProcessRunner.run(options.pgbackrest, ["version"])
        return result.standardOutput.trimmed
    }

    // MARK: Restores

    /// Restores the latest backup chain into a new directory, starts it on a free port and waits until recovery has
    /// replayed the archive and the server is promoted and answers; the seconds from start to that point. The
    /// restored server is checked against `expected` and removed. Second: the seconds until the server started (its
    /// log's first line), for both tools alike: the files, before recovery.
    private func restore(_ tool: Tool, workers: Int, setup: Setup, expected: [Int64]) async throws -> (Double, Double?) {
        let target = setup.restoreRoot + "/\(Self.name(tool))-\(workers)"
        let port = try FreePort.find()
        var endpoint = setup.instance.endpoint
        endpoint.port = port
        endpoint.connectTimeout = .seconds(2)
        let clock = ContinuousClock()
        let start = clock.now
        let began = Date()
        let log = tool == .ferry ? target + "/log/ferry-restore.log" : setup.restoreRoot + "/\(Self.name(tool))-\(workers).log"
        FileSystem.remove(log)
        switch tool {
        case .ferry:
            let result = try await ProcessRunner.run(
                options.executable,
                [
                    "restore", "--repository", setup.ferryRepository, "--target", target, "--port", "\(port)", "--archive-mode", "off",
                    "--ferry-binary", setup.reachableFerry, "--workers", "\(workers)", "--json", "--quiet",
                ])
            guard result.succeeded else {
                throw FerryError(
                    .server, "ferry restore failed (status \(result.status)): \(result.standardError.trimmed) \(result.standardOutput.trimmed)",
                    fix: "read \(target)/log/ferry-restore.log")
            }
        case .peer:
            let result = try await ProcessRunner.run(
                options.pgbackrest,
                [
                    "--config=\(setup.peerConfig)", "--stanza=\(Self.stanza)", "--pg1-path=\(target)", "--type=default", "--archive-mode=off",
                    "--process-max=\(workers)", "restore",
                ], as: setup.owner)
            guard result.succeeded else {
                throw FerryError(
                    .server, "pgbackrest restore failed (status \(result.status)): \(result.standardError.trimmed) \(result.standardOutput.trimmed)",
                    fix: "read \(setup.peerRoot)/log")
            }
            let started = try await ProcessRunner.run(
                setup.binaries.pgCtl, ["-D", target, "-l", log, "-w", "-t", "3600", "-o", "-p \(port)", "start"], as: setup.owner)
            guard started.succeeded else {
                throw FerryError(.server, "the server pgBackRest restored did not start: \(started.standardError.trimmed)", fix: "read \(log)")
            }
            try await waitUntil("the server pgBackRest restored is promoted", timeout: .seconds(3600), every: .milliseconds(20)) {
                !FileSystem.exists(target + "/recovery.signal") && Self.postmasterAlive(target)
            }
        }
        // Both: promoted means a connection that sees a primary.
        try await waitUntil("the restored server in \(target) accepts connections as a primary", timeout: .seconds(600), every: .milliseconds(20)) {
            (try? await self.text(endpoint, "SELECT pg_is_in_recovery()::text")) == "false"
        }
        let seconds = (clock.now - start).seconds
        let files = Self.serverStart(log: FileSystem.read(log) ?? "").map { $0.timeIntervalSince(began) }
        let found = try await history(endpoint)
        await Self.stopServer(target, binaries: setup.binaries)
        FileSystem.remove(target)
        FileSystem.remove(log)
        guard found == expected else {
            throw FerryError(.server, "the server \(Self.name(tool)) restored holds pgbench_history \(found), where the original holds \(expected)")
        }
        return (seconds, files)
    }

    /// pgbench_history's rows and the sum of their deltas, and the branches' balances: what the restore must bring back.
    private func history(_ endpoint: PostgresEndpoint) async throws -> [Int64] {
        let text = try await self.text(
            endpoint,
            "SELECT (SELECT count(*) FROM pgbench_history)::text || ' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text || ' ' || (SELECT sum(bbalance) FROM pgbench_branches)::text"
        )
        return text.split(separator: " ").compactMap { Int64($0) }
    }

    // MARK: PostgreSQL

    @discardableResult
    private func pgbench(_ setup: Setup, _ arguments: [String]) async throws -> String {
        let endpoint = setup.instance.endpoint
        let result = try await ProcessRunner.run(
            setup.binaries.directory + "/pgbench",
            arguments + ["-h", endpoint.host, "-p", "\(endpoint.port)", "-U", endpoint.user, endpoint.database],
            environment: ["PGPASSWORD": endpoint.password?.value ?? ""])
        guard result.succeeded else {
            throw FerryError(.server, "pgbench \(arguments.joined(separator: " ")) failed: \(result.standardError.suffix(2000))")
        }
        return result.standardOutput
    }

    /// Switches to a new WAL segment and waits until the archiver has archived the one it closed (into both
    /// repositories: one `archive_command` does both): its `.ready` file in `pg_wal/archive_status` is gone.
    /// (`pg_stat_archiver.last_archived_wal` may name a backup history file, which says nothing of later segments.)
    private func switchAndWaitForArchive(_ setup: Setup, timeout: Duration) async throws {
        let segment = try await text(setup.instance.endpoint, "SELECT pg_walfile_name(pg_switch_wal())")
        let ready = setup.instance.dataDirectory + "/pg_wal/archive_status/" + segment + ".ready"
        try await waitUntil("WAL segment \(segment) is archived", timeout: timeout, every: .milliseconds(100)) { !FileSystem.exists(ready) }
    }

    private func sql(_ endpoint: PostgresEndpoint, _ statement: String) async throws {
        let session = PostgresSession(endpoint: endpoint, key: "bench", logger: logger)
        do {
            try await session.withConnection { connection in
                _ = try await connection.query("\(unescaped: statement)", logger: logger)
            }
        } catch {
            await session.close()
            throw error
        }
        await session.close()
    }

    /// The first column of the first row, as text.
    private func text(_ endpoint: PostgresEndpoint, _ statement: String) async throws -> String {
        let session = PostgresSession(endpoint: endpoint, key: "bench", logger: logger)
        do {
            let value = try await session.withConnection { connection -> String in
                let rows = try await connection.query("\(unescaped: statement)", logger: logger)
                for try await value in rows.decode(String.self) { return value }
                throw FerryError(.server, "\(statement) returned no row")
            }
            await session.close()
            return value
        } catch {
            await session.close()
            throw error
        }
    }

    private func waitUntil(
        _ what: String, timeout: Duration, every interval: Duration = .milliseconds(200), _ condition: () async -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: interval)
        }
        throw FerryError(.timeout, "the benchmark waited in vain until \(what)")
    }

    static func postmasterAlive(_ directory: String) -> Bool {
        guard let text = FileSystem.read(directory + "/postmaster.pid"), let first = text.split(separator: "\n").first, let pid = Int32(first.trimmed)
        else { return false }
        return ProcessTable.isAlive(pid, named: "postgres")
    }

    /// Stops the server in `directory` (immediately: its files are thrown away next).
    static func stopServer(_ directory: String, binaries: PostgresBinaries) async {
        guard postmasterAlive(directory) else { return }
        let result = try? await ProcessRunner.run(binaries.pgCtl, ["-D", directory, "-m", "immediate", "-w", "stop"], as: SystemUser.forPostgres())
        if result?.succeeded != true, let text = FileSystem.read(directory + "/postmaster.pid"),
            let pid = text.split(separator: "\n").first.flatMap({ Int32($0.trimmed) })
        {
            await ProcessTable.terminate(pid, grace: .seconds(10))
        }
    }

    /// Stops every server whose data directory is `directory` or directly under it.
    static func stopServers(under directory: String, binaries: PostgresBinaries) async {
        var candidates = [directory, directory + "/data"]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] { candidates.append(directory + "/" + entry) }
        for candidate in candidates { await stopServer(candidate, binaries: binaries) }
    }

    static func removeAll(_ setup: Setup) {
        FileSystem.remove(setup.root)
        if setup.serverRoot != setup.root { FileSystem.remove(setup.serverRoot) }
    }

    /// When the server logged its start (`2026-12-07 15:03:11.877 UTC [14782] LOG:  starting PostgreSQL …`).
    static func serverStart(log: String) -> Date? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("starting PostgreSQL") }) else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS zzz"
        return formatter.date(from: line.split(separator: " ").prefix(3).joined(separator: " "))
    }

    /// Memory touched before a timed backup: more than either tool writes into its repository.
    static let backupMemory = 512 << 20

    /// Touches `bytes` of anonymous memory and frees it, so that what the next step writes lands in memory the
    /// guest holds (see the type's comment).
    static func touchMemory(_ bytes: Int) {
        guard let pointer = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            pointer != UnsafeMutableRawPointer(bitPattern: -1)
        else { return }
        memset(pointer, 1, bytes)
        munmap(pointer, bytes)
    }

    /// The bytes of the regular files under `path`.
    static func size(of path: String) -> Int64 {
        var total: Int64 = 0
        var status = stat()
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        while let relative = enumerator.nextObject() as? String {
            if lstat(path + "/" + relative, &status) == 0, status.st_mode & S_IFMT == S_IFREG { total += Int64(status.st_size) }
        }
        return total
    }

    static func jsonObject(_ text: String) -> [String: Any]? {
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }), let data = String(line).data(using: .utf8) else {
            return nil
        }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}

extension BackupBenchmark.Taken {
    var megabytes: Double { Double(stored) / 1e6 }
}
