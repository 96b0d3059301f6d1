package import FerryCore
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL primary with streaming-replication standbys on loopback, each node its own server process under
/// one directory (`ferry cluster init --local`, and the HA tests). The sandbox creates it (`LocalCluster.create`);
/// the daemon and the cluster commands find its nodes here.
///
/// Every standby streams through its own physical replication slot (named after the node), so the primary keeps
/// the WAL a standby has not received yet. Data checksums (from the template) and `wal_log_hints` let `pg_rewind`
/// bring an old primary back. The layout is saved as `cluster.json` so later commands find the nodes.
package struct LocalCluster: Sendable, Codable {
    package struct Node: Sendable, Codable, Hashable {
        package var name: String
        package var instance: PostgresInstance

        package init(name: String, instance: PostgresInstance) {
            self.name = name
            self.instance = instance
        }
    }

    package var directory: String
    /// Where the nodes' data lives: `directory`, or a directory under /var/tmp when the PostgreSQL account cannot
    /// reach `directory` (see ``Sandbox``).
    package var serverRoot: String
    package var nodes: [Node]
    package var replicationUser: String
    package var replicationPassword: String
    /// The etcd the agents use and their key prefix (`/ferry/<scope>/`), when agents run.
    package var etcd: [String]?
    package var scope: String?
    /// Synchronous replication for the agents: a commit waits for this many standbys (nil or 0: asynchronous), and
    /// with `synchronousStrict` also while none streams.
    package var synchronous: Int?
    package var synchronousStrict: Bool?
    /// The backup repository every node archives its WAL into (`archive_command = 'ferry wal push %p …'`), when set.
    package var archiveRepository: String?

    package init(directory: String, serverRoot: String, nodes: [Node], replicationUser: String, replicationPassword: String) {
        self.directory = directory
        self.serverRoot = serverRoot
        self.nodes = nodes
        self.replicationUser = replicationUser
        self.replicationPassword = replicationPassword
    }

    /// Where the agent of `node` writes its pid (`ferry cluster down` stops the agents first).
    package func agentPIDFile(_ node: String) -> String { directory + "/agent-\(node).pid" }

    package var stateFile: String { directory + "/cluster.json" }

    package func save() throws(FerryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { throw FerryError(.sandbox, "cannot encode the cluster state") }
        try FileSystem.write(String(decoding: data, as: UTF8.self) + "\n", to: stateFile, mode: 0o600)
    }

    /// The cluster saved under `directory`, or nil when there is none.
    package static func load(directory: String) -> LocalCluster? {
        guard let text = FileSystem.read(directory + "/cluster.json") else { return nil }
        return try? JSONDecoder().decode(LocalCluster.self, from: Data(text.utf8))
    }

    package func node(_ name: String) -> Node? { nodes.first { $0.name == name } }

    /// Starts every node that is not running.
    package func start() async throws(FerryError) {
        for node in nodes { try await node.instance.start() }
    }

    /// Stops every node (standbys first, so the primary's shutdown does not wait for them).
    package func stop() async {
        for node in nodes.reversed() { await node.instance.stop() }
    }

    /// Stops the nodes and removes their directories.
    package func destroy() async {
        await stop()
        FileSystem.remove(serverRoot)
        FileSystem.remove(directory)
    }
}
