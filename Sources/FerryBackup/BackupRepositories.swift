package import FerryCore

/// Opens a repository from its location: a directory (an absolute path) today; `s3://bucket/prefix` next.
package enum BackupRepositories {
    package static func open(_ location: String) throws(FerryError) -> any BackupRepository {
        guard location.hasPrefix("/") else {
            throw FerryError(
                .configuration, "the repository \"\(PrintableText.escaped(location))\" is not an absolute path",
                fix: "give the repository's full path (PostgreSQL runs archive and restore commands in its data directory)")
        }
        return LocalRepository(root: location)
    }
}
