package import FerryCore
package import FerryPostgresNode
import Foundation
package import Logging

extension LocalCluster {
    /// Settings every node gets (on top of the sandbox's: `wal_level=replica`, slots, `wal_log_hints`).
    static let nodeSettings: [String: String] = [
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "wal_keep_size": "'256MB'",
        "max_slot_wal_keep_size": "'4GB'",
        "wal_receiver_status_interval": "'1s'",
        "wal_sender_timeout": "'10s'",
        "wal_receiver_timeout": "'10s'",
        "wal_retrieve_retry_interval": "'500ms'",
        "synchronous_commit": "on",
    ]

    /// Creates and starts a primary (`node1`) and `replicas` standbys (`node2`…), each from a base backup of the
    /// primary taken through its own slot.
    /// With `archive`, every node archives its WAL into `archive.repository` through `archive.binary` (copied where
    /// PostgreSQL's account can run it when it cannot reach it where it is).
    package static func create(
        directory: String, replicas: Int, archive: (repository: String, binary: String)? = nil, logger: Logger
    ) async throws(FerryError) -> LocalCluster {
        guard (0...8).contains(replicas) else {
            throw FerryError(.configuration, "--replicas \(replicas) is out of range", fix: "use 0 to 8 standbys")
        }
        let directory = FileSystem.absolute(directory)
        if let existing = load(directory: directory), existing.nodes.contains(where: { $0.instance.isRunning }) {
            throw FerryError(.sandbox, "a cluster is already running in \(directory)", fix: "use it, or stop it first with `ferry cluster down`")
        }
        if let existing = load(directory: directory) { FileSystem.remove(existing.serverRoot) }
        FileSystem.remove(directory)
        try FileSystem.makeDirectory(directory)
        let serverRoot = try Sandbox.reachableServerRoot(for: directory)
        var settings = nodeSettings
        if let archive {
            let binary = try Sandbox.reachableBinary(archive.binary, serverRoot: serverRoot)
            try FileSystem.makeDirectory(archive.repository)
            if let owner = SystemUser.forPostgres() { FileSystem.chownRecursive(archive.repository, to: owner) }
            settings["archive_mode"] = "on"
            settings["archive_command"] = "'\(binary) wal push %p --repository \(archive.repository)'"
        }
        let primary = try await PostgresInstance.create(
            directory: serverRoot + "/node1", settings: settings, cache: Sandbox.cacheDirectory(serverRoot: serverRoot, root: directory),
            logger: logger)
        var cluster = LocalCluster(
            directory: directory, serverRoot: serverRoot, nodes: [Node(name: "node1", instance: primary)], replicationUser: "ferry_replication",
            replicationPassword: PostgresTemplate.randomPassword())
        cluster.archiveRepository = archive?.repository
        try cluster.save()
        try await primary.start()
        _ = try await primary.psql(
            "CREATE ROLE \(cluster.replicationUser) WITH REPLICATION LOGIN PASSWORD '\(cluster.replicationPassword)'")
        for index in 0..<replicas {
            let name = "node\(index + 2)"
            logger.info("cloning a standby", metadata: ["ferry.node": "\(name)"])
            cluster.nodes.append(Node(name: name, instance: try await cluster.cloneStandby(name, from: primary)))
            try cluster.save()
        }
        try cluster.save()
        return cluster
    }

    /// A new standby `name` of `primary`: slot, `pg_basebackup`, its own port and `primary_conninfo`, started.
    func cloneStandby(_ name: String, from primary: PostgresInstance) async throws(FerryError) -> PostgresInstance {
        _ = try await primary.psql(
            "SELECT pg_create_physical_replication_slot('\(name)', true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '\(name)')"
        )
        var standby = primary
        standby.directory = serverRoot + "/" + name
        standby.port = try FreePort.find()
        FileSystem.remove(standby.directory)
        try FileSystem.makeDirectory(standby.directory)
        try await standby.copyFrom(host: "127.0.0.1", port: primary.port, user: replicationUser, password: replicationPassword, slot: name)
        try standby.configureStandby(host: "127.0.0.1", port: primary.port, user: replicationUser, password: replicationPassword, slot: name)
        standby.settings.merge(
            PostgresInstance.standbySettings(host: "127.0.0.1", port: primary.port, user: replicationUser, password: replicationPassword, slot: name)
        ) { $1 }
        try await standby.start()
        return standby
    }
}
