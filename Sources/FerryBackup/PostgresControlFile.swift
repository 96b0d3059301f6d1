package import FerryCore

#if canImport(Glibc)
    import Glibc
#endif

/// What Ferry reads from a data directory's `global/pg_control` without a server: the cluster's system identifier
/// (its first 8 bytes, in the machine's byte order), which names the cluster's WAL in a repository.
package enum PostgresControlFile {
    package static func systemIdentifier(dataDirectory: String) throws(FerryError) -> UInt64 {
        let path = dataDirectory + "/global/pg_control"
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw FerryError(
                .invalidInput, "cannot read \(path): \(reason)",
                fix: "run it in PostgreSQL's data directory (archive_command and restore_command run there) or pass --data-directory")
        }
        defer { close(descriptor) }
        var identifier: UInt64 = 0
        let read = withUnsafeMutableBytes(of: &identifier) { Glibc.read(descriptor, $0.baseAddress, 8) }
        guard read == 8, identifier != 0 else {
            throw FerryError(.invalidInput, "\(path) is not a PostgreSQL control file", fix: "pass the data directory of a PostgreSQL cluster")
        }
        return identifier
    }
}
