package import Foundation

/// One entry of a directory listing (`GET /api/2.0/fs/directories{path}`).
package struct DatabricksDirectoryEntry: Sendable, Equatable {
    /// The absolute path, `/Volumes/...`.
    package var path: String
    package var name: String
    package var isDirectory: Bool
    /// Bytes; nil for a directory.
    package var size: Int64?
    /// nil for a directory, or when the service leaves it out.
    package var lastModified: Date?
}
