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
        subcommands: [Full.self, Incremental.self, List.self, Verify.self, Delete.self, Expire.self]
    )

    struct RepositoryOption: ParsableArguments {
        @Option(
            help: ArgumentHelp(
                "The backup repository: a directory, or s3://bucket/prefix with the AWS_* variables (or FERRY_BACKUP_REPOSITORY).",
                valueName: "location"))
        var repository: String?

        func open(fallback: String? = nil) throws(FerryError) -> any BackupRepository {
            guard let path = repository ?? ProcessInfo.processInfo.environment["FERRY_BACKUP_REPOSITORY"] ?? fallback, !path.isEmpty else {
                throw FerryError(.configuration, "no backup repository given", fix: "pass --repository DIR or set FERRY_BACKUP_REPOSITORY")
            }
            return try BackupRepositories.open(path.contains("://") ? path : FileSystem.absolute(path))
        }
    }

    struct CatalogOption: ParsableArguments {
        @Option(
            help: ArgumentHelp(
                "The backup catalogue in Redis: redis://HOST:PORT/DB (or FERRY_BACKUP_CATALOG; password from REDIS_PASSWORD). A cache of the repository, rebuilt from it when lost.",
                valueName: "url"))
        var catalog: String?

        func open(for repository: any BackupRepository, fallback: String? = nil) throws(FerryError) -> RedisBackupCatalog? {
            let environment = ProcessInfo.processInfo.environment
            guard let url = catalog ?? environment["FERRY_BACKUP_CATALOG"] ?? fallback, !url.isEmpty else { return nil }
            return RedisBackupCatalog(endpoint: try RedisBackupCatalog.endpoint(from: url, environment: environment), repository: repository.location)
        }

        /// Brings the catalogue up to date after a change; a failure is a warning (the next list rebuilds it).
        static func update(_ catalog: RedisBackupCatalog?, _ change: (RedisBackupCatalog) async throws(FerryError) -> Void) async -> String? {
            guard let catalog else { return nil }
            do {
                try await change(catalog)
                return nil
            } catch {
                Terminal.hint("the backup catalogue was not updated (\(error.message)); the next `ferry backup list --catalog …` rebuilds it")
                return error.message
            }
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

        func endpoint(fallback: PostgresEndpoint? = nil) throws(FerryError) -> PostgresEndpoint {
            let environment = ProcessInfo.processInfo.environment
            let given =
                [host, port.map(String.init), user, database].contains { $0 != nil }
                || ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE"].contains { environment[$0] != nil }
            if !given, let fallback { return fallback }
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

        func dataDirectoryPath(fallback: String? = nil) throws(FerryError) -> String {
            guard let path = dataDirectory ?? ProcessInfo.processInfo.environment["PGDATA"] ?? fallback, !path.isEmpty else {
                throw FerryError(
                    .configuration, "no data directory given", fix: "pass --data-directory (the server's SHOW data_directory) or set PGDATA")
            }
            return FileSystem.absolute(path)
        }
    }

    struct TakeOptions: ParsableArguments {
        @OptionGroup var repository: RepositoryOption
        @OptionGroup var server: ServerOptions

        @Option(
            name: .customLong("config"),
            help: ArgumentHelp(
                "ferry.yaml whose `backup:` section gives what the flags do not (default ./ferry.yaml or FERRY_CONFIG when --repository is not given); only that section is read.",
                valueName: "path"))
        var configPath: String?

        @Option(
            help: ArgumentHelp(
                "Compression: \(BackupCompression.allCases.map(\.rawValue).joined(separator: ", ")) (default zstd).", valueName: "name"))
        var compression: String?

        @Option(help: ArgumentHelp("Files read and compressed at once (default 2).", valueName: "n"))
        var workers: Int?

        @Option(
            name: .customLong("archive-timeout"),
            help: ArgumentHelp("Seconds to wait for the WAL the backup needs to reach the archive (default 120).", valueName: "seconds"))
        var archiveTimeout: Int?

        /// `backup:` from the configuration, when one is given or the flags leave the repository out.
        func configured() throws -> (backup: BackupConfiguration?, postgres: PostgresEndpoint?) {
            let environment = ProcessInfo.processInfo.environment
            guard configPath != nil || (repository.repository == nil && environment["FERRY_BACKUP_REPOSITORY"] == nil) else { return (nil, nil) }
            let loader = ConfigLoader(explicitPath: configPath)
            if configPath == nil, environment["FERRY_CONFIG"] == nil, !FileManager.default.fileExists(atPath: "ferry.yaml") { return (nil, nil) }
            let configuration = try loader.load(FerryConfiguration.readBackupOnly).configuration
            return (configuration.backup, configuration.backup?.postgres ?? configuration.postgres)
        }

        @OptionGroup var retention: RetentionOptions
        @OptionGroup var catalog: CatalogOption

        @Flag(help: "Print the outcome as JSON.")
        var json = false

        @Flag(help: "No progress bar.")
        var quiet = false

        func take(_ kind: BackupManifest.Kind) async throws {
            let (settings, configuredServer) = try configured()
            let compression = self.compression ?? settings?.compression ?? "zstd"
            let workers = self.workers ?? settings?.workers ?? 2
            let archiveTimeout = self.archiveTimeout ?? settings.map { Int($0.archiveTimeout.components.seconds) } ?? 120
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
            let server = PostgresBackupServer(endpoint: try self.server.endpoint(fallback: configuredServer), logger: logger)
            let repository = try repository.open(fallback: settings?.repository)
            let catalog = try catalog.open(for: repository, fallback: settings?.catalog)
            var backup = BaseBackup(
                repository: repository, dataDirectory: try self.server.dataDirectoryPath(fallback: settings?.dataDirectory), server: server)
            backup.compression = codec
            backup.workers = workers
            backup.archiveTimeout = .seconds(archiveTimeout)
            var rules = try retention.rules()
            if rules.isEmpty, let settings { rules = BackupRetention(keepFull: settings.keepFull, keepDays: settings.keepDays) }
            backup.retention = rules
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
            let catalogError = await CatalogOption.update(catalog) { catalog throws(FerryError) in
                try await catalog.record(BackupCatalogEntry(manifest))
                try await catalog.forget(report.retention?.expired ?? [])
            }
            if json {
                Terminal.print(
                    try BackupCommand.json(
                        TakenBackup(entry: BackupCatalogEntry(manifest), note: report.note, retention: report.retention, catalogError: catalogError)))
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

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the usable backups, oldest first (from the Redis catalogue when given, rebuilt from the repository when lost).")
        @OptionGroup var repository: RepositoryOption
        @OptionGroup var catalog: CatalogOption
        @Flag(help: "Print the backups as JSON.")
        var json = false

        func run() async throws {
            let repository = try repository.open()
            let store = BackupStore(repository: repository)
            var listing: BackupListing
            if let catalog = try catalog.open(for: repository) {
                let listed = try await catalog.list(store)
                listing = BackupListing(backups: listed.entries, incomplete: [], rebuilt: listed.rebuilt, dropped: listed.dropped)
                if !json, listed.rebuilt > 0 { Terminal.hint("catalogue: \(listed.rebuilt) backup(s) rebuilt from the repository's manifests") }
            } else {
                listing = BackupListing(backups: try store.manifests().map(BackupCatalogEntry.init), incomplete: [])
            }
            listing.incomplete = try store.incomplete()
            let incomplete = listing.incomplete
            if json {
                Terminal.print(try BackupCommand.json(listing))
                return
            }
            let manifests = listing.backups
            if manifests.isEmpty {
                Terminal.print("no backups in \(store.repository.location)")
            } else {
                var table = TextTable(["BACKUP", "TYPE", "ON", "STOPPED (UTC)", "SIZE", "STORED", "WAL"])
                for entry in manifests {
                    table.add([
                        entry.id, entry.kind, entry.prior ?? "-", BackupTime.text(entry.stopped), ProgressBar.bytes(entry.bytes),
                        ProgressBar.bytes(entry.storedBytes), "\(entry.startWal)…\(entry.stopWal.suffix(8))",
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

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete", abstract: "Delete a backup (and, if asked, the incrementals built on it).")
        @Argument(help: ArgumentHelp("The backup (as `ferry backup list` shows it).", valueName: "id"))
        var id: String
        @OptionGroup var repository: RepositoryOption
        @Flag(name: .customLong("with-dependents"), help: "Also delete the incrementals built on it.")
        var withDependents = false
        @OptionGroup var catalog: CatalogOption
        @Flag(help: "Print the outcome as JSON.")
        var json = false

        func run() async throws {
            let repository = try repository.open()
            try BackupStore.checkID(id)
            let catalog = try catalog.open(for: repository)
            let lock = try repository.lock(for: "ferry backup delete \(id)")
            defer { lock.release() }
            let deleted = try BackupStore(repository: repository).delete(id, withDependents: withDependents)
            _ = await CatalogOption.update(catalog) { catalog throws(FerryError) in try await catalog.forget(deleted) }
            Terminal.print(json ? try BackupCommand.json(["deleted": deleted]) : "deleted \(deleted.joined(separator: ", "))")
        }
    }

    struct RetentionOptions: ParsableArguments {
        @Option(name: .customLong("keep-full"), help: ArgumentHelp("Keep the newest N full backups and their incrementals.", valueName: "n"))
        var keepFull: Int?

        @Option(
            name: .customLong("keep-days"),
            help: ArgumentHelp("Keep what restoring to any moment of the last N days needs (the seed's rotation: 6).", valueName: "n"))
        var keepDays: Int?

        func rules() throws(FerryError) -> BackupRetention {
            if let keepFull, !(1...10_000).contains(keepFull) {
                throw FerryError(.configuration, "--keep-full \(keepFull) is out of range", fix: "use 1–10000")
            }
            if let keepDays, !(0...36_500).contains(keepDays) {
                throw FerryError(.configuration, "--keep-days \(keepDays) is out of range", fix: "use 0–36500")
            }
            return BackupRetention(keepFull: keepFull, keepDays: keepDays)
        }

        static func describe(_ outcome: BackupRetention.Outcome, dryRun: Bool) -> String {
            let verb = dryRun ? "would expire" : "expired"
            let backups = outcome.expired.isEmpty ? "no backup" : outcome.expired.joined(separator: ", ")
            let from = outcome.walKeptFrom.sorted { $0.key < $1.key }.map { "\($0.value)" }.joined(separator: ", ")
            return "\(verb) \(backups); \(outcome.walFilesRemoved) archived WAL file(s) \(dryRun ? "would be " : "")removed"
                + (from.isEmpty ? "" : " (WAL kept from \(from))")
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "expire",
            abstract: "Delete the backups the retention rules no longer keep, and the archived WAL no kept backup needs.",
            discussion:
                "A kept backup's chain is always kept and the newest backup never expires; WAL is pruned only below the oldest kept backup's start, so every kept backup stays restorable to any later point."
        )
        @OptionGroup var repository: RepositoryOption
        @OptionGroup var retention: RetentionOptions
        @Flag(name: .customLong("dry-run"), help: "Show what would be deleted, delete nothing.")
        var dryRun = false
        @OptionGroup var catalog: CatalogOption
        @Flag(help: "Print the outcome as JSON.")
        var json = false

        func run() async throws {
            let rules = try retention.rules()
            guard !rules.isEmpty else {
                throw FerryError(.configuration, "no retention rule given", fix: "pass --keep-full N and/or --keep-days N")
            }
            let repository = try repository.open()
            let lock = try repository.lock(for: "ferry backup expire")
            defer { lock.release() }
            let catalog = try catalog.open(for: repository)
            let outcome = try rules.apply(to: repository, dryRun: dryRun)
            if !dryRun { _ = await CatalogOption.update(catalog) { catalog throws(FerryError) in try await catalog.forget(outcome.expired) } }
            Terminal.print(json ? try BackupCommand.json(outcome) : RetentionOptions.describe(outcome, dryRun: dryRun))
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

/// A backup just taken, for `--json`: its catalogue entry, and what happened around it.
struct TakenBackup: Encodable {
    var entry: BackupCatalogEntry
    var note: String?
    var retention: BackupRetention.Outcome?
    var catalogError: String?

    enum CodingKeys: String, CodingKey {
        case note, retention
        case catalogError = "catalog_error"
    }

    func encode(to encoder: any Encoder) throws {
        try entry.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(note, forKey: .note)
        try container.encodeIfPresent(retention, forKey: .retention)
        try container.encodeIfPresent(catalogError, forKey: .catalogError)
    }
}

/// UTC time as `list` shows it.
enum BackupTime {
    static func text(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }
}

struct BackupListing: Encodable {
    var backups: [BackupCatalogEntry]
    var incomplete: [String]
    /// From the catalogue: entries rebuilt from manifests, and entries dropped for backups no longer there.
    var rebuilt: Int?
    var dropped: Int?
}

struct VerifyOutcome: Encodable {
    var backup: String
    var chain: [String]
    var blocks: Int
    var walSegments: Int
    var problems: [String]
}
