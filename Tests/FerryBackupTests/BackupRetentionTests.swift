import FerryCore
import Foundation
import Testing

@testable import FerryBackup

/// Retention deletes exactly what it should: whole chains only, never the newest backup, and archived WAL only below
/// the oldest kept backup's start.
@Suite struct BackupRetentionTests {
    static let now = Date(timeIntervalSince1970: 1_796_000_000)
    static let system = "00000000000000ab"

    /// Day `day` before `now` (0 = today), at noon.
    static func manifest(_ id: String, _ kind: BackupManifest.Kind, prior: String?, full: String, daysAgo: Double, startSegment: Int)
        -> BackupManifest
    {
        let segment = "00000001" + "00000000" + String(format: "%08X", startSegment)
        return BackupManifest(
            id: id, kind: kind, prior: prior, full: full, system: system, serverVersion: 150000, timeline: 1, startLSN: "0/1", stopLSN: "0/2",
            startWAL: segment, stopWAL: segment, walSegmentSize: 16 << 20, started: now.addingTimeInterval(-daysAgo * 86_400 - 60),
            stopped: now.addingTimeInterval(-daysAgo * 86_400), backupLabel: "", tablespaceMap: nil, compression: .zstd, bytes: 0, storedBytes: 0,
            storedBlocks: 0, directories: [], files: [], bundles: [])
    }

    /// The seed's week: a full each Sunday, incrementals on the other days, two weeks of them.
    static var twoWeeks: [BackupManifest] {
        var manifests: [BackupManifest] = []
        var full = ""
        var prior: String?
        for day in 0..<14 {
            let daysAgo = Double(13 - day)
            let isFull = day % 7 == 0
            let id = String(format: "202612%02d-120000", day + 1) + (isFull ? "F" : "I")
            if isFull {
                full = id
                prior = nil
            }
            manifests.append(manifest(id, isFull ? .full : .incremental, prior: prior, full: full, daysAgo: daysAgo, startSegment: 10 * (day + 1)))
            prior = id
        }
        return manifests
    }

    @Test func keepFullKeepsTheNewestFullsAndTheirIncrementals() {
        let manifests = Self.twoWeeks
        let expired = BackupRetention(keepFull: 1).expired(manifests, now: Self.now)
        #expect(expired == manifests.prefix(7).map(\.id).reversed(), "the first week goes, newest first")
        #expect(BackupRetention(keepFull: 2).expired(manifests, now: Self.now).isEmpty)
        #expect(BackupRetention().expired(manifests, now: Self.now).isEmpty, "no rule: nothing expires")
    }

    @Test func keepDaysKeepsWhatRestoringToAnyMomentOfTheWindowNeeds() {
        let manifests = Self.twoWeeks
        // Six days: the window starts in the middle of the second week's chain; the backup before it and its whole
        // chain back to that week's full backup stay.
        let expired = BackupRetention(keepDays: 6).expired(manifests, now: Self.now)
        #expect(expired == manifests.prefix(7).map(\.id).reversed())
        // Ten days: the window reaches into the first week: the backup ending before it and its chain stay.
        let longer = BackupRetention(keepDays: 10).expired(manifests, now: Self.now)
        #expect(longer.isEmpty, "\(longer)")
        // Zero days: only the newest backup and its chain.
        #expect(BackupRetention(keepDays: 0).expired(manifests, now: Self.now) == manifests.prefix(7).map(\.id).reversed())
        // Everything old: the newest backup is never expired.
        let old = manifests.map { manifest -> BackupManifest in
            var copy = manifest
            copy.stopped = Self.now.addingTimeInterval(-400 * 86_400)
            return copy
        }
        #expect(!BackupRetention(keepDays: 1).expired(old, now: Self.now).contains(old.last!.id))
    }

    @Test func applyDeletesTheBackupsAndTheWALNoKeptBackupNeeds() throws {
        let root = NSTemporaryDirectory() + "ferry-retention-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let repository = LocalRepository(root: root)
        for manifest in Self.twoWeeks {
            try repository.write(BackupManifest.path(manifest.id), manifest.encoded(), replacing: false)
            try repository.write(BackupManifest.bundlePath(manifest.id, 0), [1, 2, 3], replacing: false)
        }
        // Segments 1…160 on timeline 1, a few on timeline 2, a partial, a backup label and history files.
        let system = UInt64(Self.system, radix: 16)!
        var names = (1...160).map { "00000001" + "00000000" + String(format: "%08X", $0) }
        names += ["0000000200000000000000A0", "000000010000000000000045.partial", "000000010000000000000046.00000028.backup", "00000002.history"]
        names.append("000000010000000100000001")  // a later log id
        for name in names { try repository.write(WALArchive.path(of: name, system: system), [0], replacing: false) }

        let outcome = try BackupRetention(keepFull: 1).apply(to: repository, now: Self.now)
        #expect(outcome.expired.count == 7)
        let remaining = try BackupStore(repository: repository).manifests().map(\.id)
        #expect(remaining == Self.twoWeeks.suffix(7).map(\.id))
        #expect(try repository.list("backups") == remaining, "the expired backups' data went too")
        // The oldest kept backup starts at segment 80 (0x50): everything below it goes, on every timeline.
        #expect(outcome.walKeptFrom[Self.system] == "000000010000000000000050")
        let archive = WALArchive(repository: repository)
        for name in names {
            let segment = WALPosition.parse(String(name.prefix(24)), segmentSize: 16 << 20)?.1
            let shouldStay = name.hasSuffix(".history") || segment.map { $0 >= 0x50 } ?? true
            #expect(try archive.contains(name: name, system: system) == shouldStay, "\(name)")
        }
        #expect(outcome.walFilesRemoved == 79 + 2)

        // Dry run: reports, deletes nothing.
        let before = try repository.list("backups")
        let dry = try BackupRetention(keepDays: 0).apply(to: repository, now: Self.now.addingTimeInterval(30 * 86_400), dryRun: true)
        #expect(dry.expired.isEmpty, "one chain left: the newest's chain is always kept")
        #expect(try repository.list("backups") == before)
    }
}
