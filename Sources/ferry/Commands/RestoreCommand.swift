import ArgumentParser
import FerryBackup
import FerryCluster
import FerryCore
import FerryPostgresNode
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry restore`: a backup chain into an empty directory, recovered to a point in time.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a base backup (with its incrementals) and recover to the latest WAL, a time, an LSN or a restore point.",
        discussion: """
            Examples:
              ferry restore --repository /backups/ferry --target /var/lib/postgresql/15/restored --port 5440
              ferry restore --repository /backups/ferry --target /srv/pitr --to '2026-12-07 14:05:00+00' --port 5440
              ferry restore --repository /backups/ferry --target /srv/pitr --to 0/3A000028 --action pause --port 5440
              ferry restore --repository /backups/ferry --target /srv/pitr --to name:before_migration --port 5440

            Without --backup, the newest backup that ends before the target is used. Before writing anything, Ferry checks that the chain is whole and that the WAL making the backup consistent is archived. Every block is checked against its checksum as it is written. With --port the server is started and Ferry waits until recovery reaches the target (promote by default, or pause/shutdown), then reports where it stopped; without it the directory is left ready to start.
            """
    )

    @OptionGroup var repository: BackupCommand.RepositoryOption

    @Option(
        help: ArgumentHelp("The directory to restore into: new or empty (with --as-standby: default the node's data directory).", valueName: "path"))
    var target: String?

    @Option(
        name: .customLong("as-standby"),
        help: ArgumentHelp(
            "Seed this node of the cluster (--dir or --config) from the backup instead of from the primary: restored as a standby that follows the current primary through its slot, catching up from the archive.",
            valueName: "node"))
    var asStandby: String?

    @OptionGroup var cluster: ClusterSelection

    @Option(
        name: .customLong("to"),
        help: ArgumentHelp(
            "latest (default), a time with its zone (2026-12-07 14:05:00+00), an LSN (0/3A000028), or name:NAME (a restore point).",
            valueName: "target"))
    var recoveryTarget = "latest"

    @Option(help: ArgumentHelp("Restore this backup (default: the newest before the target).", valueName: "id"))
    var backup: String?

    @Option(help: ArgumentHelp("At the target: promote (default), pause or shutdown.", valueName: "action"))
    var action = "promote"

    @Option(help: ArgumentHelp("Start the restored server on this port and wait for recovery; without it, nothing is started.", valueName: "port"))
    var port: Int?

    @Option(
        name: .customLong("archive-mode"),
        help: ArgumentHelp(
            "off: the restored server does not archive (a copy beside the original); preserve (default): as backed up.", valueName: "mode"))
    var archiveMode = "preserve"

    @Option(
        name: .customLong("ferry-binary"), help: ArgumentHelp("The ferry PostgreSQL's restore_command runs (default: this one).", valueName: "path"))
    var ferryBinary: String?

    @Option(help: ArgumentHelp("Files written at once (default 2).", valueName: "n"))
    var workers = 2

    @Option(help: ArgumentHelp("Seconds to wait for recovery to reach its target (default 3600).", valueName: "seconds"))
    var wait = 3600

    @Flag(help: "Print the outcome as JSON.")
    var json = false

    @Flag(help: "No progress bar.")
    var quiet = false

    func run() async throws {
        let seeded = try await asStandby.asyncMap { try await Self.standbyNode($0, cluster: cluster, recoveryTarget: recoveryTarget) }
        guard let path = target ?? seeded?.node.instance.dataDirectory else {
            throw FerryError(.configuration, "no --target given", fix: "pass --target DIR: a new or empty directory to restore into")
        }
        var restore = BackupRestore(repository: try repository.open(), target: FileSystem.absolute(path), ferryBinary: try binary())
        restore.recoveryTarget = try Self.parseTarget(recoveryTarget)
        guard let chosen = BackupRestorer.TargetAction(rawValue: action) else {
            throw FerryError(.configuration, "unknown --action \"\(PrintableText.escaped(action))\"", fix: "use promote, pause or shutdown")
        }
        restore.action = chosen
        switch archiveMode {
        case "preserve": restore.archiveMode = nil
        case "off": restore.archiveMode = "off"
        default: throw FerryError(.configuration, "unknown --archive-mode \"\(PrintableText.escaped(archiveMode))\"", fix: "use off or preserve")
        }
        if let backup { try BackupStore.checkID(backup) }
        restore.backupID = backup
        restore.port = port
        guard (1...64).contains(workers) else { throw FerryError(.configuration, "--workers \(workers) is out of range", fix: "use 1–64") }
        guard (1...604_800).contains(wait) else { throw FerryError(.configuration, "--wait \(wait) is out of range", fix: "use 1–604800 seconds") }
        restore.workers = workers
        restore.wait = .seconds(wait)
        if let seeded {
            // The node's own port and settings, then primary_conninfo and its slot on the current primary.
            var located = seeded.node.instance
            if target != nil { located.externalDataDirectory = restore.target }
            let instance = located
            let primary = seeded.primary
            let user = seeded.replicationUser
            let password = seeded.replicationPassword
            let slot = seeded.node.name
            restore.standby = true
            restore.port = nil
            restore.configureStandby = { () throws(FerryError) in
                try instance.writeConfiguration()
                try instance.configureStandby(host: primary.host, port: primary.port, user: user, password: password, slot: slot)
            }
        }
        let bar = ProgressBar(quiet: quiet || json)
        let began = ContinuousClock.now
        var report = try await restore.run { done, total in bar.draw(ProgressBar.renderBytes("restore", done: done, total: total, since: began)) }
        bar.finish()
        if let seeded, port != nil {
            var instance = seeded.node.instance
            if target != nil { instance.externalDataDirectory = restore.target }
            try await instance.start()
            report.started = true
            report.state = "standby"
        }
        if json {
            Terminal.print(try BackupCommand.json(report))
            return
        }
        Terminal.print(
            "restored backup \(report.backup)\(report.chain.count > 1 ? " (chain \(report.chain.joined(separator: " → ")))" : "") into \(report.target): "
                + "\(report.files) files, \(ProgressBar.bytes(report.bytes)) in \(String(format: "%.1f", report.seconds)) s")
        for line in report.recovery { Terminal.print("  " + line) }
        if let seeded {
            Terminal.print(
                "\(seeded.node.name) is a standby of \(seeded.primary.host):\(seeded.primary.port) (slot \(seeded.node.name)), catching up from the archive"
                    + (report.started ? "; started" : "; start it with its agent: ferry agent … --node \(seeded.node.name)"))
        } else if report.started {
            Terminal.print(
                "server \(report.state ?? "started") on port \(port ?? 0)\(report.timeline.map { ", timeline \($0)" } ?? ""); log: \(report.log ?? "")"
            )
        } else {
            Terminal.hint("not started: start it with pg_ctl -D \(report.target) start (or pass --port to have Ferry start it and wait)")
        }
    }

    /// The cluster node `name` to seed, and the primary it will follow.
    static func standbyNode(_ name: String, cluster: ClusterSelection, recoveryTarget: String) async throws -> (
        node: ClusterTopology.Node, primary: PostgresEndpoint, replicationUser: String, replicationPassword: String
    ) {
        guard recoveryTarget == "latest" else {
            throw FerryError(.configuration, "--as-standby recovers to the latest WAL, then streams", fix: "leave out --to")
        }
        let topology = try cluster.topology()
        guard let node = topology.node(name) else {
            throw FerryError(
                .configuration, "the cluster (\(topology.origin)) has no node \(name)",
                fix: "name one of \(topology.nodes.map(\.name).joined(separator: ", "))")
        }
        guard !node.instance.isRunning else {
            throw FerryError(
                .conflict, "\(name)'s PostgreSQL is running in \(node.instance.dataDirectory)",
                fix: "stop its agent and server first (the restore needs an empty data directory)")
        }
        var logger = Logger(label: "ferry.restore")
        logger.logLevel = .warning
        let others = topology.nodes.filter { $0.name != name }.map { ($0.name, $0.endpoint) }
        let status = await ClusterInspector.inspect(others, logger: logger)
        guard let primary = status.primaries.first, let primaryNode = topology.node(primary.name), status.primaries.count == 1 else {
            throw FerryError(
                .conflict, "the cluster (\(topology.origin)) has \(status.primaries.count) primaries answering",
                fix: "a standby is seeded to follow the one primary: check `ferry cluster status`")
        }
        return (node, primaryNode.endpoint, topology.replicationUser, topology.replicationPassword)
    }

    /// `latest`, `name:X`, an LSN, or a time.
    static func parseTarget(_ text: String) throws(FerryError) -> BackupRestorer.Target {
        try BackupRestorer.Target.parse(text)
    }

    private func binary() throws(FerryError) -> String {
        if let ferryBinary { return FileSystem.absolute(ferryBinary) }
        return try Self.currentBinary()
    }

    /// The running ferry's own path.
    static func currentBinary() throws(FerryError) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return FileSystem.absolute(CommandLine.arguments[0]) }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Optional {
    /// `map` with an asynchronous, throwing transform.
    fileprivate func asyncMap<U>(_ transform: (Wrapped) async throws -> U) async rethrows -> U? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
