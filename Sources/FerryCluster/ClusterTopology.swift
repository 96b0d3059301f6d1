package import FerryCore
import FerryEtcd
package import FerryPostgresNode
import Foundation
package import Logging

/// A cluster as the commands, the agents and the control API see it, whether built locally (`ferry cluster init
/// --local`, `cluster.json`) or defined node by node in `ferry.yaml`.
package struct ClusterTopology: Sendable {
    package struct Node: Sendable {
        package var name: String
        /// This node's server: its address, the superuser the agents use, and (where known) its data directory.
        package var instance: PostgresInstance
        package var endpoint: PostgresEndpoint { instance.endpoint }
    }

    package var scope: String
    package var etcd: [String]
    package var nodes: [Node]
    package var replicationUser: String
    package var replicationPassword: String
    package var synchronous: Int
    package var synchronousStrict: Bool
    /// Where an agent keeps its pid and its watchdog's files.
    package var stateDirectory: String
    /// How a command names this cluster in messages (`--dir X` or `--config Y`).
    package var origin: String
    /// Whether the nodes come from `ferry.yaml` (their data directories belong to their PostgreSQL installations).
    package var isDefined: Bool
    /// The backup repository the nodes archive their WAL into; a promoted node's agent archives what the old primary
    /// may have left unarchived.
    package var archiveRepository: String?
    /// A defined cluster's `archive_command` program (`cluster.ferry_binary`, default the running `ferry`).
    package var archiveBinary: String?
    /// The backup schedule's shortest interval (`backup.full_every`/`incremental_every`): `ferry cluster status`
    /// warns when the newest backup is more than twice as old.
    package var backupEvery: Duration?

    package func node(_ name: String) -> Node? { nodes.first { $0.name == name } }

    /// A local cluster.
    package init(local cluster: LocalCluster) {
        scope = cluster.scope ?? "ferry"
        etcd = cluster.etcd ?? []
        nodes = cluster.nodes.map { Node(name: $0.name, instance: $0.instance) }
        replicationUser = cluster.replicationUser
        replicationPassword = cluster.replicationPassword
        synchronous = cluster.synchronous ?? 0
        synchronousStrict = cluster.synchronousStrict ?? false
        stateDirectory = cluster.directory
        origin = "--dir \(cluster.directory)"
        isDefined = false
        archiveRepository = cluster.archiveRepository
    }

    /// A cluster defined in `ferry.yaml` (`cluster.nodes`); with `backup`, its nodes archive into
    /// `backup.repository` unless `cluster.archive_repository` names another.
    package init(defined cluster: ClusterConfiguration, backup: BackupConfiguration? = nil, file: String?) throws(FerryError) {
        guard let replication = cluster.replication, let superuser = cluster.superuser else {
            throw FerryError(.configuration, "cluster: replication and superuser are required for a defined cluster", fix: "add both sections")
        }
        let state =
            cluster.stateDirectory.hasPrefix("/") ? cluster.stateDirectory : FileManager.default.currentDirectoryPath + "/" + cluster.stateDirectory
        var nodes: [Node] = []
        for node in cluster.nodes {
            let binaries: PostgresBinaries
            if let directory = node.binDirectory {
                binaries = PostgresBinaries(directory: directory)
            } else {
                binaries = try PostgresBinaries.locate()
            }
            var instance = PostgresInstance(
                directory: state + "/" + node.name, port: node.port, user: superuser.user, password: superuser.password?.value ?? "",
                database: "postgres", binDirectory: binaries.directory,
                externalDataDirectory: node.dataDirectory.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 })
            instance.host = node.host
            instance.configDirectory = node.configDirectory.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
            nodes.append(Node(name: node.name, instance: instance))
        }
        scope = cluster.scope
        etcd = cluster.etcd
        self.nodes = nodes
        replicationUser = replication.user
        replicationPassword = replication.password?.value ?? ""
        synchronous = cluster.synchronous
        synchronousStrict = cluster.synchronousStrict
        stateDirectory = state
        origin = "--config \(file ?? "ferry.yaml")"
        isDefined = true
        archiveRepository = cluster.archiveRepository ?? backup?.repository
        archiveBinary = cluster.ferryBinary
        backupEvery = backup.flatMap { [$0.fullEvery, $0.incrementalEvery].compactMap { $0 }.min() }
    }

    /// The cluster a `cluster:` section names: its `nodes`, or the local cluster in its `directory`.
    package init(configuration cluster: ClusterConfiguration, backup: BackupConfiguration? = nil, file: String?) throws(FerryError) {
        if cluster.isDefined {
            try self.init(defined: cluster, backup: backup, file: file)
            return
        }
        guard let local = LocalCluster.load(directory: cluster.directory) else {
            throw FerryError(
                .configuration, "cluster.directory: no cluster in \(cluster.directory)",
                fix:
                    "build one with `ferry cluster init --local --etcd URL --dir \(cluster.directory)`, list the nodes under cluster.nodes, or fix the path"
            )
        }
        self.init(local: local)
    }

    /// Switchover, failover and rejoin through the agents.
    package func operations(logger: Logger) throws(FerryError) -> ClusterOperations {
        guard !etcd.isEmpty, let first = nodes.first else {
            throw FerryError(
                .configuration, "the cluster (\(origin)) has no etcd: switchover, failover and rejoin are served by its agents",
                fix: "create it with `ferry cluster init --local --etcd http://127.0.0.1:PORT` and start an agent per node")
        }
        return ClusterOperations(etcd: EtcdClient(endpoints: etcd), scope: scope, postgres: first.endpoint, logger: logger)
    }

    /// Where the agent of `node` writes its pid (`ferry cluster down` stops the agents first).
    package func agentPIDFile(_ node: String) -> String { stateDirectory + "/agent-\(node).pid" }

    /// The agent of `node`, writing its pid file; `watchdogExecutable` starts the watchdog (`ferry watchdog`).
    package func agent(
        for name: String, ttl: Int = 3, loopInterval: Duration = .milliseconds(300), watchdogExecutable: String?,
        keepServingWithoutEtcd: Bool = false, logger: Logger
    ) throws -> ClusterAgent {
        guard let node = node(name) else {
            throw FerryError(
                .configuration, "no node \(name) in the cluster (\(origin))", fix: "use one of: \(nodes.map(\.name).joined(separator: ", "))")
        }
        guard !etcd.isEmpty else {
            throw FerryError(
                .configuration, "the cluster (\(origin)) has no etcd",
                fix: "create it with `ferry cluster init --local --etcd http://127.0.0.1:PORT` (`ferry sandbox up --etcd` starts one)")
        }
        if isDefined {
            guard node.instance.externalDataDirectory != nil else {
                let index = nodes.firstIndex { $0.name == name } ?? 0
                throw FerryError(
                    .configuration, "cluster.nodes[\(index)].data_directory: missing for \(name), whose agent needs it",
                    fix: "add `data_directory: /var/lib/postgresql/15/main` (or wherever its data lives; an empty one is filled from the primary)")
            }
            // PostgreSQL's start log goes here; it runs as its own account.
            try FileSystem.makeServerDirectory(node.instance.directory)
        }
        var settings = AgentSettings(node: name, port: node.instance.port, postgres: node.endpoint, etcd: etcd)
        settings.host = node.instance.host ?? "127.0.0.1"
        settings.cluster = scope
        settings.ttl = ttl
        settings.loopInterval = loopInterval
        settings.synchronousCount = synchronous
        settings.synchronousStrict = synchronousStrict
        settings.keepServingWithoutEtcd = keepServingWithoutEtcd
        settings.archiveRepository = archiveRepository
        if let watchdogExecutable {
            settings.watchdog = WatchdogSettings(executable: watchdogExecutable, directory: stateDirectory + "/watchdog-\(name)")
        }
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try "\(getpid())\n".write(toFile: agentPIDFile(name), atomically: true, encoding: .utf8)
        let controller = LocalNodeController(instance: node.instance, replicationUser: replicationUser, replicationPassword: replicationPassword)
        return ClusterAgent(settings: settings, controller: controller, logger: logger)
    }
}
