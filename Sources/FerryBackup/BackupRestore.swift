package import FerryCore
package import FerryPostgresNode
package import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry restore`: picks the backup for the target, checks that its chain and the WAL it needs are all there before
/// anything is written, restores the chain into an empty directory, writes the recovery settings, then starts
/// PostgreSQL and waits until recovery reaches the target, reporting what it recovered to.
package struct BackupRestore: Sendable {
    package let repository: any BackupRepository
    package let target: String
    package var recoveryTarget: BackupRestorer.Target = .latest
    package var action: BackupRestorer.TargetAction = .promote
    package var backupID: String?
    /// The `ferry` that PostgreSQL's `restore_command` runs.
    package var ferryBinary: String
    /// `off` to keep the restored server from archiving; nil keeps the backed-up setting.
    package var archiveMode: String?
    package var workers = 2
    /// Start the server on this port after writing the files; nil leaves it stopped.
    package var port: Int?
    package var binaries: PostgresBinaries?
    package var wait: Duration = .seconds(3600)
    /// Restore as a standby (`standby.signal`, recovery to the latest WAL and on by streaming): a cluster node seeded
    /// from a backup instead of a copy of the primary. `configureStandby` then points it at the primary.
    package var standby = false
    package var configureStandby: (@Sendable () throws(FerryError) -> Void)?

    package init(repository: any BackupRepository, target: String, ferryBinary: String) {
        self.repository = repository
        self.target = target
        self.ferryBinary = ferryBinary
    }

    package struct Report: Sendable, Codable {
        package var backup: String
        package var chain: [String]
        package var target: String
        package var files: Int
        package var bytes: Int64
        package var seconds: Double
        package var started: Bool
        package var state: String?
        package var timeline: Int?
        /// The server's own words on where recovery stopped (its log's recovery lines).
        package var recovery: [String]
        package var log: String?
    }

    /// The chain restoring `recoveryTarget`: the named backup, or the newest that ends before the target.
    package func chooseChain() throws(FerryError) -> [BackupManifest] {
        let store = BackupStore(repository: repository)
        if let backupID { return try store.chain(backupID) }
        guard let oldest = try store.usableIDs().first else {
            throw FerryError(.notFound, "there is no usable backup in \(repository.location)", fix: "take one with `ferry backup full`")
        }
        let accept: (BackupManifest) -> Bool
        switch recoveryTarget {
        case .latest, .name: accept = { _ in true }
        case .time(let text):
            guard let time = Self.parseTime(text) else {
                throw FerryError(
                    .invalidInput, "\"\(PrintableText.escaped(text))\" is not a time Ferry can read",
                    fix: "give it as PostgreSQL prints it, with its zone: 2026-12-07 14:05:00+00")
            }
            accept = { $0.stopped < time }
        case .lsn(let text):
            guard let position = WALPosition(text) else {
                throw FerryError(.invalidInput, "\"\(PrintableText.escaped(text))\" is not a WAL position", fix: "give it as 16/B374D848")
            }
            accept = { WALPosition($0.stopLSN).map { $0 <= position } ?? false }
        }
        // From the newest back, reading only the manifests it needs.
        guard let chosen = try store.newest(where: accept) else {
            let first = try store.manifest(oldest)
            throw FerryError(
                .notFound,
                "no backup in \(repository.location) ends before the recovery target (the oldest ends at \(first.stopped), LSN \(first.stopLSN))",
                fix: "choose a later target, or a backup with --backup ID")
        }
        return try store.chain(chosen.id)
    }

    package func run(progress: @escaping @Sendable (_ done: Int64, _ total: Int64) -> Void = { _, _ in }) async throws(FerryError) -> Report {
        let clock = ContinuousClock.now
        let chain = try chooseChain()
        let backup = chain[chain.count - 1]
        guard let system = UInt64(backup.system, radix: 16) else {
            throw FerryError(.invalidInput, "backup \(backup.id) names the system \(backup.system)", fix: BackupCompression.damagedFix)
        }
        // Everything restoring needs is checked before the first byte is written.
        let archive = WALArchive(repository: repository)
        for name in try WALPosition.segments(from: backup.startWAL, to: backup.stopWAL, segmentSize: backup.walSegmentSize) {
            guard try archive.contains(name: name, system: system) else {
                throw FerryError(
                    .notFound,
                    "WAL segment \(name), which backup \(backup.id) needs to be consistent, is not in the archive in \(repository.location)",
                    fix: "this backup cannot be restored: use an older one (--backup ID), or put the segment back in the archive; nothing was written"
                )
            }
        }
        if let port, port < 1 || port > 65535 {
            throw FerryError(.configuration, "--port \(port) is not a port", fix: "give a free TCP port, 1–65535")
        }
        let owner = SystemUser.forPostgres()
        if let owner, port != nil, !FileSystem.canTraverse(ferryBinary, as: owner) {
            throw FerryError(
                .permission, "PostgreSQL's account (\(owner.name)) cannot run \(ferryBinary), which its restore_command needs",
                fix: "install ferry where \(owner.name) can run it (e.g. /usr/local/bin) or pass --ferry-binary PATH")
        }
        let existed = FileSystem.exists(target)
        try BackupRestorer.prepareTarget(target)
        do throws(FerryError) {
            var restorer = BackupRestorer(repository: repository, chain: chain, target: target)
            restorer.workers = workers
            let total = backup.bytes
            let counter = RestoredBytes()
            let configured = restorer
            try await BaseBackup.blocking { () throws(FerryError) in
                try configured.restoreFiles(flush: port == nil) { bytes in progress(counter.add(bytes), total) }
            }
            let command = "\(ferryBinary) wal fetch %f %p --repository \(repository.location)"
            try restorer.writeRecoverySettings(
                restoreCommand: command, recoveryTarget: standby ? .latest : recoveryTarget, action: action, standby: standby ? [:] : nil,
                archiveMode: archiveMode, owner: owner.map { ($0.uid, $0.gid) })
            try writeMissingConfiguration()
            try configureStandby?()
        } catch {
            // Nothing half-written: the directory is left as it was found (empty, or not there).
            if existed {
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? [] { FileSystem.remove(target + "/" + entry) }
            } else {
                FileSystem.remove(target)
            }
            throw error
        }
        if let owner { FileSystem.chownRecursive(target, to: owner) }
        var report = Report(
            backup: backup.id, chain: chain.map(\.id), target: target, files: backup.files.count, bytes: backup.bytes, seconds: 0, started: false,
            state: nil, timeline: nil, recovery: [], log: nil)
        if let port {
            let log = target + "/log/ferry-restore.log"
            try await start(port: port, log: log, owner: owner)
            report.started = true
            report.log = log
            report.state = standby ? "standby" : try await waitForRecovery(log: log)
            report.recovery = Self.recoveryLines(FileSystem.read(log) ?? "")
            report.timeline = Self.timeline(FileSystem.read(log) ?? "")
            if recoveryTarget == .latest, action == .promote, !standby, let timeline = report.timeline {
                try checkReachedTheEnd(timeline: timeline, backup: backup, system: system, log: log)
            }
        }
        let elapsed = (ContinuousClock.now - clock).components
        report.seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        return report
    }

    /// After a restore to the latest WAL: refuses to call it complete when the archive holds WAL past the point where
    /// recovery stopped (on its timeline or a later one): a segment in between is missing, and what came after it is
    /// not in the restored server. The server is left running at the point it reached.
    private func checkReachedTheEnd(timeline: Int, backup: BackupManifest, system: UInt64, log: String) throws(FerryError) {
        let historyName = String(format: "%08X.history", timeline)
        guard let history = FileSystem.read(target + "/pg_wal/" + historyName), let (parent, switchPoint) = WALCatchUp.parse(history).last else {
            return
        }
        let segmentSize = backup.walSegmentSize
        // The last segment recovery read: the one holding the byte before the switch point.
        let reached = (max(switchPoint, 1) - 1) / UInt64(segmentSize)
        let base = "wal/" + WALArchive.systemDirectoryName(system)
        var beyond: [String] = []
        for directory in try repository.list(base) where directory.utf8.count == 16 {
            guard let directoryTimeline = Int(directory.prefix(8), radix: 16), directoryTimeline >= parent, directoryTimeline < timeline else {
                continue
            }
            for name in try repository.list(base + "/" + directory) {
                guard let (_, segment) = WALPosition.parse(String(name.prefix(24)), segmentSize: segmentSize), segment > reached else { continue }
                beyond.append(name)
            }
        }
        guard let first = beyond.min() else { return }
        let missing = WALPosition.segmentName(timeline: parent, segment: reached + 1, segmentSize: segmentSize)
        throw FerryError(
            .notFound,
            "recovery stopped at \(WALPosition(switchPoint)) on timeline \(parent), but the archive holds WAL after it (\(beyond.count) file(s) from \(first)): \(missing) or a segment after it is missing, and what follows is not in the restored server",
            fix:
                "the server in \(target) runs at the point it reached (see \(log)); put the missing segment back in the archive and restore again, or keep this state knowing what is lost"
        )
    }

    /// A Debian cluster keeps postgresql.conf and pg_hba.conf in /etc: the restored directory gets minimal ones.
    private func writeMissingConfiguration() throws(FerryError) {
        if !FileSystem.exists(target + "/postgresql.conf") {
            try FileSystem.write(
                "# written by ferry restore: the backed-up server kept its configuration elsewhere\n", to: target + "/postgresql.conf", mode: 0o600)
        }
        if !FileSystem.exists(target + "/pg_hba.conf") {
            try FileSystem.write(
                "# written by ferry restore: the backed-up server kept its configuration elsewhere\nlocal all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n",
                to: target + "/pg_hba.conf", mode: 0o600)
        }
        try FileSystem.makeDirectory(target + "/log")
    }

    private func start(port: Int, log: String, owner: SystemUser?) async throws(FerryError) {
        let binaries: PostgresBinaries
        if let given = self.binaries { binaries = given } else { binaries = try PostgresBinaries.locate() }
        let result = try await ProcessRunner.run(
            binaries.pgCtl, ["-D", target, "-l", log, "-w", "-t", "\(Int(wait.components.seconds))", "-o", "-p \(port)", "start"], as: owner)
        if !result.succeeded, action != .shutdown {
            let tail = (FileSystem.read(log) ?? "").split(separator: "\n").suffix(8).joined(separator: "\n")
            throw FerryError(
                .server, "the restored server in \(target) did not start on port \(port): \(result.standardError.trimmed)\n\(tail)",
                fix: "read \(log); the restored files stay in \(target) (a taken port: pass another --port)")
        }
    }

    /// Waits until recovery has done what `action` asks: promoted (recovery.signal removed), paused, or shut down.
    private func waitForRecovery(log: String) async throws(FerryError) -> String {
        let deadline = ContinuousClock.now + wait
        var promotedAt: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            let text = FileSystem.read(log) ?? ""
            let alive = Self.postmasterAlive(target)
            if let fatal = text.split(separator: "\n").first(where: { $0.contains("FATAL:") || $0.contains("PANIC:") }), !alive {
                throw FerryError(
                    .server, "the restored server stopped during recovery: \(fatal.trimmed)",
                    fix:
                        "read \(log); a target after the last archived WAL cannot be reached, choose an earlier one (the restored files stay in \(target))"
                )
            }
            // Promoted: recovery.signal is removed before the new timeline's history file is written, so the end is the
            // server's "ready" after it chose the timeline (or, with its log in another language, a few seconds on).
            if action == .promote, alive, !FileSystem.exists(target + "/recovery.signal") {
                promotedAt = promotedAt ?? ContinuousClock.now
                if let chosen = text.range(of: "selected new timeline ID"), text[chosen.upperBound...].contains("ready to accept connections") {
                    return "running"
                }
                if ContinuousClock.now - promotedAt! > .seconds(5) { return "running" }
            }
            switch action {
            case .pause where alive && (text.contains("recovery has paused") || text.contains("pausing at the end of recovery")): return "paused"
            case .shutdown where !alive: return "stopped"
            default: break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        throw FerryError(
            .timeout, "recovery in \(target) did not reach its target within \(wait)",
            fix: "read \(log); the server is left running to go on recovering")
    }

    static func postmasterAlive(_ directory: String) -> Bool {
        guard let text = FileSystem.read(directory + "/postmaster.pid"), let first = text.split(separator: "\n").first, let pid = Int32(first.trimmed)
        else { return false }
        return ProcessTable.isAlive(pid, named: "postgres")
    }

    /// The log's lines on where recovery stopped and the last transaction it replayed.
    static func recoveryLines(_ log: String) -> [String] {
        let markers = [
            "recovery stopping", "last completed transaction", "redo done at", "selected new timeline", "archive recovery complete",
            "recovery has paused", "consistent recovery state reached",
        ]
        return log.split(separator: "\n").compactMap { line in
            guard markers.contains(where: { line.contains($0) }) else { return nil }
            // Drop the timestamp and pid prefix PostgreSQL's log line may start with.
            if let range = line.range(of: "LOG:  ") { return String(line[range.upperBound...]) }
            return line.trimmed
        }
    }

    static func timeline(_ log: String) -> Int? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("selected new timeline ID: ") }),
            let range = line.range(of: "selected new timeline ID: ")
        else { return nil }
        return Int(line[range.upperBound...].prefix(while: \.isNumber))
    }

    /// `2026-12-07 14:05:00+00`, with optional fractions and a `T`; a zone is required.
    package static func parseTime(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        let normalized = text.trimmed.replacingOccurrences(of: "T", with: " ")
        for format in [
            "yyyy-MM-dd HH:mm:ss.SSSSSSXXXXX", "yyyy-MM-dd HH:mm:ss.SSSXXXXX", "yyyy-MM-dd HH:mm:ssXXXXX", "yyyy-MM-dd HH:mm:ssXX",
            "yyyy-MM-dd HH:mm:ssX",
        ] {
            formatter.dateFormat = format
            if let date = formatter.date(from: normalized) { return date }
        }
        return nil
    }
}

/// Bytes written so far, shared by the restoring threads.
private final class RestoredBytes: Sendable {
    private let value = Atomic<Int64>(0)
    func add(_ bytes: Int64) -> Int64 { value.wrappingAdd(bytes, ordering: .relaxed).newValue }
}
