package import FerryCore
package import FerryPostgresNode
import Foundation
package import Logging

#if canImport(Glibc)
    import Glibc
#endif

extension PostgresInstance {
    /// Creates a new instance directory from the template and configures it; does not start it.
    package static func create(
        directory: String,
        port: Int? = nil,
        durable: Bool = true,
        settings: [String: String] = [:],
        cache: String,
        logger: Logger
    ) async throws(FerryError) -> PostgresInstance {
        let binaries = try PostgresBinaries.locate()
        let template = try await PostgresTemplate.ensure(cache: cache, binaries: binaries, logger: logger)
        let owner = SystemUser.forPostgres()
        FileSystem.remove(directory)
        try FileSystem.makeDirectory(directory)
        let copy = try await ProcessRunner.run("/bin/cp", ["-a", template.dataDirectory, directory + "/data"])
        guard copy.succeeded else {
            throw FerryError(
                .sandbox, "cannot copy the PostgreSQL template into \(directory): \(copy.standardError.trimmed)",
                fix: "check free disk space and permissions")
        }
        var all: [String: String] = [
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "max_connections": "200",
            "shared_buffers": "'128MB'",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_log_hints": "on",
            "logging_collector": "off",
            "log_min_messages": "warning",
        ]
        if !durable {
            all["fsync"] = "off"
            all["full_page_writes"] = "off"
        }
        for (key, value) in settings { all[key] = value }
        var instance = PostgresInstance(
            directory: directory,
            port: port != nil ? port! : try FreePort.find(),
            user: template.user,
            password: template.password,
            database: template.database,
            binDirectory: binaries.directory,
            settings: all
        )
        try instance.writeConfiguration()
        if let owner { FileSystem.chownRecursive(directory, to: owner) }
        chmod(instance.dataDirectory, 0o700)
        instance.settings = all
        return instance
    }
}
