public import FerryCore
import Foundation

/// Where PostgreSQL's server programs are: `FERRY_PG_BINDIR`, else Debian's `/usr/lib/postgresql/15/bin`,
/// else the newest `/usr/lib/postgresql/*/bin`.
public struct PostgresBinaries: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var initdb: String { directory + "/initdb" }
    public var pgCtl: String { directory + "/pg_ctl" }
    public var postgres: String { directory + "/postgres" }
    public var psql: String { directory + "/psql" }
    public var pgBasebackup: String { directory + "/pg_basebackup" }
    public var pgRewind: String { directory + "/pg_rewind" }

    public static func locate(environment: [String: String]? = nil) throws(FerryError) -> PostgresBinaries {
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
