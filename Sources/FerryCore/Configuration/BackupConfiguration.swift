/// `backup:` in ferry.yaml: where backups go, what they back up, how long they are kept, and how often `ferry run`
/// takes them.
///
/// ```yaml
/// backup:
///   repository: /backups/ferry          # or s3://bucket/prefix (AWS_* variables)
///   data_directory: /var/lib/postgresql/15/main
///   postgres: {host: 127.0.0.1, port: 5432, user: postgres}   # default: the top-level postgres section
///   compression: zstd                   # zstd, lz4, gzip, none
///   catalog: redis://127.0.0.1:6379/0   # the Redis catalogue (optional)
///   keep_full: 2
///   keep_days: 6                        # the seed's six-day rotation
///   full_every: 7d                      # ferry run: a full backup when the last is this old
///   incremental_every: 1d               # … and an incremental when the last backup is this old
/// ```
package struct BackupConfiguration: Sendable, Equatable {
    package static let compressions = ["zstd", "lz4", "gzip", "none"]

    package var repository: String
    package var dataDirectory: String
    /// The server the backup starts and stops; nil: the top-level `postgres`.
    package var postgres: PostgresEndpoint?
    package var compression = "zstd"
    package var workers = 2
    package var catalog: String?
    package var keepFull: Int?
    package var keepDays: Int?
    package var archiveTimeout: Duration = .seconds(120)
    /// `ferry run`'s schedule: none when both are nil.
    package var fullEvery: Duration?
    package var incrementalEvery: Duration?
    /// Where `POST /restore` may restore into (directories under it); nil: the API does not restore.
    package var restoreRoot: String?
    /// The `ferry` PostgreSQL's `restore_command` runs for a restore through the API (default: the running one).
    package var ferryBinary: String?

    package init(repository: String, dataDirectory: String) {
        self.repository = repository
        self.dataDirectory = dataDirectory
    }

    static func read(_ reader: ConfigReader) -> BackupConfiguration? {
        let repository = reader.string("repository", required: "give the backup repository: a directory or s3://bucket/prefix")
        let dataDirectory = reader.string("data_directory", required: "give the server's data directory (SHOW data_directory)")
        var settings = BackupConfiguration(repository: repository ?? "", dataDirectory: dataDirectory ?? "")
        let postgres = reader.section("postgres")
        if postgres.isPresent { settings.postgres = PostgresEndpoint.read(postgres) }
        if let compression = reader.string("compression") {
            if Self.compressions.contains(compression.lowercased()) {
                settings.compression = compression.lowercased()
            } else {
                reader.issues.add(
                    reader.keyPath("compression"), "\"\(PrintableText.escaped(compression))\" is not a compression",
                    fix: "use one of \(Self.compressions.joined(separator: ", "))", origin: reader.origin("compression"))
            }
        }
        if let workers = reader.int("workers", range: 1...64) { settings.workers = workers }
        settings.catalog = reader.string("catalog")
        settings.keepFull = reader.int("keep_full", range: 1...10_000)
        settings.keepDays = reader.int("keep_days", range: 0...36_500)
        if let timeout = reader.duration("archive_timeout", minimum: .seconds(1)) { settings.archiveTimeout = timeout }
        settings.fullEvery = reader.duration("full_every", minimum: .seconds(1))
        settings.incrementalEvery = reader.duration("incremental_every", minimum: .seconds(1))
        settings.restoreRoot = reader.string("restore_root")
        settings.ferryBinary = reader.string("ferry_binary")
        reader.finish()
        guard repository != nil, dataDirectory != nil else { return nil }
        return settings
    }
}
