package import FerryCore
package import FerryDatabricks
import Foundation

/// A Unity Catalog Volume through Databricks' Files API: each file is written whole to a local scratch file, then
/// uploaded in one request (the service shows the file only once its upload completed) and the scratch file removed.
package struct DatabricksVolumeDestination: ExtractDestination {
    package let client: DatabricksFilesClient
    /// `/Volumes/<catalog>/<schema>/<volume>[/…]`.
    package let directory: String
    /// Where files are written before their upload.
    package let scratch: String

    package init(client: DatabricksFilesClient, directory: String, scratch: String = NSTemporaryDirectory()) throws(FerryError) {
        let trimmed = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        _ = try VolumePath(trimmed)
        self.client = client
        self.directory = trimmed
        self.scratch = scratch
    }

    package var location: String { directory }

    package func prepare() async throws(FerryError) {
        try await client.createDirectory(directory)
    }

    package func exists(_ name: String) async throws(FerryError) -> Bool {
        do {
            _ = try await client.metadata(directory + "/" + name)
            return true
        } catch  where error.code == .notFound {
            return false
        }
    }

    package func temporaryPath(for name: String) -> String {
        scratch + "/ferry-" + UUID().uuidString.prefix(8) + "-" + name + ".partial"
    }

    package func publish(_ temporary: String, as name: String, overwrite: Bool) async throws(FerryError) {
        defer { discard(temporary) }
        try await client.upload(file: temporary, to: directory + "/" + name, overwrite: overwrite)
    }

    package func discard(_ temporary: String) { unlink(temporary) }
}
