package import FerryCore
import Foundation

/// Where `redis-server` is: `FERRY_REDIS_SERVER`, else the first on PATH, else `/usr/bin/redis-server`.
package enum RedisBinaries {
    package static func locateServer(environment: [String: String]? = nil) throws(FerryError) -> String {
        let environment = environment ?? ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let explicit = environment["FERRY_REDIS_SERVER"], !explicit.isEmpty { candidates.append(explicit) }
        for directory in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(directory)/redis-server") }
        candidates.append("/usr/bin/redis-server")
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw FerryError(
            .sandbox,
            "redis-server not found on PATH or in /usr/bin",
            fix: "install it with `sudo apt-get install redis-server` (or run `make setup`), or set FERRY_REDIS_SERVER"
        )
    }
}
