public import FerryCore
import Foundation
public import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL primary with streaming-replication standbys on loopback, each node its own server process under
/// one directory (`ferry cluster init --local`, and the HA tests).
///
/// Every standby streams through its own physical replication slot (named after the node), so the primary keeps
/// the WAL a standby has not received yet. Data checksums (from the template) and `wal_log_hints` let `pg_rewind`
/// bring an old primary back. The layout is saved as `cluster.json` so later commands find the nodes.
public struct LocalCluster: Sendable, Codable {
    public struct Node: Sendable, Codable, Hashable {
        public var name: String
        public var instance: PostgresInstance
    }

    public var directory: String
    /// Where the nodes' data lives: `directory`, or a directory under /var/tmp when the PostgreSQL account cannot
    /// reach `directory` (see ``Sandbox``).
    public var serverRoot: String
    public var nodes: [Node]
    public var replicationUser: String
    public var replicationPassword: String
    /// The etcd the agents use and their key prefix (`/ferry/<scope>/`), when agents run.
    public var etcd: [String]?
    public var scope: String?
    /// Synchronous replication for the agents: a commit waits for this many standbys (nil or 0: asynchronous), and
    /// with `synchronousStrict` also while none streams.
    public var synchronous: Int?
    public var synchronousStrict: Bool?

    /// Where the agent of `node` writes its pid (`ferry cluster down` stops the agents first).
    public func agentPIDFile(_ node: String) -> String { directory + "/agent-\(node).pid" }

    public var stateFile: String { directory + "/cluster.json" }

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
    public static func create(directory: String, replicas: Int, logger: Logger) async throws(FerryError) -> LocalCluster {
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
        let primary = try await PostgresInstance.create(
            directory: serverRoot + "/node1", settings: nodeSettings, cache: Sandbox.cacheDirectory(serverRoot: serverRoot, root: directory),
            logger: logger)
        var cluster = LocalCluster(
            directory: directory, serverRoot: serverRoot, nodes: [Node(name: "node1", instance: primary)], replicationUser: "ferry_replication",
            replicationPassword: PostgresTemplate.randomPassword())
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

    public func save() throws(FerryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { throw FerryError(.sandbox, "cannot encode the cluster state") }
        try FileSystem.write(String(decoding: data, as: UTF8.self) + "\n", to: stateFile, mode: 0o600)
    }

    /// The cluster saved under `directory`, or nil when there is none.
    public static func load(directory: String) -> LocalCluster? {
        guard let text = FileSystem.read(directory + "/cluster.json") else { return nil }
        return try? JSONDecoder().decode(LocalCluster.self, from: Data(text.utf8))
    }

    public func node(_ name: String) -> Node? { nodes.first { $0.name == name } }

    /// Starts every node that is not running.
    public func start() async throws(FerryError) {
        for node in nodes { try await node.instance.start() }
    }

    /// Stops every node (standbys first, so the primary's shutdown does not wait for them).
    public func stop() async {
        for node in nodes.reversed() { await node.instance.stop() }
    }

    /// Stops the nodes and removes their directories.
    public func destroy() async {
        await stop()
        FileSystem.remove(serverRoot)
        FileSystem.remove(directory)
    }
}
