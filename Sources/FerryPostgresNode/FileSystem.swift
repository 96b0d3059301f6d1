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

    package static func write(_ text: String, to path: String, mode: Int = 0o644) throws(FerryError) {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, mode_t(mode))
        } catch {
            throw FerryError(.sandbox, "cannot write \(path)", fix: "check the permissions of its directory", underlying: error)
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
