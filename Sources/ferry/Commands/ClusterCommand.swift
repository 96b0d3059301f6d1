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
        abstract: "PostgreSQL high availability: build a replicated cluster, see its state, switch over, fail over, rejoin.",
        subcommands: [
            ClusterInitCommand.self, ClusterStatusCommand.self, ClusterSwitchoverCommand.self, ClusterFailoverCommand.self, ClusterRejoinCommand.self,
            ClusterDownCommand.self,
        ]
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

    @Option(help: "Synchronous replication: a commit waits for this many standbys (0: asynchronous).")
    var synchronous = 0

    @Flag(help: "In synchronous mode, keep commits waiting while no standby streams (no acknowledged commit without a standby's copy).")
    var strict = false

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
        }
        if synchronous > 0 {
            cluster.synchronous = synchronous
            cluster.synchronousStrict = strict
        }
        try cluster.save()
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
        // Agents first: a running agent starts its node again.
        for node in cluster.nodes {
            guard let text = try? String(contentsOfFile: cluster.agentPIDFile(node.name), encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                ProcessTable.isAlive(pid, named: "agent")
            else { continue }
            await ProcessTable.terminate(pid, grace: .seconds(30))
        }
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
        abstract: "Run the HA agent of one node: hold or follow the leader key in etcd, promote, follow, rejoin, fence.",
        discussion:
            "One agent runs beside each PostgreSQL node. The primary's agent keeps the leader key alive under a lease; when the leader is gone the standby with the most WAL (in synchronous mode: a synchronous standby that knows it has every acknowledged commit) promotes and the others follow it. A primary that cannot renew its lease stops taking writes before the lease can expire, and a watchdog process stops it if the agent itself is killed or frozen. An old primary that comes back is rewound (pg_rewind, else copied with pg_basebackup) and follows. The agent serves `ferry cluster switchover`, `failover` and `rejoin`. SIGTERM/SIGINT stop the agent (a primary is shut down cleanly first) and release its keys at once. For a local cluster (`ferry cluster init --local --etcd URL`) the node and etcd come from --dir."
    )

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Option(help: "The node this agent runs for (node1, node2, …).")
    var node: String

    @Option(help: "Seconds of the leader lease; crash to writable is about this plus one loop.")
    var ttl = 3

    @Option(help: "How often the agent looks at its node when nothing wakes it, e.g. 300ms.")
    var loopInterval = "300ms"

    @Flag(help: "Run without the watchdog process (a killed or frozen agent then leaves its primary writable until etcd's lease runs out).")
    var noWatchdog = false

    @Flag(
        help:
            "Keep the primary writable when etcd cannot be reached (default: it stops before its lease could run out, so no second primary can ever be writable beside it; with this flag a partition can leave two)."
    )
    var keepServingWithoutEtcd = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let cluster = try ClusterCommand.loadLocal(dir)
        guard let interval = DurationParser.parse(loopInterval), interval >= .milliseconds(20) else {
            throw ValidationError("--loop-interval: \"\(loopInterval)\" is not a duration of at least 20ms")
        }
        guard (1...60).contains(ttl) else { throw ValidationError("--ttl: use 1 to 60 seconds") }
        let logger = Logger(label: "ferry.agent")
        let agent = try Self.agent(
            for: node, in: cluster, ttl: ttl, loopInterval: interval, watchdog: !noWatchdog, keepServingWithoutEtcd: keepServingWithoutEtcd,
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try? FileManager.default.removeItem(atPath: cluster.agentPIDFile(node))
    }

    /// The agent of `node` (also what `ferry run` runs for `cluster.node`); writes its pid file.
    static func agent(
        for node: String, in cluster: LocalCluster, ttl: Int = 3, loopInterval: Duration = .milliseconds(300), watchdog: Bool = true,
        keepServingWithoutEtcd: Bool = false, logger: Logger
    ) throws -> ClusterAgent {
        guard let member = cluster.node(node) else {
            throw FerryError(
                .configuration, "no node \(node) in \(cluster.directory)", fix: "use one of: \(cluster.nodes.map(\.name).joined(separator: ", "))")
        }
        guard let etcd = cluster.etcd, !etcd.isEmpty else {
            throw FerryError(
                .configuration, "the cluster in \(cluster.directory) has no etcd recorded",
                fix: "create it with `ferry cluster init --local --etcd http://127.0.0.1:PORT` (`ferry sandbox up --etcd` starts one)")
        }
        var settings = AgentSettings(node: node, port: member.instance.port, postgres: member.instance.endpoint, etcd: etcd)
        settings.cluster = cluster.scope ?? "ferry"
        settings.ttl = ttl
        settings.loopInterval = loopInterval
        settings.synchronousCount = cluster.synchronous ?? 0
        settings.synchronousStrict = cluster.synchronousStrict ?? false
        settings.keepServingWithoutEtcd = keepServingWithoutEtcd
        if watchdog {
            settings.watchdog = WatchdogSettings(executable: executablePath, directory: cluster.directory + "/watchdog-\(node)")
        }
        try "\(getpid())\n".write(toFile: cluster.agentPIDFile(node), atomically: true, encoding: .utf8)
        return ClusterAgent(settings: settings, controller: LocalNodeController(instance: member.instance, cluster: cluster), logger: logger)
    }

    /// This program, for the watchdog it starts.
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// `ferry watchdog`: started by the agent, never by hand.
struct WatchdogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watchdog", abstract: "The agent's watchdog (started by `ferry agent`).", shouldDisplay: false)

    @Option var state: String
    @Option var agentPid: Int32
    @Option var dataDir: String

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        await Watchdog.run(stateFile: state, agentPID: agentPid, dataDirectory: dataDir, logger: Logger(label: "ferry.watchdog"))
    }
}

/// The local cluster's operations: etcd and a superuser connection that reaches every node.
extension ClusterCommand {
    static func operations(_ dir: String) throws -> ClusterOperations {
        let cluster = try loadLocal(dir)
        guard let etcd = cluster.etcd, !etcd.isEmpty, let first = cluster.nodes.first else {
            throw FerryError(
                .configuration, "the cluster in \(dir) has no etcd recorded: switchover, failover and rejoin are served by its agents",
                fix: "create it with `ferry cluster init --local --etcd http://127.0.0.1:PORT` and start an agent per node")
        }
        return ClusterOperations(
            etcd: EtcdClient(endpoints: etcd), scope: cluster.scope ?? "ferry", postgres: first.instance.endpoint,
            logger: Logger(label: "ferry.cluster"))
    }

    static func report(_ result: OperationResult, json: Bool) {
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            Terminal.print((try? encoder.encode(result)).map { String(decoding: $0, as: UTF8.self) } ?? "{}")
        } else {
            Terminal.print("\(result.operation): \(result.message) (\(String(format: "%.2f", result.seconds)) s)")
        }
    }
}

/// `ferry cluster switchover [--to NODE]`.
struct ClusterSwitchoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchover",
        abstract: "Planned switchover: the primary stops cleanly, a standby with all of its WAL takes over, the old primary follows.",
        discussion:
            "Nothing acknowledged is lost and there is never a moment with two writable primaries: the standby promotes only after the old primary stopped and the standby has its last WAL record. Exit status 1 when the cluster refuses (the standby does not stream, another operation runs) or the switchover does not finish within --timeout."
    )

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Option(help: "The standby to promote (default: the one with the most WAL).")
    var to: String?

    @Option(help: "Seconds to wait for the new primary.")
    var timeout = 30

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let result = try await ClusterCommand.operations(dir).switchover(to: to, timeout: .seconds(timeout))
        ClusterCommand.report(result, json: json)
    }
}

/// `ferry cluster failover --to NODE`.
struct ClusterFailoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Manual failover when the primary is gone: promote the named standby.",
        discussion:
            "Refused while the primary is healthy (use switchover). The agents fail over by themselves when the primary's lease runs out; this names the standby to promote instead of letting them pick."
    )

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Option(help: "The standby to promote.")
    var to: String

    @Option(help: "Seconds to wait for the new primary.")
    var timeout = 30

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let result = try await ClusterCommand.operations(dir).failover(to: to, timeout: .seconds(timeout))
        ClusterCommand.report(result, json: json)
    }
}

/// `ferry cluster rejoin NODE [--copy]`.
struct ClusterRejoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejoin",
        abstract: "Bring a node back as a standby of the primary: pg_rewind, or a fresh pg_basebackup with --copy.",
        discussion:
            "The node's agent stops its PostgreSQL, rewinds it to the primary's timeline (falling back to a copy through the node's slot), and starts it as a standby. Agents do this by themselves when an old primary comes back after a failover."
    )

    @Option(help: "Directory of the local cluster.")
    var dir = ClusterCommand.defaultDirectory

    @Argument(help: "The node to rejoin.")
    var node: String

    @Flag(help: "Copy the primary again (pg_basebackup) instead of rewinding.")
    var copy = false

    @Option(help: "Seconds to wait until the node streams.")
    var timeout = 120

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let result = try await ClusterCommand.operations(dir).rejoin(node, copy: copy, timeout: .seconds(timeout))
        ClusterCommand.report(result, json: json)
    }
}
