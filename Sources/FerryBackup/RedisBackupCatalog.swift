package import FerryCore
import FerryRedis
import Foundation
import Logging
import NIOCore

/// The backup catalogue in Redis, as the seed keeps it: a hash per backup (`ferry:backup:<repository>:<id>`) and a
/// sorted set by stop time (`ferry:backups:<repository>`), for listing without reading every manifest.
///
/// It is a cache of the repository's manifests, never the record: `list` checks it against the backups the repository
/// holds, reads what it lacks from their manifests and writes them back, and drops what the repository no longer
/// holds. Redis wiped means rebuilt at the next list, never a backup lost.
package struct RedisBackupCatalog: Sendable {
    package let endpoint: RedisEndpoint
    /// The repository's location: catalogues of several repositories share a Redis without mixing.
    package let repository: String

    package init(endpoint: RedisEndpoint, repository: String) {
        self.endpoint = endpoint
        self.repository = repository
    }

    var setKey: String { "ferry:backups:" + repository }
    func hashKey(_ id: String) -> String { "ferry:backup:" + repository + ":" + id }

    package func record(_ entry: BackupCatalogEntry) async throws(FerryError) {
        try await withConnection { connection in
            _ = try await connection.send(HSET(hashKey(entry.id), entry.fields))
            _ = try await connection.send(ZADD(setKey, [(score: entry.stopped.timeIntervalSince1970, member: entry.id)]))
        }
    }

    package func forget(_ ids: [String]) async throws(FerryError) {
        guard !ids.isEmpty else { return }
        try await withConnection { connection in
            _ = try await connection.send(DEL(keys: ids.map(hashKey)))
            _ = try await connection.send(ZREM(setKey, ids))
        }
    }

    package struct Listing: Sendable {
        /// Oldest first.
        package var entries: [BackupCatalogEntry]
        /// Entries read from their manifests because Redis lacked them (all of them after Redis was wiped).
        package var rebuilt: Int
        /// Entries Redis held for backups the repository no longer has.
        package var dropped: Int
    }

    /// The usable backups of `store`, from Redis where it agrees with the repository.
    package func list(_ store: BackupStore) async throws(FerryError) -> Listing {
        let ids = try store.repository.list("backups").filter { (try? BackupStore.checkID($0)) != nil }
        return try await withConnection { connection in
            let members = Set(try await connection.send(ZRANGE(setKey)).map { String(buffer: $0.member) })
            var listing = Listing(entries: [], rebuilt: 0, dropped: 0)
            for id in ids {
                if members.contains(id) {
                    let pairs = try await connection.send(HGETALL(hashKey(id)))
                    let fields = Dictionary(
                        pairs.map { (String(buffer: $0.field), String(buffer: $0.value)) }, uniquingKeysWith: { first, _ in first })
                    if let entry = BackupCatalogEntry(fields: fields), entry.id == id {
                        listing.entries.append(entry)
                        continue
                    }
                }
                // Not in Redis (or unreadable there): from the manifest, written back. No manifest: incomplete.
                guard try store.repository.read(BackupManifest.path(id)) != nil else { continue }
                let entry = BackupCatalogEntry(try store.manifest(id))
                _ = try await connection.send(HSET(hashKey(id), entry.fields))
                _ = try await connection.send(ZADD(setKey, [(score: entry.stopped.timeIntervalSince1970, member: id)]))
                listing.entries.append(entry)
                listing.rebuilt += 1
            }
            let gone = members.subtracting(ids).sorted()
            if !gone.isEmpty {
                _ = try await connection.send(DEL(keys: gone.map(hashKey)))
                _ = try await connection.send(ZREM(setKey, gone))
                listing.dropped = gone.count
            }
            return listing
        }
    }

    private func withConnection<T: Sendable>(_ body: (RedisConnection) async throws -> T) async throws(FerryError) -> T {
        let address = "\(endpoint.host):\(endpoint.port)"
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(RedisConnectionConfiguration(endpoint), logger: Logger(label: "ferry.backup.catalog"))
        } catch {
            throw FerryError(
                .unreachable, "the backup catalogue's Redis at \(address) is unreachable: \(error.message)",
                fix: "check --catalog (or FERRY_BACKUP_CATALOG) and that Redis runs; backups in the repository are not affected")
        }
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch let error as FerryError {
            await connection.close()
            throw error
        } catch {
            await connection.close()
            throw FerryError(
                .server, "the backup catalogue's Redis at \(address) failed: \(error)",
                fix: "check Redis; the catalogue is rebuilt from the repository at the next list")
        }
    }

    /// `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS); the password may come from REDIS_PASSWORD.
    package static func endpoint(from url: String, environment: [String: String]) throws(FerryError) -> RedisEndpoint {
        guard let components = URLComponents(string: url), let scheme = components.scheme, scheme == "redis" || scheme == "rediss",
            let host = components.host, !host.isEmpty
        else {
            throw FerryError(
                .configuration,
                "the catalogue \"\(PrintableText.escaped(url.split(separator: "@").last.map(String.init) ?? ""))\" is not a redis:// URL",
                fix: "give redis://HOST:PORT/DB, e.g. --catalog redis://127.0.0.1:6379/0")
        }
        var endpoint = RedisEndpoint(host: host, port: components.port ?? 6379)
        guard (1...65535).contains(endpoint.port) else {
            throw FerryError(.configuration, "the catalogue's port \(endpoint.port) is not a port", fix: "give a port 1–65535")
        }
        endpoint.tls = scheme == "rediss"
        if let user = components.user, !user.isEmpty { endpoint.user = user }
        if let password = components.password ?? environment["REDIS_PASSWORD"], !password.isEmpty { endpoint.password = Secret(password) }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let db = Int(path), (0...1023).contains(db) else {
                throw FerryError(
                    .configuration, "the catalogue's database \"\(PrintableText.escaped(path))\" is not a number", fix: "give redis://HOST:PORT/0")
            }
            endpoint.db = db
        }
        return endpoint
    }
}
