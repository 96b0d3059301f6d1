public import FerryCore
import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One private PostgreSQL server: a data directory, a loopback port, a superuser `ferry` with a password.
///
/// Created from a cached, already initialised template (initdb takes seconds; a copy takes milliseconds).
/// When Ferry runs as root the server runs as the `postgres` account, which PostgreSQL requires.
public struct PostgresInstance: Sendable, Codable, Hashable {
    /// Instance directory: holds `data/` and `postgres.log`.
    public var directory: String
    public var port: Int
    public var user: String
    public var password: String
    public var database: String
    public var binDirectory: String
    /// Extra `postgresql.conf` settings written at creation.
    public var settings: [String: String]

    /// A data directory elsewhere than `directory/data`: a node of a cluster defined in `ferry.yaml`, whose data
    /// directory belongs to its PostgreSQL installation. Its settings then go to `postgresql.auto.conf` (there
    /// is no `ferry.conf` include), and its own configuration files survive a rewind or a copy.
    public var externalDataDirectory: String?
    /// Where others reach the server (default 127.0.0.1: every sandbox server listens on loopback).
    public var host: String?
    /// A configuration directory apart from the data (Debian's `/etc/postgresql/15/main`, whose
    /// `postgresql.conf` names the data directory): `pg_ctl` and `pg_rewind` are pointed at it.
    public var configDirectory: String?

    /// What `pg_ctl -D` is given.
    var controlDirectory: String { configDirectory ?? dataDirectory }

    public var dataDirectory: String { externalDataDirectory ?? directory + "/data" }
    public var logFile: String { directory + "/postgres.log" }

    public init(
        directory: String, port: Int, user: String, password: String, database: String, binDirectory: String, settings: [String: String] = [:],
        externalDataDirectory: String? = nil
    ) {
        self.directory = directory
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.binDirectory = binDirectory
        self.settings = settings
        self.externalDataDirectory = externalDataDirectory
    }

    /// Connection settings for Ferry's configuration.
    public var endpoint: PostgresEndpoint {
        var endpoint = PostgresEndpoint(host: host ?? "127.0.0.1", port: port, database: database, user: user, password: Secret(password))
        endpoint.tls = .disable
        return endpoint
    }

    public var url: String { "postgresql://\(user):***@\(host ?? "127.0.0.1"):\(port)/\(database)" }

    /// Creates a new instance directory from the template and configures it; does not start it.
    public static func create(
        directory: String,
        port: Int? = nil,
        durable: Bool = true,
        settings: [String: String] = [:],
        cache: String,
        logger: Logger
    ) async throws(FerryError) -> PostgresInstance {
        let binaries = try PostgresBinaries.locate()
        let template = try await PostgresTemplate.ensure(cache: cache, binaries: binaries, logger: logger)
        let owner = SystemUser.forPostgres()
        FileSystem.remove(directory)
        try FileSystem.makeDirectory(directory)
        let copy = try await ProcessRunner.run("/bin/cp", ["-a", template.dataDirectory, directory + "/data"])
        guard copy.succeeded else {
            throw FerryError(
                .sandbox, "cannot copy the PostgreSQL template into \(directory): \(copy.standardError.trimmed)",
                fix: "check free disk space and permissions")
        }
        var all: [String: String] = [
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "max_connections": "200",
            "shared_buffers": "'128MB'",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_log_hints": "on",
            "logging_collector": "off",
            "log_min_messages": "warning",
        ]
        if !durable {
            all["fsync"] = "off"
            all["full_page_writes"] = "off"
        }
        for (key, value) in settings { all[key] = value }
        var instance = PostgresInstance(
            directory: directory,
            port: port != nil ? port! : try FreePort.find(),
            user: template.user,
            password: template.password,
            database: template.database,
            binDirectory: binaries.directory,
            settings: all
        )
        try instance.writeConfiguration()
        if let owner { FileSystem.chownRecursive(directory, to: owner) }
        chmod(instance.dataDirectory, 0o700)
        instance.settings = all
        return instance
    }

    /// Writes `ferry.conf` (included by the template's `postgresql.conf`) with the port and settings; for an
    /// external data directory, the settings into `postgresql.auto.conf` (the port is given to `pg_ctl`).
    func writeConfiguration() throws(FerryError) {
        if externalDataDirectory != nil {
            try writeAutoConf(settings)
            return
        }
        var lines = ["# written by Ferry's sandbox; changes are lost when it is recreated", "port = \(port)"]
        for key in settings.keys.sorted() { lines.append("\(key) = \(settings[key]!)") }
        try FileSystem.write(lines.joined(separator: "\n") + "\n", to: dataDirectory + "/ferry.conf", mode: 0o600)
        if let owner = SystemUser.forPostgres() { lchown(dataDirectory + "/ferry.conf", owner.uid, owner.gid) }
    }

    /// Replaces the lines of `settings`' names in `postgresql.auto.conf`, keeping every other line.
    func writeAutoConf(_ settings: [String: String]) throws(FerryError) {
        guard !settings.isEmpty else { return }
        let path = dataDirectory + "/postgresql.auto.conf"
        var lines = (FileSystem.read(path) ?? "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeAll { line in
            let name = line.split(separator: "=", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            return settings.keys.contains(name)
        }
        while lines.last == "" { lines.removeLast() }
        for key in settings.keys.sorted() { lines.append("\(key) = \(settings[key]!)") }
        try FileSystem.write(lines.joined(separator: "\n") + "\n", to: path, mode: 0o600)
        if let owner = SystemUser.forPostgres() { lchown(path, owner.uid, owner.gid) }
    }

    /// The configuration files an external data directory holds, to put back after `pg_rewind` or
    /// `pg_basebackup` copied the source's over them.
    func ownConfigurationFiles() -> [String: String] {
        guard externalDataDirectory != nil else { return [:] }
        var files: [String: String] = [:]
        for name in ["postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"] {
            if let text = FileSystem.read(dataDirectory + "/" + name) { files[name] = text }
        }
        return files
    }

    func restoreConfigurationFiles(_ files: [String: String]) throws(FerryError) {
        let owner = SystemUser.forPostgres()
        for (name, text) in files {
            try FileSystem.write(text, to: dataDirectory + "/" + name, mode: 0o600)
            if let owner { lchown(dataDirectory + "/" + name, owner.uid, owner.gid) }
        }
    }

    /// Merges `settings` into `ferry.conf` (the server reads them on reload or restart).
    public func updateSettings(_ settings: [String: String]) throws(FerryError) {
        var copy = self
        copy.settings.merge(settings) { $1 }
        try copy.writeConfiguration()
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): no more writes, crash recovery at the next start.
    public func stopImmediately() async {
        guard isRunning else { return }
        let binaries = PostgresBinaries(directory: binDirectory)
        let result = try? await ProcessRunner.run(
            binaries.pgCtl, ["-D", controlDirectory, "-m", "immediate", "-w", "-t", "10", "stop"], as: SystemUser.forPostgres())
        if result?.succeeded != true, let pid { ProcessTable.signal(pid, SIGKILL) }
    }

    /// Starts the server and waits until it accepts connections.
    public func start() async throws(FerryError) {
        if isRunning { return }
        let binaries = PostgresBinaries(directory: binDirectory)
        // A stale pid file from a killed server makes pg_ctl refuse to start; PostgreSQL handles recovery itself.
        if let pid = pid, !ProcessTable.isAlive(pid, named: "postgres") { FileSystem.remove(dataDirectory + "/postmaster.pid") }
        let result = try await ProcessRunner.run(
            binaries.pgCtl,
            ["-D", controlDirectory, "-l", logFile, "-w", "-t", "120", "-o", "-p \(port)", "start"],
            as: SystemUser.forPostgres()
        )
        guard result.succeeded else {
            let tail = (FileSystem.read(logFile) ?? "").split(separator: "\n").suffix(5).joined(separator: "\n")
            throw FerryError(
                .sandbox,
                "PostgreSQL in \(dataDirectory) did not start on \(host ?? "127.0.0.1"):\(port): \(result.standardError.trimmed)\n\(tail)",
                fix: "read \(logFile); if the port is taken run `ferry sandbox down` and up again"
            )
        }
    }

    /// Stops the server cleanly (fast shutdown), killing it if it does not stop in time.
    public func stop() async {
        guard isRunning else { return }
        let binaries = PostgresBinaries(directory: binDirectory)
        let result = try? await ProcessRunner.run(
            binaries.pgCtl, ["-D", controlDirectory, "-m", "fast", "-w", "-t", "30", "stop"], as: SystemUser.forPostgres())
        if result?.succeeded != true, let pid { await ProcessTable.terminate(pid, grace: .seconds(5)) }
    }

    /// Kills the postmaster with SIGKILL, as a crash would (for fault tests), and waits for its backends.
    public func kill() async {
        guard let pid else { return }
        ProcessTable.signal(pid, SIGKILL)
        _ = await ProcessTable.waitForExit(pid, timeout: .seconds(10))
        // Orphaned backends notice the postmaster's death and exit; a new postmaster refuses to start while
        // they hold shared memory. They all run with the data directory as their working directory.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline, !ProcessTable.pids(workingDirectory: dataDirectory).isEmpty {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Every process of this server (postmaster and backends).
    public var processes: [Int32] { ProcessTable.pids(workingDirectory: dataDirectory) }

    /// The postmaster's pid, from `postmaster.pid`.
    public var pid: Int32? {
        guard let text = FileSystem.read(dataDirectory + "/postmaster.pid"), let first = text.split(separator: "\n").first else { return nil }
        return Int32(first.trimmed)
    }

    public var isRunning: Bool {
        guard let pid else { return false }
        return ProcessTable.isAlive(pid, named: "postgres")
    }

    // MARK: Replication roles

    /// Whether the data directory starts as a standby (`standby.signal`).
    public var hasStandbySignal: Bool { FileSystem.exists(dataDirectory + "/standby.signal") }

    /// Makes the stopped server start as a standby streaming from `host:port` through slot `slot`.
    public func configureStandby(host: String, port: Int, user: String, password: String, slot: String) throws(FerryError) {
        let standby = Self.standbySettings(host: host, port: port, user: user, password: password, slot: slot)
        if externalDataDirectory != nil { try writeAutoConf(standby) } else { try updateSettings(standby) }
        FileSystem.remove(dataDirectory + "/recovery.signal")
        try FileSystem.write("", to: dataDirectory + "/standby.signal", mode: 0o600)
        if let owner = SystemUser.forPostgres() { lchown(dataDirectory + "/standby.signal", owner.uid, owner.gid) }
    }

    /// `primary_conninfo` and `primary_slot_name` for streaming from `host:port`.
    static func standbySettings(host: String, port: Int, user: String, password: String, slot: String) -> [String: String] {
        [
            "primary_conninfo": "'host=\(host) port=\(port) user=\(user) password=\(password) application_name=\(slot)'",
            "primary_slot_name": "'\(slot)'",
        ]
    }

    /// Brings the stopped server's data back in line with the primary at `host:port` with `pg_rewind` (which first
    /// finishes crash recovery when the server was killed); `pg_rewind` copies the source's configuration files, so
    /// this server's own are written again. Returns what `pg_rewind` said.
    public func rewind(host: String, port: Int, user: String, password: String) async throws(FerryError) -> String {
        let binaries = PostgresBinaries(directory: binDirectory)
        FileSystem.remove(dataDirectory + "/postmaster.pid")
        let own = ownConfigurationFiles()
        var arguments = [
            "--target-pgdata=\(dataDirectory)", "--source-server=host=\(host) port=\(port) user=\(user) dbname=postgres connect_timeout=5",
        ]
        if let configDirectory { arguments.append("--config-file=\(configDirectory)/postgresql.conf") }
        let result = try await ProcessRunner.run(
            binaries.pgRewind, arguments,
            as: SystemUser.forPostgres(), environment: ["PGPASSWORD": password])
        guard result.succeeded else {
            throw FerryError(
                .server, "pg_rewind of \(dataDirectory) from \(host):\(port) failed: \(result.standardError.trimmed.suffix(600))",
                fix: "the node can be copied again instead: `ferry cluster rejoin NODE --copy`")
        }
        try restoreConfigurationFiles(own)
        try writeConfiguration()
        return (result.standardOutput + result.standardError).trimmed
    }

    /// Replaces the stopped server's data with a fresh copy of the primary at `host:port` streamed through slot
    /// `slot` (`pg_basebackup`). The old data stays aside until the copy is complete, and is put back if it fails.
    public func copyFrom(host: String, port: Int, user: String, password: String, slot: String?) async throws(FerryError) {
        let owner = SystemUser.forPostgres()
        let own = ownConfigurationFiles()
        let aside = dataDirectory + ".old"
        FileSystem.remove(aside)
        if FileSystem.exists(dataDirectory) { try FileSystem.move(dataDirectory, to: aside) }
        let binaries = PostgresBinaries(directory: binDirectory)
        var arguments = [
            "-h", host, "-p", "\(port)", "-U", user, "-D", dataDirectory, "-X", "stream", "--checkpoint=fast", "--no-password",
        ]
        if let slot { arguments += ["-S", slot] }
        if let owner {
            FileSystem.chownRecursive(directory, to: owner)
            // pg_basebackup, run as the PostgreSQL account, creates the data directory in its parent.
            if let external = externalDataDirectory {
                let parent = (external as NSString).deletingLastPathComponent
                if !FileSystem.exists(parent) { try FileSystem.makeDirectory(parent) }
                lchown(parent, owner.uid, owner.gid)
            }
        }
        let backup = try await ProcessRunner.run(
            binaries.pgBasebackup, arguments, as: owner, environment: ["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"])
        guard backup.succeeded else {
            FileSystem.remove(dataDirectory)
            if FileSystem.exists(aside) { try? FileSystem.move(aside, to: dataDirectory) }
            throw FerryError(
                .server, "pg_basebackup into \(dataDirectory) from \(host):\(port) failed: \(backup.standardError.trimmed.suffix(600))",
                fix: "check that the primary at \(host):\(port) runs and accepts replication connections from \(user)")
        }
        FileSystem.remove(aside)
        try restoreConfigurationFiles(own)
        try writeConfiguration()
        if let owner { FileSystem.chownRecursive(externalDataDirectory ?? directory, to: owner) }
        chmod(dataDirectory, 0o700)
    }

    /// What `pg_controldata` says about the stopped (or running) server's data: its last checkpoint's position
    /// and timeline.
    public func controlData() async -> (checkpoint: UInt64, timeline: Int)? {
        let binaries = PostgresBinaries(directory: binDirectory)
        guard let result = try? await ProcessRunner.run(binaries.directory + "/pg_controldata", ["-D", dataDirectory], as: SystemUser.forPostgres()),
            result.succeeded
        else { return nil }
        var checkpoint: UInt64?
        var timeline: Int?
        for line in result.standardOutput.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmed }
            guard parts.count == 2 else { continue }
            if parts[0] == "Latest checkpoint location" { checkpoint = Self.lsn(parts[1]) }
            if parts[0] == "Latest checkpoint's TimeLineID" { timeline = Int(parts[1]) }
        }
        guard let checkpoint, let timeline else { return nil }
        return (checkpoint, timeline)
    }

    /// `16/B374D848` as a number.
    public static func lsn(_ text: String) -> UInt64? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16) else { return nil }
        return high << 32 | low
    }

    /// Runs SQL through `psql` as the superuser; for set-up steps, not for data paths.
    public func psql(_ sql: String, database: String? = nil) async throws(FerryError) -> String {
        let binaries = PostgresBinaries(directory: binDirectory)
        let result = try await ProcessRunner.run(
            binaries.psql,
            [
                "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", host ?? "127.0.0.1", "-p", "\(port)", "-U", user, "-d",
                database ?? self.database,
                "-c", sql,
            ],
            environment: ["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"]
        )
        guard result.succeeded else {
            throw FerryError(.sandbox, "psql on 127.0.0.1:\(port) failed: \(result.standardError.trimmed)")
        }
        return result.standardOutput.trimmed
    }
}

extension StringProtocol {
    var trimmed: String { String(self).trimmingCharacters(in: .whitespacesAndNewlines) }
}
