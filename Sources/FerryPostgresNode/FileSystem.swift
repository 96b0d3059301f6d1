package import FerryCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Small file-system operations the launchers need, with errors that name the path.
package enum FileSystem {
    package static func makeDirectory(_ path: String) throws(FerryError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FerryError(.sandbox, "cannot create directory \(path)", fix: "check the permissions of its parent directory", underlying: error)
        }
    }

    /// A directory the PostgreSQL account owns, private to it (a data directory's parent, a server's log).
    package static func makeServerDirectory(_ path: String) throws(FerryError) {
        try makeDirectory(path)
        if let owner = SystemUser.forPostgres() { chownRecursive(path, to: owner) }
        chmod(path, 0o700)
    }

    /// Writes `text` to `path` atomically, with `mode` from the moment the file exists: a temporary file beside it is
    /// created with that mode (never world-readable first and narrowed after), written, synced and renamed over
    /// `path`. A failure leaves `path` as it was.
    package static func write(_ text: String, to path: String, mode: Int = 0o644) throws(FerryError) {
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard descriptor >= 0 else {
            throw FerryError(.sandbox, "cannot write \(path): \(String(cString: strerror(errno)))", fix: "check the permissions of its directory")
        }
        let failure: String? = {
            defer { close(descriptor) }
            // Exactly `mode`, whatever the umask (an umask can only have narrowed it).
            fchmod(descriptor, mode_t(mode))
            var bytes = Array(text.utf8)[...]
            while !bytes.isEmpty {
                let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                bytes = bytes.dropFirst(written)
            }
            return fsync(descriptor) == 0 ? nil : String(cString: strerror(errno))
        }()
        if let failure {
            unlink(temporary)
            throw FerryError(.sandbox, "cannot write \(path): \(failure)", fix: "check free space and the permissions of its directory")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw FerryError(.sandbox, "cannot write \(path): \(reason)", fix: "check the permissions of its directory")
        }
    }

    package static func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    package static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    package static func move(_ path: String, to destination: String) throws(FerryError) {
        do {
            try FileManager.default.moveItem(atPath: path, toPath: destination)
        } catch {
            throw FerryError(.sandbox, "cannot move \(path) to \(destination)", fix: "check permissions and free space", underlying: error)
        }
    }

    package static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Changes the owner of `path` and everything under it.
    package static func chownRecursive(_ path: String, to user: SystemUser) {
        lchown(path, user.uid, user.gid)
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return }
        while let relative = enumerator.nextObject() as? String {
            lchown(path + "/" + relative, user.uid, user.gid)
        }
    }

    /// Whether `user` can reach `path` (search permission on every ancestor directory).
    package static func canTraverse(_ path: String, as user: SystemUser) -> Bool {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            var info = stat()
            guard stat(current, &info) == 0 else { return true }
            let mode = info.st_mode
            let allowed =
                (info.st_uid == user.uid && mode & 0o100 != 0) || (info.st_gid == user.gid && mode & 0o010 != 0) || mode & 0o001 != 0
            if !allowed { return false }
        }
        return true
    }

    package static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}
