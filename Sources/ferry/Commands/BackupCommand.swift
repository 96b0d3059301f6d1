import ArgumentParser
import FerryBackup
import FerryCore
import FerryPostgresNode
import Foundation
import Logging

/// `ferry backup full|incr|list|verify|delete`: base backups with block-level incrementals (docs/BACKUPS.md).
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take, list, verify and delete base backups of a PostgreSQL server (full, or block-level incremental).",
        discussion: """
            Run on the server's machine, as root or the data directory's owner. The server must archive its WAL into the same repository:
              archive_mode = on
              archive_command = 'ferry wal push %p --repository /backups/ferry'

            A full backup stores every block of the data directory; an incremental stores only the 8 KB blocks whose checksum changed since the backup before it. Restore with `ferry restore`. The connection comes from --host/--port/--user/--database or PGHOST/PGPORT/PGUSER/PGDATABASE, the password from PGPASSWORD. See docs/BACKUPS.md.
            """,
        subcommands: [Full.self, Incremental.self, List.self, Verify.self, Delete.self]
    )

    struct RepositoryOption: ParsableArguments {
        @Option(help: ArgumentHelp("The backup repository: a directory (or FERRY_BACKUP_REPOSITORY).", valueName: "path"))
        var repository: String?

        func open() throws(FerryError) -> any BackupRepository {
            guard let path = repository ?? ProcessInfo.processInfo.environment["FERRY_BACKUP_REPOSITORY"], !path.isEmpty else {
                throw FerryError(.configuration, "no backup repository given", fix: "pass --repository DIR or set FERRY_BACKUP_REPOSITORY")
            }
            return try BackupRepositories.open(path.contains("://") ? path : FileSystem.absolute(path))
        }
    }

    struct ServerOptions: ParsableArguments {
        @Option(help: ArgumentHelp("The server's host (default PGHOST or 127.0.0.1).", valueName: "host"))
        var host: String?
        @Option(help: ArgumentHelp("The server's port (default PGPORT or 5432).", valueName: "port"))
        var port: Int?
        @Option(help: ArgumentHelp("A superuser, or one allowed pg_backup_start/stop (default PGUSER or postgres).", valueName: "name"))
        var user: String?
        @Option(help: ArgumentHelp("The database to connect to (default PGDATABASE or postgres).", valueName: "name"))
        var database: String?
        @Option(
            name: .customLong("data-directory"),
            help: ArgumentHelp("The server's data directory (default PGDATA).", valueName: "path"))
        var dataDirectory: String?

        func endpoint() throws(FerryError) -> PostgresEndpoint {
            let environment = ProcessInfo.processInfo.environment
            var endpoint = PostgresEndpoint()
            endpoint.host = host ?? environment["PGHOST"] ?? "127.0.0.1"
            let portText = port.map(String.init) ?? environment["PGPORT"] ?? "5432"
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw FerryError(.configuration, "the port \"\(PrintableText.escaped(portText))\" is not a port", fix: "pass --port 1–65535")
            }
            endpoint.port = number
            endpoint.user = user ?? environment["PGUSER"] ?? "postgres"
            endpoint.database = database ?? environment["PGDATABASE"] ?? "postgres"
            endpoint.password = environment["PGPASSWORD"].map { Secret($0) }
            endpoint.tls = .prefer
            return endpoint
        }

        func dataDirectoryPath() throws(FerryError) -> String {
            guard let path = dataDirectory ?? ProcessInfo.processInfo.environment["PGDATA"], !path.isEmpty else {
                throw FerryError(
                    .configuration, "no data directory given", fix: "pass --data-directory (the server's SHOW data_directory) or set PGDATA")
            }
            return FileSystem.absolute(path)
        }
    }

    struct TakeOptions: ParsableArguments {
        @OptionGroup var repository: RepositoryOption
        @OptionGroup var server: ServerOptions

        @Option(help: ArgumentHelp("Compression: \(BackupCompression.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
        var compression = "zstd"

        @Option(help: ArgumentHelp("Files read and compressed at once (default 2).", valueName: "n"))
        var workers = 2

        @Option(
            name: .customLong("archive-timeout"),
            help: ArgumentHelp("Seconds to wait for the WAL the backup needs to reach the archive (default 120).", valueName: "seconds"))
        var archiveTimeout = 120

        @Flag(help: "Print the outcome as JSON.")
        var json = false

        @Flag(help: "No progress bar.")
        var quiet = false

        func take(_ kind: BackupManifest.Kind) async throws {
            guard let codec = BackupCompression(rawValue: compression) else {
                throw FerryError(
                    .configuration, "unknown compression \"\(PrintableText.escaped(compression))\"",
                    fix: "use one of \(BackupCompression.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard (1...64).contains(workers) else { throw FerryError(.configuration, "--workers \(workers) is out of range", fix: "use 1–64") }
            guard (1...86400).contains(archiveTimeout) else {
                throw FerryError(.configuration, "--archive-timeout \(archiveTimeout) is out of range", fix: "use 1–86400 seconds")
            }
            var logger = Logger(label: "ferry.backup")
            logger.logLevel = .warning
            let server = PostgresBackupServer(endpoint: try self.server.endpoint(), logger: logger)
            var backup = BaseBackup(repository: try repository.open(), dataDirectory: try self.server.dataDirectoryPath(), server: server)
            backup.compression = codec
            backup.workers = workers
            backup.archiveTimeout = .seconds(archiveTimeout)
            let bar = ProgressBar(quiet: quiet || json)
            let began = ContinuousClock.now
            let label = kind == .full ? "full backup" : "incremental backup"
            let report = try await backup.run(kind: kind) { done, total in
                bar.draw(ProgressBar.renderBytes(label, done: done, total: total, since: began))
            }
            bar.finish()
            await server.close()
            let manifest = report.manifest
            let seconds = manifest.stopped.timeIntervalSince(manifest.started)
            if json {
                Terminal.print(try BackupCommand.json(BackupSummary(manifest, note: report.note)))
            } else {
                if let note = report.note { Terminal.hint(note) }
                Terminal.print(
                    "backup \(manifest.id) (\(manifest.kind.rawValue)\(manifest.prior.map { ", on \($0)" } ?? "")): \(manifest.files.count) files, "
                        + "\(ProgressBar.bytes(manifest.bytes)) read, \(manifest.storedBlocks) blocks stored in \(ProgressBar.bytes(manifest.storedBytes)) "
                        + "(\(manifest.compression.rawValue)), \(String(format: "%.1f", seconds)) s; WAL \(manifest.startWAL)…\(manifest.stopWAL) archived"
                )
            }
        }
    }

    struct Full: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "full", abstract: "Take a full backup: every block of the data directory.")
        @OptionGroup var options: TakeOptions
        func run() async throws { try await options.take(.full) }
    }

    struct Incremental: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "incr",
            abstract: "Take an incremental backup: the blocks that changed since the latest backup (a full one when there is none).")
        @OptionGroup var options: TakeOptions
        func run() async throws { try await options.take(.incremental) }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the usable backups, oldest first.")
        @OptionGroup var repository: RepositoryOption
        @Flag(help: "Print the backups as JSON.")
        var json = false

        func run() throws {
            let store = BackupStore(repository: try repository.open())
            let manifests = try store.manifests()
            let incomplete = try store.incomplete()
            if json {
                Terminal.print(try BackupCommand.json(BackupListing(backups: manifests.map { BackupSummary($0) }, incomplete: incomplete)))
                return
            }
            if manifests.isEmpty {
                Terminal.print("no backups in \(store.repository.location)")
            } else {
                var table = TextTable(["BACKUP", "TYPE", "ON", "STOPPED (UTC)", "SIZE", "STORED", "WAL"])
                for manifest in manifests {
                    table.add([
                        manifest.id, manifest.kind.rawValue, manifest.prior ?? "-", BackupSummary.timestamp(manifest.stopped),
                        ProgressBar.bytes(manifest.bytes),
                        ProgressBar.bytes(manifest.storedBytes), "\(manifest.startWAL)…\(manifest.stopWAL.suffix(8))",
                    ])
                }
                Terminal.print(table.render())
            }
            if !incomplete.isEmpty {
                Terminal.hint("incomplete (not usable, removed by the next backup): \(incomplete.joined(separator: ", "))")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Re-read every block of a backup and of the backups it builds on, and check that the WAL it needs is archived.")
        @Argument(help: ArgumentHelp("The backup (as `ferry backup list` shows it).", valueName: "id"))
        var id: String
        @OptionGroup var repository: RepositoryOption
        @Option(help: ArgumentHelp("Bundles checked at once (default 2).", valueName: "n"))
        var workers = 2
        @Flag(help: "Print the outcome as JSON.")
        var json = false

        func run() throws {
            let repository = try repository.open()
            let store = BackupStore(repository: repository)
            let (chain, damage) = try store.verifyData(id, workers: max(1, min(workers, 64)))
            var problems = damage.map(\.description)
            let backup = chain[chain.count - 1]
            let archive = WALArchive(repository: repository)
            var checked = 0
            if let system = UInt64(backup.system, radix: 16) {
                for name in try WALPosition.segments(from: backup.startWAL, to: backup.stopWAL, segmentSize: backup.walSegmentSize) {
                    do {
                        if try archive.fetch(name: name, system: system) == nil {
                            problems.append("WAL segment \(name), which backup \(backup.id) needs to be consistent, is not in the archive")
                        }
                        checked += 1
                    } catch {
                        problems.append("WAL segment \(name): \(error.message)")
                    }
                }
            }
            let blocks = chain.reduce(0) { $0 + $1.storedBlocks }
            if json {
                Terminal.print(
                    try BackupCommand.json(
                        VerifyOutcome(backup: backup.id, chain: chain.map(\.id), blocks: blocks, walSegments: checked, problems: problems)))
            } else if problems.isEmpty {
                Terminal.print(
                    "backup \(backup.id) is intact: \(chain.count) backup(s) (\(chain.map(\.id).joined(separator: " → "))), \(blocks) blocks checked, WAL \(backup.startWAL)…\(backup.stopWAL) archived and intact"
                )
            }
            if !problems.isEmpty {
                if !json { for problem in problems { Terminal.error(problem) } }
                throw FerryError(
                    .invalidInput, "backup \(backup.id) is damaged: \(problems.count) problem(s)",
                    fix: "restore from another backup (`ferry backup list`); take a new full backup soon")
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete", abstract: "Delete a backup (and, if asked, the incrementals built on it).")
        @Argument(help: ArgumentHelp("The backup (as `ferry backup list` shows it).", valueName: "id"))
        var id: String
        @OptionGroup var repository: RepositoryOption
        @Flag(name: .customLong("with-dependents"), help: "Also delete the incrementals built on it.")
        var withDependents = false
        @Flag(help: "Print the outcome as JSON.")
        var json = false

        func run() throws {
            let repository = try repository.open()
            try BackupStore.checkID(id)
            let lock = try repository.lock(for: "ferry backup delete \(id)")
            defer { lock.release() }
            let deleted = try BackupStore(repository: repository).delete(id, withDependents: withDependents)
            Terminal.print(json ? try BackupCommand.json(["deleted": deleted]) : "deleted \(deleted.joined(separator: ", "))")
        }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// One backup as `list` and `--json` show it (the manifest without its file list).
struct BackupSummary: Encodable {
    var id: String
    var kind: String
    var prior: String?
    var full: String
    var system: String
    var timeline: Int
    var startLsn: String
    var stopLsn: String
    var startWal: String
    var stopWal: String
    var started: Date
    var stopped: Date
    var bytes: Int64
    var storedBytes: Int64
    var storedBlocks: Int
    var files: Int
    var compression: String
    var note: String?

    init(_ manifest: BackupManifest, note: String? = nil) {
        id = manifest.id
        kind = manifest.kind.rawValue
        prior = manifest.prior
        full = manifest.full
        system = manifest.system
        timeline = manifest.timeline
        startLsn = manifest.startLSN
        stopLsn = manifest.stopLSN
        startWal = manifest.startWAL
        stopWal = manifest.stopWAL
        started = manifest.started
        stopped = manifest.stopped
        bytes = manifest.bytes
        storedBytes = manifest.storedBytes
        storedBlocks = manifest.storedBlocks
        files = manifest.files.count
        compression = manifest.compression.rawValue
        self.note = note
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }
}

struct BackupListing: Encodable {
    var backups: [BackupSummary]
    var incomplete: [String]
}

struct VerifyOutcome: Encodable {
    var backup: String
    var chain: [String]
    var blocks: Int
    var walSegments: Int
    var problems: [String]
}
