package import FerryCore
import Foundation

/// Opens a repository from its location: a directory (an absolute path), or `s3://bucket/prefix` with credentials,
/// region and endpoint from the environment (S3Configuration+Environment.swift).
package enum BackupRepositories {
    package static func open(_ location: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(FerryError)
        -> any BackupRepository
    {
        if location.hasPrefix("s3://") { return try S3Repository(location: location, environment: environment) }
        guard location.hasPrefix("/") else {
            throw FerryError(
                .configuration, "the repository \"\(PrintableText.escaped(location))\" is neither an absolute path nor s3://bucket/prefix",
                fix: "give the repository's full path (PostgreSQL runs archive and restore commands in its data directory), or an S3 location")
        }
        return LocalRepository(root: location)
    }
}
