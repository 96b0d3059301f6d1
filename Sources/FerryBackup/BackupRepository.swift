package import FerryCore
import Foundation

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
    /// A description for messages (`/backups/ferry`, `s3://bucket/prefix`).
    var location: String { get }
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
        try Self.makeDirectories(directory)
        let temporary = directory + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-" + (full as NSString).lastPathComponent
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw Self.failure("create", temporary, errno) }
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

    static func makeDirectories(_ directory: String) throws(FerryError) {
        var current = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o750) != 0, errno != EEXIST {
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
