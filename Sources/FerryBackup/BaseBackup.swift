package import FerryCore
import Foundation
import Synchronization

/// One run of `ferry backup full|incr` on the machine of the server it backs up: `pg_backup_start`, the data
/// directory's blocks into the repository (all of them, or those that changed since the prior backup), then
/// `pg_backup_stop`, a wait until the WAL from start to stop is archived, and the manifest written last.
///
/// The repository is locked for the run; a backup a killed or failed run left behind (no manifest) is removed at the
/// next run's start, and is never listed as usable.
package struct BaseBackup: Sendable {
    package let repository: any BackupRepository
    package let dataDirectory: String
    package let server: any BackupServer
    package var compression: BackupCompression = .zstd
    package var workers = 2
    /// How long to wait for the archive to hold the WAL the backup needs.
    package var archiveTimeout: Duration = .seconds(120)
    /// Applied after a backup succeeds (nothing when empty).
    package var retention = BackupRetention()

    package init(repository: any BackupRepository, dataDirectory: String, server: any BackupServer) {
        self.repository = repository
        self.dataDirectory = dataDirectory
        self.server = server
    }

    package struct Report: Sendable {
        package var manifest: BackupManifest
        /// Why an incremental became a full backup, when it did.
        package var note: String?
        package var removedIncomplete: [String]
        package var retention: BackupRetention.Outcome?
    }

    package func run(
        kind requested: BackupManifest.Kind, progress: @escaping @Sendable (_ done: Int64, _ total: Int64) -> Void = { _, _ in }
    ) async throws(FerryError) -> Report {
        // First the check whose message is about a backup's data directory (the control file's speaks of WAL commands).
        try DataDirectoryScan.checkDataDirectory(dataDirectory)
        let system = try PostgresControlFile.systemIdentifier(dataDirectory: dataDirectory)
        let systemHex = WALArchive.systemDirectoryName(system)
        let lock = try repository.lock(for: "ferry backup \(requested.rawValue)")
        defer { lock.release() }
        let store = BackupStore(repository: repository)
        let removed = try store.incomplete()
        for id in removed { try repository.remove(BackupManifest.directory(id)) }

        var kind = requested
        var note: String?
        var prior: BackupManifest?
        if kind == .incremental {
            prior = try store.newest { $0.system == systemHex }
            if prior == nil {
                kind = .full
                note = "no earlier backup of this cluster in \(repository.location): this one is a full backup"
            }
        }
        // One backup a second at most: names are their start time.
        var id = BackupStore.newID(kind: kind)
        while try !repository.list(BackupManifest.directory(id)).isEmpty {
            try? await Task.sleep(for: .milliseconds(300))
            id = BackupStore.newID(kind: kind)
        }

        let started = Date()
        let start = try await server.start(label: "ferry \(id)")
        if !start.inRecovery, start.archiveMode == "off" {
            _ = try? await server.stop()
            throw FerryError(
                .configuration, "the server does not archive its WAL (archive_mode = off): a backup could not be restored",
                fix:
                    "set archive_mode = on and archive_command = 'ferry wal push %p --repository \(repository.location)' (a restart is needed), then back up"
            )
        }
        let written: BaseBackupWriter.Result
        let manifest: BackupManifest
        do throws(FerryError) {
            let scan = try DataDirectoryScan(dataDirectory: dataDirectory)
            var configured = BaseBackupWriter(repository: repository, id: id, compression: compression, prior: prior)
            configured.workers = workers
            let writer = configured
            let total = scan.files.reduce(Int64(0)) { $0 + $1.size }
            let done = ByteCounter()
            written = try await Self.blocking { () throws(FerryError) in
                try writer.write(dataDirectory: dataDirectory, scan: scan) { bytes in progress(done.add(bytes), total) }
            }
            let stop = try await server.stop()
            let label = try BackupLabel(stop.label)
            guard let stopLSN = WALPosition(stop.lsn), start.walSegmentSize > 0 else {
                throw FerryError(.server, "pg_backup_stop returned \(stop.lsn), which is not a WAL position")
            }
            let stopWAL = WALPosition.segmentName(timeline: label.timeline, position: stopLSN.value - 1, segmentSize: start.walSegmentSize)
            try await waitForArchive(from: label.startWAL, to: stopWAL, system: system, segmentSize: start.walSegmentSize)
            manifest = BackupManifest(
                id: id, kind: kind, prior: prior?.id, full: prior?.full ?? id, system: systemHex, serverVersion: start.serverVersion,
                timeline: label.timeline, startLSN: label.startLSN, stopLSN: stop.lsn, startWAL: label.startWAL, stopWAL: stopWAL,
                walSegmentSize: start.walSegmentSize, started: started, stopped: Date(), backupLabel: stop.label, tablespaceMap: stop.tablespaceMap,
                compression: compression, bytes: written.bytes, storedBytes: written.storedBytes, storedBlocks: written.storedBlocks,
                directories: scan.directories, files: written.files, bundles: written.bundles)
            // Last, and never over another: from here on the backup is usable.
            guard try repository.write(BackupManifest.path(id), manifest.encoded(), replacing: false) else {
                throw FerryError(.conflict, "backup \(id) already has a manifest in \(repository.location)", fix: "run the backup again")
            }
        } catch {
            _ = try? await server.stop()
            try? repository.remove(BackupManifest.directory(id))
            throw error
        }
        // The backup is kept whatever happens next; a retention failure is reported and the next run tries again.
        let expired = retention.isEmpty ? nil : try retention.apply(to: repository)
        return Report(manifest: manifest, note: note, removedIncomplete: removed, retention: expired)
    }

    /// Waits until every segment from `first` to `last` is in the archive.
    private func waitForArchive(from first: String, to last: String, system: UInt64, segmentSize: Int) async throws(FerryError) {
        let deadline = ContinuousClock.now + archiveTimeout
        for name in try WALPosition.segments(from: first, to: last, segmentSize: segmentSize) {
            while try !WALArchive(repository: repository).contains(name: name, system: system) {
                guard ContinuousClock.now < deadline else {
                    throw FerryError(
                        .timeout,
                        "WAL segment \(name), which this backup needs, did not reach the archive in \(repository.location) within \(archiveTimeout)",
                        fix:
                            "check archive_command (it should be 'ferry wal push %p --repository \(repository.location)') and pg_stat_archiver's last_failed_wal on the server; the backup was not kept"
                    )
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Runs blocking file work on a thread of its own, off the concurrency pool.
    package static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws(FerryError) -> T) async throws(FerryError) -> T {
        let result: Result<T, FerryError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                do throws(FerryError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// Bytes done so far, shared by the reading threads.
private final class ByteCounter: Sendable {
    private let value = Atomic<Int64>(0)
    func add(_ bytes: Int64) -> Int64 { value.wrappingAdd(bytes, ordering: .relaxed).newValue }
}
