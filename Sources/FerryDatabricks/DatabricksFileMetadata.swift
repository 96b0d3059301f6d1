package import Foundation

/// What `HEAD /api/2.0/fs/files{path}` tells about a file.
package struct DatabricksFileMetadata: Sendable, Equatable {
    package var path: String
    /// Bytes, from Content-Length.
    package var size: Int64
    /// From Last-Modified, when the answer has a valid one.
    package var lastModified: Date?
    package var contentType: String?
}
