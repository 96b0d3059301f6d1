import ArgumentParser
import FerryCluster
import FerryCore
import FerryEtcd
import FerryPostgresNode
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
                .configuration, "no cluster in \(directory)",
                fix: "create one with `ferry cluster init --local --replicas 2`, pass --dir, or --config for a cluster defined in ferry.yaml")
        }
        return cluster
    }
}

/// Which cluster a command works on: a local one (`--dir`) or one defined node by node in `ferry.yaml` (`--config`).
struct ClusterSelection: ParsableArguments {
    @Option(help: ArgumentHelp("Directory of a local cluster (default: .ferry/cluster).", valueName: "path"))
    var dir: String?

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "ferry.yaml whose `cluster:` section defines the nodes (default without --dir: .ferry/cluster when it holds a cluster, else ./ferry.yaml or FERRY_CONFIG).",
            valueName: "path"))
    var configPath: String?

    /// The cluster, and the configuration it came from (nil for `--dir`).
    func resolve() throws -> (topology: ClusterTopology, configuration: ClusterConfiguration?) {
        if let dir { return (ClusterTopology(local: try ClusterCommand.loadLocal(dir)), nil) }
        let environment = ProcessInfo.processInfo.environment["FERRY_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if configPath == nil,
            LocalCluster.load(directory: ClusterCommand.defaultDirectory) != nil
                || (environment == nil && !FileManager.default.fileExists(atPath: "ferry.yaml"))
        {
            return (ClusterTopology(local: try ClusterCommand.loadLocal(ClusterCommand.defaultDirectory)), nil)
        }
        let loaded = try ConfigLoader(explicitPath: configPath).load()
        guard let cluster = loaded.configuration.cluster else {
            throw FerryError(
                .configuration, "cluster: missing in \(loaded.file ?? "the configuration")",
                fix: "define the nodes under `cluster:` (see examples/ferry.yaml), or pass --dir for a local cluster")
        }
        return (try ClusterTopology(configuration: cluster, backup: loaded.configuration.backup, file: loaded.file), cluster)
    }

    func topology() throws -> ClusterTopology { try resolve().topology }
}

/// `ferry cluster init --local --replicas N`.
struct ClusterInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Build a cluster: a primary and streaming-replication standbys, one physical slot each.",
        discussion:
            "With --local the nodes are private PostgreSQL 15 servers on free loopback ports under --dir (default .ferry/cluster), started from the system's binaries like the sandbox: node1 is the primary, node2… are standbys cloned with pg_basebackup through their own slots, with hot standby, wal_log_hints and data checksums so pg_rewind can bring an old primary back.\n\nWithout --local the nodes come from `cluster.nodes` in ferry.yaml: the one node that runs as a primary is prepared — the replication role (cluster.replication), one physical slot per other node, and hot standby, wal_log_hints and the replication limits through ALTER SYSTEM — and the command says what is left (a restart for wal_level, pg_hba.conf lines). Then `ferry agent --config ferry.yaml --node NAME` on each node's host: an agent whose data directory is empty fills it with a copy of the primary and follows it. Nothing is changed when no node, or more than one, answers as a primary."
    )

    @Flag(help: "Build the cluster on this machine, under --dir.")
    var local = false

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "Without --local: ferry.yaml whose `cluster.nodes` define the cluster (default ./ferry.yaml or FERRY_CONFIG).", valueName: "path"))
    var configPath: String?

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

    @Option(
        name: .customLong("archive-repository"),
        help: ArgumentHelp(
            "With --local: every node archives its WAL into this backup repository (ferry wal push); after a failover the new primary archives what the old one left unarchived.",
            valueName: "path"))
    var archiveRepository: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let logger = Logger(label: "ferry.cluster")
        guard local else {
            try await prepareDefined(logger: logger)
            return
        }
        var archive: (repository: String, binary: String)?
        if let archiveRepository { archive = (FileSystem.absolute(archiveRepository), try RestoreCommand.currentBinary()) }
        var cluster = try await LocalCluster.create(directory: dir, replicas: replicas, archive: archive, logger: logger)
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

extension ClusterInitCommand {
    /// A cluster defined in ferry.yaml: prepare its running primary and say what is left.
    func prepareDefined(logger: Logger) async throws {
        let loaded = try ConfigLoader(explicitPath: configPath).load()
        guard let cluster = loaded.configuration.cluster, cluster.isDefined else {
            throw FerryError(
                .configuration, "cluster.nodes: missing in \(loaded.file ?? "the configuration")",
                fix:
                    "list the nodes under `cluster.nodes` (see examples/ferry.yaml), or build a cluster on this machine with `ferry cluster init --local`"
            )
        }
        var topology = try ClusterTopology(defined: cluster, backup: loaded.configuration.backup, file: loaded.file)
        if topology.archiveRepository != nil, topology.archiveBinary == nil { topology.archiveBinary = try RestoreCommand.currentBinary() }
        let report = try await ClusterBootstrap.prepare(topology, logger: logger)
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            Terminal.print((try? encoder.encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}")
            return
        }
        Terminal.print("primary: \(report.primary)")
        for action in report.actions { Terminal.print("  \(action)") }
        if report.actions.isEmpty { Terminal.print("  already prepared: nothing to change") }
        for warning in report.warnings { Terminal.print(Terminal.paint("warning: ", .yellow) + warning) }
        Terminal.print("\nnext:")
        if !report.restartNeeded.isEmpty {
            Terminal.print("  restart PostgreSQL on \(report.primary) for \(report.restartNeeded.joined(separator: ", ")) to take effect")
        }
        let file = loaded.file.map { " --config \($0)" } ?? ""
        Terminal.print("  stop the distribution's service for PostgreSQL on every node (the agent starts and stops it)")
        for node in topology.nodes {
            Terminal.print("  on \(node.endpoint.host): ferry agent\(file) --node \(node.name)" + (node.name == report.primary ? "   (first)" : ""))
        }
        Terminal.print("  then: ferry cluster status\(file)")
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

    @OptionGroup var cluster: ClusterSelection

    @Flag(help: "Print one snapshot as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let topology = try cluster.topology()
        let status = await ClusterInspector.inspect(
            topology.nodes.map { ($0.name, $0.endpoint) }, etcd: topology.etcd.isEmpty ? nil : EtcdClient(endpoints: topology.etcd),
            scope: topology.scope, backups: topology.archiveRepository.map { ($0, topology.backupEvery) }, logger: Logger(label: "ferry.cluster"))
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
        var lines: [String] = []
        if let archive = status.archive {
            let last =
                archive.lastArchivedWAL.map { wal in "last \(wal)" + (archive.lastArchivedAgeSeconds.map { " \(Self.age($0)) ago" } ?? "") }
                ?? "nothing yet"
            let failures =
                archive.failing ? Terminal.paint("failing", .red) + " (\(archive.failedCount) failures)" : "\(archive.failedCount) failures"
            lines.append("archive: \(archive.mode) · \(archive.archivedCount) segments · \(last) · \(failures)")
        }
        if let backups = status.backups {
            if let error = backups.error {
                lines.append("backups: \(backups.repository) · " + Terminal.paint("unreadable", .red) + ": \(error)")
            } else {
                let newest =
                    backups.newest.map { id in
                        "newest \(id) (\(backups.newestKind ?? "?"), \(backups.newestAgeSeconds.map(Self.age) ?? "?") ago)"
                    } ?? "none yet"
                let running = backups.running == true ? " · a backup is running" : ""
                lines.append(
                    "backups: \(backups.repository) · \(backups.count) usable (\(backups.fullCount) full) · \(newest) · \(backups.storedBytes / (1 << 20)) MB stored\(running)"
                )
            }
        }
        let warnings = status.warnings.map { Terminal.paint("warning: ", .yellow) + $0 }
        return table.render() + (lines.isEmpty ? "" : "\n\n" + lines.joined(separator: "\n"))
            + (warnings.isEmpty ? "" : "\n\n" + warnings.joined(separator: "\n"))
    }

    /// `42 s`, `17 min`, `5 h`, `3 d`.
    static func age(_ seconds: Double) -> String {
        switch seconds {
        case ..<120: "\(Int(seconds)) s"
        case ..<7200: "\(Int(seconds / 60)) min"
        case ..<172_800: "\(Int(seconds / 3600)) h"
        default: "\(Int(seconds / 86400)) d"
        }
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
            "One agent runs beside each PostgreSQL node. The primary's agent keeps the leader key alive under a lease; when the leader is gone the standby with the most WAL (in synchronous mode: a synchronous standby that knows it has every acknowledged commit) promotes and the others follow it. A primary that cannot renew its lease stops taking writes before the lease can expire, and a watchdog process stops it if the agent itself is killed or frozen. An old primary that comes back is rewound (pg_rewind, else copied with pg_basebackup) and follows. The agent serves `ferry cluster switchover`, `failover` and `rejoin`. SIGTERM/SIGINT stop the agent (a primary is shut down cleanly first) and release its keys at once. For a local cluster (`ferry cluster init --local --etcd URL`) the node and etcd come from --dir; for a cluster defined in ferry.yaml, from its `cluster:` section (--config), and a node whose data directory is empty is first filled with a copy of the primary."
    )

    @OptionGroup var cluster: ClusterSelection

    @Option(help: "The node this agent runs for (node1, node2, …).")
    var node: String

    @Option(help: "Seconds of the leader lease; crash to writable is about this plus one loop (default: cluster.ttl, else 3).")
    var ttl: Int?

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
        let (topology, configuration) = try cluster.resolve()
        guard let interval = DurationParser.parse(loopInterval), interval >= .milliseconds(20) else {
            throw ValidationError("--loop-interval: \"\(loopInterval)\" is not a duration of at least 20ms")
        }
        let ttl = ttl ?? configuration?.ttl ?? 3
        guard (1...60).contains(ttl) else { throw ValidationError("--ttl: use 1 to 60 seconds") }
        let logger = Logger(label: "ferry.agent")
        let agent = try topology.agent(
            for: node, ttl: ttl, loopInterval: interval, watchdogExecutable: noWatchdog ? nil : Self.executablePath,
            keepServingWithoutEtcd: keepServingWithoutEtcd, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try? FileManager.default.removeItem(atPath: topology.agentPIDFile(node))
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

extension ClusterCommand {
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

    @OptionGroup var cluster: ClusterSelection

    @Option(help: "The standby to promote (default: the one with the most WAL).")
    var to: String?

    @Option(help: "Seconds to wait for the new primary.")
    var timeout = 30

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let result = try await cluster.topology().operations(logger: Logger(label: "ferry.cluster")).switchover(to: to, timeout: .seconds(timeout))
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

    @OptionGroup var cluster: ClusterSelection

    @Option(help: "The standby to promote.")
    var to: String

    @Option(help: "Seconds to wait for the new primary.")
    var timeout = 30

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let result = try await cluster.topology().operations(logger: Logger(label: "ferry.cluster")).failover(to: to, timeout: .seconds(timeout))
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

    @OptionGroup var cluster: ClusterSelection

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
        let result = try await cluster.topology().operations(logger: Logger(label: "ferry.cluster")).rejoin(
            node, copy: copy, timeout: .seconds(timeout))
        ClusterCommand.report(result, json: json)
    }
}
