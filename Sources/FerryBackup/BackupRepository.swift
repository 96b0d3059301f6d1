package import FerryCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where backups and archived WAL are kept: paths are relative, `/`-separated, and never leave the repository.
package protocol BackupRepository: Sendable {
    /// The file's bytes, or nil when there is none.
    func read(_ path: String) throws(FerryError) -> [UInt8]?
    /// Stores `bytes` at `path` whole or not at all (never a partial file under that name). With `replacing` false,
    /// a file already at `path` is kept and the call returns false (atomically: of two writers, one wins).
    @discardableResult
    func write(_ path: String, _ bytes: [UInt8], replacing: Bool) throws(FerryError) -> Bool
    /// The names directly inside `directory` (files and directories), sorted; empty when there is none.
    func list(_ directory: String) throws(FerryError) -> [String]
    /// Removes the file or the directory tree at `path`; nothing there is not an error.
    func remove(_ path: String) throws(FerryError)
    /// Takes the repository's lock for `what` (one backup, retention run or deletion at a time); held until the
    /// returned lock is released or dropped, and never left held by a process that died.
    func lock(for what: String) throws(FerryError) -> any RepositoryLock
    /// A description for messages (`/backups/ferry`, `s3://bucket/prefix`).
    var location: String { get }
}

/// A repository's lock: held until `release()` or until it is dropped.
package protocol RepositoryLock: Sendable {
    func release()
}

/// A repository in a local directory (or a mounted file system). Writes go to a temporary name in the same directory,
/// are flushed to disk, then renamed into place, and the directory is flushed: after a crash a file is there whole
/// or not at all.
package struct LocalRepository: BackupRepository {
    package let root: String
    package var location: String { root }

    package init(root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    package func read(_ path: String) throws(FerryError) -> [UInt8]? {
        let full = try resolve(path)
        let descriptor = open(full, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw Self.failure("read", full, errno)
        }
        defer { close(descriptor) }
        return try Self.readAll(descriptor, path: full)
    }

    @discardableResult
    package func write(_ path: String, _ bytes: [UInt8], replacing: Bool = true) throws(FerryError) -> Bool {
        let full = try resolve(path)
        let directory = (full as NSString).deletingLastPathComponent
        try Self.makeDirectories(directory, owner: repositoryOwner)
        let temporary = directory + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-" + (full as NSString).lastPathComponent
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw Self.failure("create", temporary, errno) }
        if let owner = repositoryOwner { _ = fchown(descriptor, owner.uid, owner.gid) }
        var done = false
        defer {
            if !done { unlink(temporary) }
        }
        do {
            defer { close(descriptor) }
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { pointer in Glibc.write(descriptor, pointer.baseAddress! + offset, bytes.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Self.failure("write", temporary, errno)
                }
                offset += written
            }
            guard fsync(descriptor) == 0 else { throw Self.failure("flush", temporary, errno) }
        }
        if replacing {
            guard rename(temporary, full) == 0 else { throw Self.failure("rename into place", full, errno) }
            done = true
        } else {
            // link() never replaces: the first writer's file stays, whoever comes second learns it.
            if link(temporary, full) != 0 {
                if errno == EEXIST { return false }
                throw Self.failure("link into place", full, errno)
            }
        }
        Self.flushDirectory(directory)
        return true
    }

    package func list(_ directory: String) throws(FerryError) -> [String] {
        let full = try resolve(directory)
        guard let handle = opendir(full) else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw Self.failure("list", full, errno)
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != ".", name != "..", !name.hasPrefix(".tmp-") { names.append(name) }
        }
        return names.sorted()
    }

    package func remove(_ path: String) throws(FerryError) {
        let full = try resolve(path)
        do {
            try FileManager.default.removeItem(atPath: full)
        } catch let error as CocoaError where error.code == .fileNoSuchFile {
            return
        } catch {
            if access(full, F_OK) != 0 { return }
            throw FerryError(
                .permission, "cannot remove \(full): \(error.localizedDescription)", fix: "give the user running ferry write access to \(root)")
        }
    }

    /// Takes the repository's lock (`backup.lock`, an advisory lock the kernel releases when the process dies): one
    /// backup, retention run or deletion at a time, and a killed run never leaves it held.
    package func lock(for what: String) throws(FerryError) -> any RepositoryLock {
        try Self.makeDirectories(root)
        let path = root + "/backup.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw Self.failure("open", path, errno) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? Self.readAll(descriptor, path: path)).map {
                String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            close(descriptor)
            throw FerryError(
                .conflict,
                "another ferry is working in \(root) (\(holder.map { $0.isEmpty ? "pid unknown" : $0 } ?? "pid unknown")), so \(what) cannot start",
                fix: "wait for it to finish (or stop it), then run this again")
        }
        _ = ftruncate(descriptor, 0)
        let note = Array("pid \(getpid()): \(what)\n".utf8)
        _ = note.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return FileLock(descriptor: descriptor)
    }

    /// `path` under the root; refused when it is absolute, empty or climbs out (`..`).
    private func resolve(_ path: String) throws(FerryError) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw FerryError(.invalidInput, "\"\(PrintableText.escaped(path))\" is not a path inside the repository")
        }
        return root + "/" + path
    }

    private static func readAll(_ descriptor: Int32, path: String) throws(FerryError) -> [UInt8] {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw failure("read", path, errno) }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.count
            let read = bytes.withUnsafeMutableBytes { pointer in Glibc.read(descriptor, pointer.baseAddress! + offset, count - offset) }
            if read < 0 {
                if errno == EINTR { continue }
                throw failure("read", path, errno)
            }
            if read == 0 { break }
            offset += read
        }
        if offset < bytes.count { bytes.removeLast(bytes.count - offset) }
        return bytes
    }

    /// When root writes into a repository another account owns (an agent, beside PostgreSQL's archive_command), what
    /// it creates is handed to that owner, so the other account can still write beside it.
    private var repositoryOwner: (uid: uid_t, gid: gid_t)? {
        guard geteuid() == 0 else { return nil }
        var status = stat()
        guard stat(root, &status) == 0, status.st_uid != 0 else { return nil }
        return (status.st_uid, status.st_gid)
    }

    static func makeDirectories(_ directory: String, owner: (uid: uid_t, gid: gid_t)? = nil) throws(FerryError) {
        var current = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o750) == 0 {
                if let owner { _ = chown(current, owner.uid, owner.gid) }
            } else if errno != EEXIST {
                // The fix is about the directory it goes in, which must let this user create entries.
                let code = errno
                var error = failure("create the directory", current, code)
                if code == EACCES || code == EPERM {
                    let parent = (current as NSString).deletingLastPathComponent
                    error.fix = "give the user running ferry (for WAL, PostgreSQL's own user) write access to \(parent), or create \(current) for it"
                }
                throw error
            }
        }
    }

    private static func flushDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    static func failure(_ action: String, _ path: String, _ code: Int32) -> FerryError {
        let reason = String(cString: strerror(code))
        let fix: String =
            switch code {
            case EACCES, EPERM: "give the user running ferry (for WAL, PostgreSQL's own user) read and write access to \(path)"
            case ENOSPC, EDQUOT: "free space where the repository lives, or move `--repository` to a larger disk"
            case EROFS: "the repository's file system is read-only: remount it read-write or choose another path"
            default: "check the repository path and its file system"
            }
        return FerryError(code == EACCES || code == EPERM ? .permission : .server, "cannot \(action) \(path): \(reason)", fix: fix)
    }
}

/// A local repository's lock: an advisory `flock` on `backup.lock`, which the kernel drops when the process dies.
final class FileLock: RepositoryLock {
    private let descriptor: Mutex<Int32>

    init(descriptor: Int32) { self.descriptor = Mutex(descriptor) }

    func release() {
        descriptor.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }

    deinit { release() }
}
