package import FerryCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The files and directories of a PostgreSQL data directory that a base backup holds, leaving out what PostgreSQL's
/// own base backup leaves out: the WAL (restore fetches it from the archive), the server's pid and options, runtime
/// state rebuilt at start (`pg_stat_tmp`, `pg_replslot`, `pg_dynshmem`, `pg_notify`, `pg_serial`, `pg_snapshots`,
/// `pg_subtrans`), temporary files and relations, unlogged relations' data (their init forks are kept), relation
/// cache files, and the signal and label files a restore writes itself.
package struct DataDirectoryScan: Sendable {
    package struct Entry: Sendable, Equatable {
        package var path: String
        package var size: Int64
        package var mode: UInt32
        package var modified: Int64
    }

    package var files: [Entry] = []
    package var directories: [BackupManifest.Directory] = []

    /// Directories kept empty.
    static let emptiedDirectories: Set<String> = [
        "pg_wal", "pg_stat_tmp", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_subtrans",
    ]
    static let excludedFiles: Set<String> = [
        "postmaster.pid", "postmaster.opts", "postgresql.auto.conf.tmp", "current_logfiles", "pg_internal.init", "backup_label",
        "backup_label.old", "tablespace_map", "tablespace_map.old", "standby.signal", "recovery.signal",
    ]

    package init(dataDirectory: String) throws(FerryError) {
        try Self.checkDataDirectory(dataDirectory)
        try walk(root: dataDirectory, relative: "")
        files.sort { $0.path < $1.path }
    }

    /// Refuses a directory that is not a data directory this user can read.
    package static func checkDataDirectory(_ dataDirectory: String) throws(FerryError) {
        var status = stat()
        guard stat(dataDirectory + "/global/pg_control", &status) == 0 else {
            throw FerryError(
                .configuration, "\(dataDirectory) is not a PostgreSQL data directory (no global/pg_control), or this user cannot read it",
                fix: "pass the server's data directory (SHOW data_directory) and run ferry as its owner or root")
        }
    }

    private mutating func walk(root: String, relative: String) throws(FerryError) {
        let absolute = relative.isEmpty ? root : root + "/" + relative
        guard let handle = opendir(absolute) else {
            let reason = String(cString: strerror(errno))
            if errno == ENOENT, !relative.isEmpty { return }  // dropped while the backup ran: WAL replay removes it
            throw FerryError(.permission, "cannot list \(absolute): \(reason)", fix: "run ferry as the data directory's owner or root")
        }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        closedir(handle)
        let unlogged = Set(names.filter { $0.hasSuffix("_init") }.map { String($0.dropLast(5)) })
        for name in names.sorted() {
            let path = relative.isEmpty ? name : relative + "/" + name
            var status = stat()
            guard lstat(root + "/" + path, &status) == 0 else { continue }  // removed meanwhile
            let kind = status.st_mode & S_IFMT
            if relative == "pg_tblspc" {
                throw FerryError(
                    .unsupported, "the data directory has a tablespace (pg_tblspc/\(name)); Ferry's backups do not cover tablespaces yet",
                    fix:
                        "move its tables to the default tablespace (ALTER TABLE … SET TABLESPACE pg_default), or back this server up with pg_basebackup"
                )
            }
            if kind == S_IFLNK {
                // pg_wal elsewhere (initdb -X) is kept as a directory; other links are followed.
                guard stat(root + "/" + path, &status) == 0 else { continue }
            }
            if status.st_mode & S_IFMT == S_IFDIR {
                if name.hasPrefix("pgsql_tmp") { continue }
                directories.append(.init(path: path, mode: UInt32(status.st_mode & 0o7777)))
                if relative.isEmpty, Self.emptiedDirectories.contains(name) {
                    if name == "pg_wal" { directories.append(.init(path: "pg_wal/archive_status", mode: UInt32(status.st_mode & 0o7777))) }
                    continue
                }
                try walk(root: root, relative: path)
                continue
            }
            guard status.st_mode & S_IFMT == S_IFREG else { continue }
            if Self.excludedFiles.contains(name) || name.hasPrefix("pgsql_tmp") { continue }
            if Self.isTemporaryRelation(name) { continue }
            if let relation = Self.relationNumber(name), unlogged.contains(relation), !name.hasSuffix("_init") { continue }
            files.append(
                .init(path: path, size: Int64(status.st_size), mode: UInt32(status.st_mode & 0o7777), modified: Int64(status.st_mtim.tv_sec)))
        }
    }

    /// `t3_16384`, `t3_16384_fsm`, `t3_16384.1`: a temporary relation's file.
    static func isTemporaryRelation(_ name: String) -> Bool {
        guard name.hasPrefix("t"), let underscore = name.firstIndex(of: "_") else { return false }
        let backend = name[name.index(after: name.startIndex)..<underscore]
        return !backend.isEmpty && backend.allSatisfy(\.isNumber) && relationNumber(String(name[name.index(after: underscore)...])) != nil
    }

    /// The relation file number in `16384`, `16384.2`, `16384_fsm`, `16384_vm.1`; nil for any other name.
    static func relationNumber(_ name: String) -> String? {
        let digits = name.prefix(while: \.isNumber)
        guard !digits.isEmpty else { return nil }
        let rest = name.dropFirst(digits.count)
        if rest.isEmpty || rest.hasPrefix(".") || rest.hasPrefix("_") { return String(digits) }
        return nil
    }
}
