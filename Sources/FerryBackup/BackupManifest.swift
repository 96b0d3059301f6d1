package import FerryCore
package import Foundation

/// Everything one base backup holds, written last to `backups/<id>/manifest.json`: a backup without it is not usable.
///
/// Each file of the data directory is a run of 8 KB blocks (the last one may be shorter) with a digest per block (the
/// first 8 bytes of its SHA-256). A file's bytes sit in pieces inside the backup's bundles; a piece holds some of the
/// file's blocks, one after the other. A file whose `base` is nil has every block in this backup; otherwise the blocks
/// no piece holds are the ones `base` (the prior backup of the chain) restores, unchanged since.
package struct BackupManifest: Codable, Sendable, Equatable {
    package enum Kind: String, Codable, Sendable {
        case full
        case incremental
    }

    package struct Piece: Codable, Sendable, Equatable {
        /// The bundle's number (`data/<n>`).
        package var bundle: Int
        package var offset: Int
        /// Stored (compressed) bytes.
        package var length: Int
        /// The blocks it holds, as `[first, count]` runs, in order.
        package var blocks: [[Int]]

        /// Every block number it holds, in order.
        package var blockNumbers: [Int] { blocks.flatMap { $0.count == 2 ? Array($0[0]..<($0[0] + max(0, $0[1]))) : [] } }
    }

    package struct File: Codable, Sendable, Equatable {
        /// Relative to the data directory.
        package var path: String
        package var size: Int64
        package var mode: UInt32
        /// Seconds since 1970.
        package var modified: Int64
        /// The block digests, little-endian, base64.
        package var digests: String
        /// The prior backup that restores the blocks no piece here holds; nil when every block is here.
        package var base: String?
        package var pieces: [Piece]

        package var blockDigests: [UInt64] { BackupManifest.decodeDigests(digests) }
        /// The file's checksum: SHA-256 of its block digests.
        package var checksum: String { BlockDigest.fileChecksum(blockDigests) }
    }

    package struct Directory: Codable, Sendable, Equatable {
        package var path: String
        package var mode: UInt32
    }

    package struct Bundle: Codable, Sendable, Equatable {
        package var number: Int
        package var bytes: Int
        /// SHA-256 of the stored bytes, hex.
        package var sha256: String
    }

    package var format = 1
    package var id: String
    package var kind: Kind
    /// The backup this one builds on (incrementals), and the chain's full backup.
    package var prior: String?
    package var full: String
    /// The cluster's system identifier (hex, 16 digits), as its WAL is archived under.
    package var system: String
    package var serverVersion: Int
    package var timeline: Int
    package var startLSN: String
    package var stopLSN: String
    /// The WAL segments restoring it needs, first and last (on `timeline`).
    package var startWAL: String
    package var stopWAL: String
    package var walSegmentSize: Int
    package var started: Date
    package var stopped: Date
    /// `pg_backup_stop()`'s backup label and tablespace map, written back on restore.
    package var backupLabel: String
    package var tablespaceMap: String?
    package var compression: BackupCompression
    package var blockSize = BlockDigest.blockSize
    /// The data directory's bytes, and what this backup stored for them (compressed, this backup's bundles only).
    package var bytes: Int64
    package var storedBytes: Int64
    package var storedBlocks: Int
    package var directories: [Directory]
    package var files: [File]
    package var bundles: [Bundle]

    enum CodingKeys: String, CodingKey {
        case format, id, kind, prior, full, system, timeline, started, stopped, compression, bytes, directories, files, bundles
        case serverVersion = "server_version"
        case startLSN = "start_lsn"
        case stopLSN = "stop_lsn"
        case startWAL = "start_wal"
        case stopWAL = "stop_wal"
        case walSegmentSize = "wal_segment_size"
        case backupLabel = "backup_label"
        case tablespaceMap = "tablespace_map"
        case blockSize = "block_size"
        case storedBytes = "stored_bytes"
        case storedBlocks = "stored_blocks"
    }

    /// `backups/<id>/`
    package static func directory(_ id: String) -> String { "backups/" + id }
    package static func path(_ id: String) -> String { directory(id) + "/manifest.json" }
    package static func bundlePath(_ id: String, _ number: Int) -> String { directory(id) + "/data/\(number)" }

    package func encoded() throws(FerryError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        do {
            return Array(try encoder.encode(self))
        } catch {
            throw FerryError(.server, "cannot write the manifest of backup \(id): \(error)")
        }
    }

    package static func decode(_ bytes: [UInt8], what: String) throws(FerryError) -> BackupManifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifest: BackupManifest
        do {
            manifest = try decoder.decode(BackupManifest.self, from: Data(bytes))
        } catch {
            throw FerryError(.invalidInput, "\(what) is not a readable backup manifest: \(error)", fix: BackupCompression.damagedFix)
        }
        guard manifest.format == 1 else {
            throw FerryError(
                .unsupported, "\(what) is in manifest format \(manifest.format), which this ferry does not read",
                fix: "use the ferry version that wrote it, or a newer one")
        }
        guard manifest.blockSize == BlockDigest.blockSize else {
            throw FerryError(.invalidInput, "\(what) uses \(manifest.blockSize)-byte blocks", fix: BackupCompression.damagedFix)
        }
        return manifest
    }

    static func encodeDigests(_ digests: [UInt64]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(digests.count * 8)
        for digest in digests { withUnsafeBytes(of: digest.littleEndian) { bytes.append(contentsOf: $0) } }
        return Data(bytes).base64EncodedString()
    }

    static func decodeDigests(_ text: String) -> [UInt64] {
        guard let data = Data(base64Encoded: text) else { return [] }
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / 8)).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
    }
}

extension BackupCompression: Codable {}
