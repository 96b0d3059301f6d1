import ArgumentParser
import FerryCluster
import FerryCore
import FerrySandbox
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `ferry cluster …`: PostgreSQL high availability.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "PostgreSQL high availability: build a replicated cluster and see its state.",
        subcommands: [ClusterInitCommand.self, ClusterStatusCommand.self, ClusterDownCommand.self]
    )

    static let defaultDirectory = ".ferry/cluster"

    static func loadLocal(_ directory: String) throws -> LocalCluster {
        guard let cluster = LocalCluster.load(directory: directory) else {
            throw FerryError(
                .configuration, "no cluster in \(directory)", fix: "create one with `ferry cluster init --local --replicas 2`, or pass --dir")
        }
        return cluster
    }
}

/// `ferry cluster init --local --replicas N`.
struct ClusterInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Build a cluster: a primary and streaming-replication standbys, one physical slot each.",
        discussion:
            "With --local the nodes are private PostgreSQL 15 servers on free loopback ports under --dir (default .ferry/cluster), started from the system's binaries like the sandbox: node1 is the primary, node2… are standbys cloned with pg_basebackup through their own slots, with hot standby, wal_log_hints and data checksums so pg_rewind can bring an old primary back."
    )

    @Flag(help: "Build the cluster on this machine (the only mode so far).")
    var local = false

    @Option(help: "Standbys beside the primary.")
    var replicas = 2

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Option(help: "etcd endpoint(s) for the agents (comma-separated), recorded with the cluster; `ferry sandbox up --etcd` starts one.")
    var etcd: String?

    @Option(help: "The agents' key prefix in etcd: /ferry/<scope>/.")
    var scope = "ferry"

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        guard local else {
            throw FerryError(
                .unsupported, "only --local clusters can be built so far", fix: "run `ferry cluster init --local --replicas \(replicas)`")
        }
        let logger = Logger(label: "ferry.cluster")
        var cluster = try await LocalCluster.create(directory: dir, replicas: replicas, logger: logger)
        if let etcd {
            cluster.etcd = etcd.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            cluster.scope = scope
            try cluster.save()
        }
        let status = await ClusterInspector.inspect(cluster.nodes.map { ($0.name, $0.instance.endpoint) }, logger: logger)
        if json {
            Terminal.print(ClusterStatusCommand.json(status))
        } else {
            Terminal.print("cluster ready in \(cluster.directory): \(cluster.nodes.count) nodes\n")
            Terminal.print(ClusterStatusCommand.table(status))
            if cluster.etcd != nil {
                Terminal.print(
                    "\nstart an agent per node: " + cluster.nodes.map { "ferry agent --dir \(dir) --node \($0.name)" }.joined(separator: "; "))
            }
            Terminal.print("ferry cluster status --dir \(dir)    ·    ferry cluster down --dir \(dir)")
        }
    }
}

/// `ferry cluster status [--json]`.
struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per node: role, timeline, LSNs, lag in bytes and seconds, slot, sync state and agent; with warnings.",
        discussion:
            "Warnings name what needs attention: no primary, more than one primary, a standby that does not stream, a node that does not answer, a slot holding back more than 1 GB of WAL. Exit status 1 when there is a warning."
    )

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Flag(help: "Print one snapshot as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let cluster = try ClusterCommand.loadLocal(dir)
        let status = await ClusterInspector.inspect(
            cluster.nodes.map { ($0.name, $0.instance.endpoint) }, etcd: cluster.etcd.map { EtcdClient(endpoints: $0) }, scope: cluster.scope,
            logger: Logger(label: "ferry.cluster"))
        Terminal.print(json ? Self.json(status) : Self.table(status))
        if !status.warnings.isEmpty { throw ExitCode(1) }
    }

    static func table(_ status: ClusterStatus) -> String {
        var table = TextTable(["NODE", "ADDRESS", "ROLE", "TL", "LSN (CURRENT / RECEIVED / REPLAYED)", "LAG", "STATE", "SYNC", "SLOT", "AGENT"])
        for node in status.nodes {
            let lsn = node.role == "primary" ? node.currentLSN ?? "-" : "\(node.receivedLSN ?? "-") / \(node.replayedLSN ?? "-")"
            let lag =
                node.role == "standby"
                ? "\(node.lagBytes.map { "\($0) B" } ?? "-") · \(node.lagSeconds.map { String(format: "%.3f s", $0) } ?? "-")" : "-"
            let slot =
                node.role == "standby"
                ? (node.slotActive.map { $0 ? "active" : Terminal.paint("inactive", .yellow) } ?? "none")
                    + (node.slotRetainedBytes.map { " · \($0 / 1024) kB held" } ?? "") : "-"
            let role =
                switch node.role {
                case "primary": Terminal.paint("primary", .green)
                case "down": Terminal.paint("down", .red)
                default: node.role
                }
            table.add([
                node.name, node.address, role, node.timeline.map { "\($0)" } ?? "-", lsn, lag, node.state ?? "-", node.syncState ?? "-", slot,
                node.agent,
            ])
        }
        let warnings = status.warnings.map { Terminal.paint("warning: ", .yellow) + $0 }
        return table.render() + (warnings.isEmpty ? "" : "\n\n" + warnings.joined(separator: "\n"))
    }

    static func json(_ status: ClusterStatus) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(status)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// `ferry cluster down [--keep]`.
struct ClusterDownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Stop the local cluster's nodes and remove their data (with --keep: only stop them).")

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Flag(help: "Keep the data, so `ferry cluster init` is not needed again.")
    var keep = false

    func run() async throws {
        let cluster = try ClusterCommand.loadLocal(dir)
        if keep {
            await cluster.stop()
            Terminal.print("stopped \(cluster.nodes.count) nodes; data kept in \(cluster.serverRoot)")
        } else {
            await cluster.destroy()
            Terminal.print("stopped and removed \(cluster.nodes.count) nodes")
        }
    }
}

/// `ferry agent --node NAME`: the HA agent of one node.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the HA agent of one node: hold or follow the leader key in etcd, promote, follow, fence.",
        discussion:
            "One agent runs beside each PostgreSQL node. The primary's agent keeps the leader key alive under a lease; when the leader is gone the standby with the most WAL promotes and the others follow it. A primary that cannot renew its lease stops taking writes before the lease can expire. SIGTERM/SIGINT stop the agent and release its keys at once. For a local cluster (`ferry cluster init --local --etcd URL`) the node and etcd come from --dir."
    )

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Option(help: "The node this agent runs for (node1, node2, …).")
    var node: String

    @Option(help: "Seconds of the leader lease; crash to writable is about this plus one loop.")
    var ttl = 3

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let cluster = try ClusterCommand.loadLocal(dir)
        guard let member = cluster.node(node) else {
            throw FerryError(.configuration, "no node \(node) in \(dir)", fix: "use one of: \(cluster.nodes.map(\.name).joined(separator: ", "))")
        }
        guard let etcd = cluster.etcd, !etcd.isEmpty else {
            throw FerryError(
                .configuration, "the cluster in \(dir) has no etcd recorded",
                fix: "create it with `ferry cluster init --local --etcd http://127.0.0.1:PORT` (`ferry sandbox up --etcd` starts one)")
        }
        let logger = Logger(label: "ferry.agent")
        var settings = AgentSettings(node: node, port: member.instance.port, postgres: member.instance.endpoint, etcd: etcd)
        settings.cluster = cluster.scope ?? "ferry"
        settings.ttl = ttl
        let agent = ClusterAgent(settings: settings, controller: LocalNodeController(instance: member.instance, cluster: cluster), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
