package import FerryCore
import Foundation

/// Where finished Parquet files go. A file is written whole under a temporary name first and only then published
/// under its name: a reader never sees half a file.
package protocol ExtractDestination: Sendable {
    /// `/data/out` or `/Volumes/main/sales/landing`, for messages and the summary.
    var location: String { get }
    /// Creates what is missing (directories); fails early when the destination cannot be written.
    func prepare() async throws(FerryError)
    /// Whether `name` exists there already.
    func exists(_ name: String) async throws(FerryError) -> Bool
    /// A local path to write `name` into before it is published (a hidden name beside it, or a scratch file).
    func temporaryPath(for name: String) -> String
    /// Makes the file at `temporary` appear as `name`, replacing an existing one only with `overwrite`.
    func publish(_ temporary: String, as name: String, overwrite: Bool) async throws(FerryError)
    /// Removes a temporary file of a run that failed.
    func discard(_ temporary: String)
}

/// A local directory: files are written as `.name.partial` beside their final name and renamed (atomic on one
/// filesystem), after an fsync.
package struct LocalDirectoryDestination: ExtractDestination {
    package let directory: String

    package init(directory: String) { self.directory = directory }

    package var location: String { directory }

    package func prepare() async throws(FerryError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FerryError(
                .permission, "cannot create the destination \(directory): \(error.localizedDescription)", fix: "check the path and its permissions")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw FerryError(
                .permission, "the destination \(directory) is not writable", fix: "check its permissions, or choose another --destination")
        }
    }

    package func exists(_ name: String) async throws(FerryError) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/" + name)
    }

    package func temporaryPath(for name: String) -> String { directory + "/." + name + ".partial" }

    package func publish(_ temporary: String, as name: String, overwrite: Bool) async throws(FerryError) {
        let target = directory + "/" + name
        if !overwrite, FileManager.default.fileExists(atPath: target) {
            discard(temporary)
            throw FerryError(.conflict, "\(target) exists", fix: "pass --overwrite to replace it, or choose another --destination")
        }
        guard rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            discard(temporary)
            throw FerryError(.permission, "cannot move the finished file to \(target): \(reason)", fix: "check the destination's permissions")
        }
    }

    package func discard(_ temporary: String) { unlink(temporary) }
}
