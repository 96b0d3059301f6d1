import FerryCore
import Foundation
import Testing

@testable import FerryBackup

/// The block store without a server: a full backup and incrementals of a data directory on disk, restored through
/// the chain byte for byte; what a data directory's backup leaves out; damage and hostile manifests refused by name.
@Suite struct BaseBackupTests {
    let root: String
    let data: String
    let repository: LocalRepository

    init() throws {
        root = NSTemporaryDirectory() + "ferry-base-backup-\(UUID().uuidString.prefix(8))"
        data = root + "/data"
        repository = LocalRepository(root: root + "/repository")
        for directory in ["global", "base/5", "pg_wal/archive_status", "pg_stat_tmp", "pg_xact", "pg_replslot/slot"] {
            try FileManager.default.createDirectory(atPath: data + "/" + directory, withIntermediateDirectories: true)
        }
        try put("global/pg_control", Array(repeating: 7, count: 8192))
        try put("PG_VERSION", Array("15\n".utf8))
    }

    func put(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: data + "/" + path))
    }

    func read(_ base: String, _ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: base + "/" + path).map { Array($0) }
    }

    /// A relation file of `blocks` 8 KB blocks, each filled from its number and `seed`.
    static func relation(blocks: Int, seed: UInt8, tail: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        for block in 0..<blocks { bytes += (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ block &* 7) ^ seed } }
        bytes += (0..<tail).map { UInt8(truncatingIfNeeded: $0) }
        return bytes
    }

    func backup(_ id: String, prior: BackupManifest?, compression: BackupCompression = .zstd) throws -> BackupManifest {
        let scan = try DataDirectoryScan(dataDirectory: data)
        var writer = BaseBackupWriter(repository: repository, id: id, compression: compression, prior: prior)
        writer.bundleSize = 40_000  // several bundles
        writer.pieceSize = 3 * 8192
        let result = try writer.write(dataDirectory: data, scan: scan)
        let manifest = BackupManifest(
            id: id, kind: prior == nil ? .full : .incremental, prior: prior?.id, full: prior?.full ?? id, system: "0000000000000001",
            serverVersion: 150000,
            timeline: 1, startLSN: "0/2000028", stopLSN: "0/2000100", startWAL: "000000010000000000000002", stopWAL: "000000010000000000000002",
            walSegmentSize: 16 << 20, started: Date(), stopped: Date(),
            backupLabel: "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
            tablespaceMap: nil, compression: compression, bytes: result.bytes, storedBytes: result.storedBytes, storedBlocks: result.storedBlocks,
            directories: scan.directories, files: result.files, bundles: result.bundles)
        #expect(try repository.write(BackupManifest.path(id), manifest.encoded(), replacing: false))
        return manifest
    }

    func restore(_ id: String) throws -> String {
        let target = root + "/restored-\(id)"
        try BackupRestorer.prepareTarget(target)
        try BackupRestorer(repository: repository, chain: try BackupStore(repository: repository).chain(id), target: target).restoreFiles()
        return target
    }

    @Test(arguments: [BackupCompression.zstd, .lz4, .gzip, .none])
    func aChainRestoresEachBackupByteForByteAndStoresOnlyChangedBlocks(compression: BackupCompression) throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try put("base/5/16384", Self.relation(blocks: 20, seed: 1))
        try put("base/5/16390", Self.relation(blocks: 3, seed: 2))
        try put("pg_xact/0000", Self.relation(blocks: 1, seed: 3, tail: 100))
        try put("base/5/empty", [])
        let full = try backup("20261207-100000F", prior: nil, compression: compression)
        #expect(full.storedBlocks == 20 + 3 + 2 + 1 + 1, "every block: the relations, pg_xact, pg_control, PG_VERSION")
        let fullState = try snapshot()

        // Two blocks change, one file grows, one shrinks, one is new, one is removed.
        var relation = Self.relation(blocks: 20, seed: 1)
        relation[5 * 8192 + 17] ^= 0xFF
        relation[19 * 8192] ^= 0x01
        try put("base/5/16384", relation + Self.relation(blocks: 2, seed: 9))
        try put("base/5/16390", Array(Self.relation(blocks: 3, seed: 2).prefix(8192 + 10)))
        try put("base/5/16400", Self.relation(blocks: 1, seed: 4))
        try FileManager.default.removeItem(atPath: data + "/pg_xact/0000")
        let first = try backup("20261207-110000I", prior: full, compression: compression)
        #expect(first.storedBlocks == 2 + 2 + 1 + 1, "two changed, two added, one new file, the shortened file's cut block")
        #expect(first.files.first { $0.path == "base/5/16384" }?.base == full.id)
        let firstState = try snapshot()

        // The removed file comes back with other content; a changed block changes back.
        try put("pg_xact/0000", Self.relation(blocks: 1, seed: 5))
        relation = Self.relation(blocks: 20, seed: 1)
        try put("base/5/16384", relation + Self.relation(blocks: 2, seed: 9))
        let second = try backup("20261207-120000I", prior: first, compression: compression)
        #expect(second.storedBlocks == 2 + 1)
        let secondState = try snapshot()

        for (id, state) in [(full.id, fullState), (first.id, firstState), (second.id, secondState)] {
            let target = try restore(id)
            for (path, bytes) in state { #expect(read(target, path) == bytes, "\(path) restored from \(id)") }
            let restoredFiles = try DataDirectoryScan(dataDirectory: target).files.map(\.path)
            #expect(restoredFiles == state.keys.sorted(), "no file restored that the backup did not hold")
            #expect(FileManager.default.fileExists(atPath: target + "/pg_wal/archive_status"))
        }
    }

    /// The data directory's files as a backup sees them.
    func snapshot() throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for entry in try DataDirectoryScan(dataDirectory: data).files { files[entry.path] = read(data, entry.path) }
        return files
    }

    @Test func aDataDirectoryBackupLeavesOutWhatPostgreSQLRebuilds() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        for path in [
            "postmaster.pid", "postmaster.opts", "pg_wal/000000010000000000000001", "pg_stat_tmp/global.stat", "pg_replslot/slot/state",
            "base/5/pg_internal.init", "base/5/t3_16500", "base/5/t3_16500_fsm", "base/5/16600", "base/5/16600_fsm", "base/5/16600_init",
            "backup_label", "standby.signal", "recovery.signal", "base/5/16700", "base/5/16700.1", "base/5/16700_vm", "postgresql.auto.conf",
        ] {
            try put(path, [1, 2, 3])
        }
        try FileManager.default.createDirectory(atPath: data + "/base/pgsql_tmp", withIntermediateDirectories: true)
        try put("base/pgsql_tmp/pgsql_tmp123.0", [1])
        let scan = try DataDirectoryScan(dataDirectory: data)
        #expect(
            scan.files.map(\.path) == [
                "PG_VERSION", "base/5/16600_init", "base/5/16700", "base/5/16700.1", "base/5/16700_vm", "global/pg_control", "postgresql.auto.conf",
            ])
        let directories = Set(scan.directories.map(\.path))
        #expect(directories.isSuperset(of: ["pg_wal", "pg_wal/archive_status", "pg_stat_tmp", "pg_replslot", "base/5"]))
        #expect(!directories.contains("pg_replslot/slot") && !directories.contains("base/pgsql_tmp"))
    }

    @Test func damageIsNamedByBackupFileAndBlock() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try put("base/5/16384", Self.relation(blocks: 8, seed: 1))
        let full = try backup("20261207-100000F", prior: nil, compression: .none)
        #expect(try BackupStore(repository: repository).verifyData(full.id).damage.isEmpty)
        let piece = try #require(full.files.first { $0.path == "base/5/16384" }?.pieces.first)
        let path = repository.root + "/" + BackupManifest.bundlePath(full.id, piece.bundle)
        var bytes = try #require(FileManager.default.contents(atPath: path).map { Array($0) })
        bytes[piece.offset + 8192 + 5] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let damage = try BackupStore(repository: repository).verifyData(full.id).damage.map(\.description)
        #expect(damage.contains { $0.contains("base/5/16384 block 1") && $0.contains("data/\(piece.bundle)") }, "\(damage)")
        #expect(damage.contains { $0.contains("does not match its SHA-256") }, "\(damage)")
        #expect(throws: FerryError.self) { _ = try restore(full.id) }
    }

    @Test func aHostileManifestIsRefusedBeforeAnythingIsAllocatedOrWrittenOutside() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try put("base/5/16384", Self.relation(blocks: 2, seed: 1))
        var full = try backup("20261207-100000F", prior: nil)
        let bundle = try #require(try repository.read(BackupManifest.bundlePath(full.id, 0)))
        var file = full.files.first { $0.path == "base/5/16384" }!
        for blocks in [[[0, Int.max]], [[-1, 1]], [[1, 5]], [[0]], []] {
            var piece = file.pieces[0]
            piece.blocks = blocks
            #expect(throws: FerryError.self, "\(blocks)") {
                _ = try BackupPieceReader.blocks(of: piece, file: file, digests: file.blockDigests, in: bundle, backup: full)
            }
        }
        var piece = file.pieces[0]
        piece.offset = Int.max - 2
        #expect(throws: FerryError.self) {
            _ = try BackupPieceReader.blocks(of: piece, file: file, digests: file.blockDigests, in: bundle, backup: full)
        }
        file.size = Int64.max
        #expect(throws: FerryError.self) {
            _ = try BackupPieceReader.blocks(of: file.pieces[0], file: file, digests: file.blockDigests, in: bundle, backup: full)
        }
        for path in ["../escape", "/etc/passwd", "base/../../x", ""] {
            full.files[0].path = path
            #expect(throws: FerryError.self, "\(path)") {
                try BackupRestorer(repository: repository, chain: [full], target: root + "/hostile-\(UUID().uuidString.prefix(4))").restoreFiles()
            }
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/escape"))
        for id in ["../x", "20261207-100000X", "2026120-1000000F", "20261207_100000F", ""] {
            #expect(throws: FerryError.self, "\(id)") { try BackupStore.checkID(id) }
        }
    }

    @Test func walPositionsAndSegmentNames() throws {
        #expect(WALPosition("16/B374D848")?.value == 0x16_B374_D848)
        #expect(WALPosition("16/B374D848")?.description == "16/B374D848")
        for bad in ["", "1", "1/", "/1", "x/1", "123456789/0", "1/2/3"] { #expect(WALPosition(bad) == nil, "\(bad)") }
        #expect(WALPosition.segmentName(timeline: 1, position: 0x2000028, segmentSize: 16 << 20) == "000000010000000000000002")
        #expect(WALPosition.segmentName(timeline: 2, position: 0x1_FF00_0000, segmentSize: 16 << 20) == "0000000200000001000000FF")
        #expect(
            try WALPosition.segments(from: "0000000100000000000000FE", to: "000000010000000100000001", segmentSize: 16 << 20) == [
                "0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000000", "000000010000000100000001",
            ])
        #expect(throws: FerryError.self) {
            _ = try WALPosition.segments(from: "000000020000000000000001", to: "000000010000000000000002", segmentSize: 16 << 20)
        }
        let label = try BackupLabel(
            "START WAL LOCATION: 0/6000028 (file 000000020000000000000006)\nCHECKPOINT LOCATION: 0/6000060\nSTART TIMELINE: 2\n")
        #expect(label.startWAL == "000000020000000000000006" && label.timeline == 2 && label.startLSN == "0/6000028")
        #expect(throws: FerryError.self) { _ = try BackupLabel("garbage") }
    }
}
