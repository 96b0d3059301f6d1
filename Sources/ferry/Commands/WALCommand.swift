import ArgumentParser
import FerryBackup
import FerryCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry wal push|fetch`: PostgreSQL's continuous WAL archive in a backup repository.
struct WALCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Archive PostgreSQL's WAL into a backup repository and fetch it back (archive_command / restore_command).",
        discussion: """
            In postgresql.conf:
              archive_mode = on
              archive_command = 'ferry wal push %p --repository /backups/ferry'
              # when restoring:
              restore_command = 'ferry wal fetch %f %p --repository /backups/ferry'

            Files are compressed (zstd by default) and stored with their SHA-256 under the cluster's system identifier, so clusters sharing a repository never mix. Pushing a file already archived with the same content succeeds; with other content it fails and names the file. A fetched file is checked before PostgreSQL reads it; a file the archive does not hold exits with 1 and prints nothing, as PostgreSQL expects. See docs/BACKUPS.md.
            """,
        subcommands: [Push.self, Fetch.self]
    )

    struct RepositoryOptions: ParsableArguments {
        @Option(
            help: ArgumentHelp(
                "The backup repository: a directory, or s3://bucket/prefix with the AWS_* variables (or FERRY_BACKUP_REPOSITORY).",
                valueName: "location"))
        var repository: String?

        @Option(
            name: .customLong("data-directory"),
            help: ArgumentHelp("PostgreSQL's data directory (default: the current one, where PostgreSQL runs these commands).", valueName: "path"))
        var dataDirectory = "."

        func open() throws(FerryError) -> (repository: any BackupRepository, system: UInt64) {
            guard let path = repository ?? ProcessInfo.processInfo.environment["FERRY_BACKUP_REPOSITORY"], !path.isEmpty else {
                throw FerryError(
                    .configuration, "no backup repository given",
                    fix:
                        "pass --repository DIR (e.g. archive_command = 'ferry wal push %p --repository /backups/ferry') or set FERRY_BACKUP_REPOSITORY"
                )
            }
            return (try BackupRepositories.open(path), try PostgresControlFile.systemIdentifier(dataDirectory: dataDirectory))
        }
    }

    struct Push: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push", abstract: "Archive one WAL file (PostgreSQL's %p): archive_command = 'ferry wal push %p --repository DIR'.")

        @Argument(help: ArgumentHelp("The WAL file, as PostgreSQL passes it (%p: pg_wal/NAME, relative to the data directory).", valueName: "path"))
        var path: String

        @OptionGroup var repositoryOptions: RepositoryOptions

        @Option(help: ArgumentHelp("Compression: \(BackupCompression.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
        var compression = "zstd"

        @Flag(help: "Print the outcome as JSON.")
        var json = false

        func run() throws {
            guard let codec = BackupCompression(rawValue: compression) else {
                throw FerryError(
                    .configuration, "unknown compression \"\(PrintableText.escaped(compression))\"",
                    fix: "use one of \(BackupCompression.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let (repository, system) = try repositoryOptions.open()
            let name = (path as NSString).lastPathComponent
            guard let content = FileManager.default.contents(atPath: path) else {
                throw FerryError(.invalidInput, "cannot read the WAL file \(path)", fix: "pass PostgreSQL's %p, and run from the data directory")
            }
            let outcome = try WALArchive(repository: repository, compression: codec).push(name: name, content: Array(content), system: system)
            switch outcome {
            case .stored(let bytes):
                Terminal.print(
                    json
                        ? #"{"file":"\#(name)","outcome":"stored","bytes":\#(content.count),"stored_bytes":\#(bytes)}"#
                        : "archived \(name) (\(content.count) bytes, \(bytes) stored)")
            case .alreadyArchived:
                Terminal.print(
                    json
                        ? #"{"file":"\#(name)","outcome":"already_archived","bytes":\#(content.count)}"#
                        : "\(name) was already archived with the same content")
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch", abstract: "Fetch one archived WAL file: restore_command = 'ferry wal fetch %f %p --repository DIR'.")

        @Argument(help: ArgumentHelp("The file's name (PostgreSQL's %f).", valueName: "name"))
        var name: String

        @Argument(help: ArgumentHelp("Where to write it (PostgreSQL's %p).", valueName: "destination"))
        var destination: String

        @OptionGroup var repositoryOptions: RepositoryOptions

        func run() throws {
            let (repository, system) = try repositoryOptions.open()
            guard let content = try WALArchive(repository: repository).fetch(name: name, system: system) else {
                // Not archived: PostgreSQL asks for files that may not exist (the next timeline's history) and takes
                // exit status 1 as "not there".
                throw ExitCode(1)
            }
            try Self.writeWhole(content, to: destination)
        }

        /// Writes under a temporary name beside `destination`, then renames it: PostgreSQL never reads half a file. No
        /// flush: the file is recovery's working copy (RECOVERYXLOG), which PostgreSQL reads at once and does not keep.
        static func writeWhole(_ content: [UInt8], to destination: String) throws(FerryError) {
            let temporary = destination + ".ferry-\(getpid())"
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw FerryError(
                    .permission, "cannot write \(temporary): \(String(cString: strerror(errno)))",
                    fix: "run it as PostgreSQL's user, in its data directory")
            }
            var offset = 0
            while offset < content.count {
                let written = content.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, content.count - offset) }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else {
                    let reason = String(cString: strerror(errno))
                    close(descriptor)
                    unlink(temporary)
                    throw FerryError(.server, "cannot write \(temporary): \(reason)", fix: "check free space in the data directory")
                }
                offset += written
            }
            close(descriptor)
            guard rename(temporary, destination) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw FerryError(.server, "cannot move the fetched file to \(destination): \(reason)", fix: "check the data directory's permissions")
            }
        }
    }
}
