import CFreeTDS
package import FerryCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What DB-Library's login cannot say — encryption and the certificate authority — said the way FreeTDS reads it: a
/// server section in a freetds.conf of Ferry's own (`dbsetifile`), one per endpoint that needs it. The login then names
/// the section instead of `host:port`. FreeTDS 1.3's DB-Library has no working login option for encryption
/// (`DBSETENCRYPT` answers FAIL), so this is the supported way.
///
/// The file holds server sections only, never `[global]`: every other login reads the user's own freetds.conf as
/// before. It is rewritten whole (written aside, then renamed) when a section is added, and removed at exit.
enum FreeTDSServers {
    private static let sections = Mutex<[String: String]>([:])

    /// The file, one per process.
    static let path: String = {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        return "\(directory)/ferry-freetds-\(getpid()).conf"
    }()

    /// The server name to log in to for `endpoint`: `host:port`, or a section of the file when encryption or a CA is
    /// asked for.
    static func serverName(_ endpoint: SQLServerEndpoint, key: String) throws(FerryError) -> String {
        guard endpoint.encryption != .request || endpoint.caFile != nil else { return "\(endpoint.host):\(endpoint.port)" }
        for (name, value) in [("host", endpoint.host), ("ca_file", endpoint.caFile ?? "")] where value.contains(where: { "\n\r;#".contains($0) }) {
            throw FerryError(
                .configuration, "\(key).\(name) has a character FreeTDS's configuration cannot hold (a line break, ; or #)",
                fix: "use a path or name without it")
        }
        if let file = endpoint.caFile, access(file, R_OK) != 0 {
            throw FerryError(
                .configuration, "\(key).ca_file \(file) cannot be read",
                fix: "point it at the PEM file of the CA that signed SQL Server's certificate")
        }
        var lines = ["\thost = \(endpoint.host)", "\tport = \(endpoint.port)", "\tencryption = \(endpoint.encryption.rawValue)"]
        if let file = endpoint.caFile {
            lines += ["\tca file = \(file)", "\tcheck certificate hostname = yes"]
        }
        let body = lines.joined(separator: "\n")
        return try sections.withLock { (known: inout [String: String]) throws(FerryError) -> String in
            if let existing = known.first(where: { $0.value == body }) { return existing.key }
            let name = "ferry-\(known.count + 1)"
            known[name] = body
            try write(known)
            return name
        }
    }

    private static func write(_ sections: [String: String]) throws(FerryError) {
        let text = sections.sorted { $0.key < $1.key }.map { "[\($0.key)]\n\($0.value)\n" }.joined(separator: "\n")
        let aside = path + ".new"
        guard let file = fopen(aside, "w") else {
            throw FerryError(
                .configuration, "cannot write FreeTDS's settings to \(aside): \(String(cString: strerror(errno)))",
                fix: "set TMPDIR to a writable directory")
        }
        let bytes = Array(text.utf8)
        let written = fwrite(bytes, 1, bytes.count, file)
        fclose(file)
        guard written == bytes.count, rename(aside, path) == 0 else {
            throw FerryError(.configuration, "cannot write FreeTDS's settings to \(path)", fix: "set TMPDIR to a writable directory with room")
        }
        _ = installed
    }

    /// Tells DB-Library about the file (once) and removes it at exit.
    private static let installed: Void = {
        dbsetifile(strdup(path))
        atexit { unlink(FreeTDSServers.path) }
    }()
}
