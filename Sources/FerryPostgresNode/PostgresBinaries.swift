package import FerryCore
import Foundation

/// Where PostgreSQL's server programs are: `FERRY_PG_BINDIR`, else Debian's `/usr/lib/postgresql/15/bin`,
/// else the newest `/usr/lib/postgresql/*/bin`.
package struct PostgresBinaries: Sendable {
    package let directory: String

    package init(directory: String) { self.directory = directory }

    package var initdb: String { directory + "/initdb" }
    package var pgCtl: String { directory + "/pg_ctl" }
    package var postgres: String { directory + "/postgres" }
    package var psql: String { directory + "/psql" }
    package var pgBasebackup: String { directory + "/pg_basebackup" }
    package var pgRewind: String { directory + "/pg_rewind" }

    package static func locate(environment: [String: String]? = nil) throws(FerryError) -> PostgresBinaries {
        let environment = environment ?? ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let explicit = environment["FERRY_PG_BINDIR"], !explicit.isEmpty { candidates.append(explicit) }
        candidates.append("/usr/lib/postgresql/15/bin")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.compactMap(Int.init).sorted(by: >) { candidates.append("/usr/lib/postgresql/\(version)/bin") }
        for directory in candidates where FileManager.default.isExecutableFile(atPath: directory + "/initdb") {
            return PostgresBinaries(directory: directory)
        }
        throw FerryError(
            .sandbox,
            "PostgreSQL server programs (initdb, pg_ctl) not found in \(candidates.joined(separator: ", "))",
            fix: "install them with `sudo apt-get install postgresql-15` (or run `make setup`), or set FERRY_PG_BINDIR"
        )
    }
}
