package import FerryCore
package import Foundation

/// Which backups to keep, and the archived WAL that goes with them.
///
/// - `keepFull`: the newest N full backups and every incremental built on them.
/// - `keepDays`: every backup needed to restore to any moment of the last N days: those that ended within them, and
///   the newest one that ended by its start (restoring to the window's first moment starts from it).
///
/// With both, a backup either rule keeps is kept. A kept backup's chain is always kept, the newest backup is never
/// expired, and archived WAL is pruned only below the oldest kept backup's start (per cluster), so every kept backup
/// stays restorable to any later point.
package struct BackupRetention: Sendable, Equatable {
    package var keepFull: Int?
    package var keepDays: Int?

    package init(keepFull: Int? = nil, keepDays: Int? = nil) {
        self.keepFull = keepFull
        self.keepDays = keepDays
    }

    package var isEmpty: Bool { keepFull == nil && keepDays == nil }

    /// The backups to expire among `manifests` (oldest first), newest first: the order they are deleted in.
    package func expired(_ manifests: [BackupManifest], now: Date) -> [String] {
        guard !isEmpty, let newest = manifests.last else { return [] }
        var keep: Set<String> = [newest.id]
        if let keepFull {
            let fulls = Set(manifests.filter { $0.kind == .full }.suffix(max(1, keepFull)).map(\.id))
            for manifest in manifests where fulls.contains(manifest.full) { keep.insert(manifest.id) }
        }
        if let keepDays {
            let cutoff = now.addingTimeInterval(-Double(max(0, keepDays)) * 86_400)
            for manifest in manifests where manifest.stopped > cutoff { keep.insert(manifest.id) }
            if let base = manifests.last(where: { $0.stopped <= cutoff }) { keep.insert(base.id) }
        }
        // Every kept backup's chain.
        let byID = Dictionary(manifests.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for id in keep {
            var current = byID[id]
            while let prior = current?.prior {
                keep.insert(prior)
                current = byID[prior]
            }
        }
        return manifests.map(\.id).filter { !keep.contains($0) }.sorted(by: >)
    }

    package struct Outcome: Sendable, Codable, Equatable {
        package var expired: [String] = []
        package var walFilesRemoved = 0
        /// Per cluster (system identifier): the first WAL segment kept.
        package var walKeptFrom: [String: String] = [:]
    }

    /// Deletes the expired backups, then the archived WAL no kept backup needs. The caller holds the repository's lock.
    package func apply(to repository: any BackupRepository, now: Date = Date(), dryRun: Bool = false) throws(FerryError) -> Outcome {
        let store = BackupStore(repository: repository)
        let manifests = try store.manifests()
        var outcome = Outcome()
        outcome.expired = expired(manifests, now: now)
        let doomed = Set(outcome.expired)
        if !dryRun {
            for id in outcome.expired {
                try repository.remove(BackupManifest.path(id))
                try repository.remove(BackupManifest.directory(id))
            }
        }
        let kept = manifests.filter { !doomed.contains($0.id) }
        for system in Set(kept.map(\.system)) {
            let backups = kept.filter { $0.system == system }
            guard
                let oldest = backups.min(by: {
                    (WALPosition.parse($0.startWAL, segmentSize: $0.walSegmentSize)?.1 ?? 0)
                        < (WALPosition.parse($1.startWAL, segmentSize: $1.walSegmentSize)?.1 ?? 0)
                }), let (_, first) = WALPosition.parse(oldest.startWAL, segmentSize: oldest.walSegmentSize)
            else { continue }
            outcome.walKeptFrom[system] = oldest.startWAL
            outcome.walFilesRemoved += try pruneWAL(
                repository, system: system, below: first, segmentSize: oldest.walSegmentSize, dryRun: dryRun)
        }
        return outcome
    }

    /// Removes `wal/<system>/`'s segments (any timeline, with their `.partial` and `.backup` files) numbered below
    /// `first`; history files stay. A directory whose every possible segment is below is removed whole.
    private func pruneWAL(_ repository: any BackupRepository, system: String, below first: UInt64, segmentSize: Int, dryRun: Bool) throws(FerryError)
        -> Int
    {
        let perID = 0x1_0000_0000 / UInt64(segmentSize)
        var removed = 0
        let base = "wal/" + system
        for directory in try repository.list(base) where directory.utf8.count == 16 {
            guard let logID = UInt64(directory.suffix(8), radix: 16) else { continue }
            let names = try repository.list(base + "/" + directory)
            if (logID + 1) * perID <= first {
                removed += names.count
                if !dryRun { try repository.remove(base + "/" + directory) }
                continue
            }
            for name in names {
                guard let (_, segment) = WALPosition.parse(String(name.prefix(24)), segmentSize: segmentSize), segment < first else { continue }
                removed += 1
                if !dryRun { try repository.remove(base + "/" + directory + "/" + name) }
            }
        }
        return removed
    }
}
