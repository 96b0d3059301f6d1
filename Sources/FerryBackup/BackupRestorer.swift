import CFerryLinux
import Crypto
package import FerryCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Writes a backup chain's files into an empty data directory: the full backup's blocks, then each incremental's in
/// order (a block stored again later overwrites the earlier one), each file cut to its final size; then the backup
/// label and the recovery settings. Every block is checked against its digest before it is written.
///
/// Each bundle is read once; `workers` bundles at a time, one backup after the other so that later blocks land last.
package struct BackupRestorer: Sendable {
    package let repository: any BackupRepository
    package let chain: [BackupManifest]
    package let target: String
    package var workers = 2

    package init(repository: any BackupRepository, chain: [BackupManifest], target: String) {
        precondition(!chain.isEmpty)
        self.repository = repository
        self.chain = chain
        self.target = target
    }

    /// The backup restored (the chain's last).
    package var backup: BackupManifest { chain[chain.count - 1] }

    /// Refuses a target that holds anything, then creates it (mode 0700, as PostgreSQL requires).
    package static func prepareTarget(_ target: String) throws(FerryError) {
        guard target.hasPrefix("/") else {
            throw FerryError(
                .configuration, "the restore target \"\(PrintableText.escaped(target))\" is not an absolute path", fix: "give its full path")
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: target), !entries.isEmpty {
            throw FerryError(
                .conflict, "the restore target \(target) is not empty (\(entries.count) entries); nothing was written",
                fix: "restore into a new or empty directory, or move this one aside first (stop its server if one runs there)")
        }
        try LocalRepository.makeDirectories(target)
        chmod(target, 0o700)
    }

    /// Writes every file; `progress` gets the bytes written as they are written. With `flush`, each file is flushed to
    /// disk; without, the caller starts PostgreSQL at once, whose start from a backup flushes the whole data directory
    /// before recovery begins (`recovery_init_sync_method`), so the same writes are not waited for twice.
    package func restoreFiles(flush: Bool = true, progress: @escaping @Sendable (Int64) -> Void = { _ in }) throws(FerryError) {
        let final = backup
        for directory in final.directories.sorted(by: { $0.path < $1.path }) {
            let path = try Self.inside(target, directory.path)
            if mkdir(path, mode_t(directory.mode & 0o7777 | 0o700)) != 0, errno != EEXIST { throw LocalRepository.failure("create", path, errno) }
        }
        // For each file, the oldest backup of the chain whose blocks it needs: the newest one holding it whole.
        let position = Dictionary(chain.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        let filesByBackup = chain.map { Dictionary($0.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first }) }
        var firstNeeded: [String: Int] = [:]
        for file in final.files {
            _ = try Self.inside(target, file.path)
            var index = chain.count - 1
            var entry = file
            while let base = entry.base {
                guard let prior = position[base], prior < index, let older = filesByBackup[prior][file.path] else {
                    throw FerryError(
                        .invalidInput, "\(file.path) in backup \(chain[index].id) builds on backup \(base), which does not hold it",
                        fix: BackupCompression.damagedFix)
                }
                index = prior
                entry = older
            }
            firstNeeded[file.path] = index
            let path = target + "/" + file.path
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(file.mode & 0o7777 | 0o600))
            guard descriptor >= 0 else { throw LocalRepository.failure("create", path, errno) }
            close(descriptor)
        }
        for (index, manifest) in chain.enumerated() {
            let files = manifest.files.filter { firstNeeded[$0.path].map { $0 <= index } ?? false }
            var grouped: [Int: [(BackupManifest.File, BackupManifest.Piece)]] = [:]
            for file in files { for piece in file.pieces { grouped[piece.bundle, default: []].append((file, piece)) } }
            let byBundle = grouped
            let bundles = byBundle.keys.sorted()
            let next = Atomic<Int>(0)
            let failure = Mutex<FerryError?>(nil)
            DispatchQueue.concurrentPerform(iterations: max(1, min(workers, bundles.count))) { _ in
                while failure.withLock({ $0 == nil }) {
                    let slot = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard slot < bundles.count else { return }
                    do throws(FerryError) {
                        try apply(bundle: bundles[slot], pieces: byBundle[bundles[slot]]!, of: manifest, progress: progress)
                    } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                    }
                }
            }
            if let error = failure.withLock({ $0 }) { throw error }
        }
        // Each file cut to its size and on disk before PostgreSQL reads it.
        for file in final.files {
            let path = target + "/" + file.path
            let descriptor = open(path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw LocalRepository.failure("open", path, errno) }
            defer { close(descriptor) }
            guard ftruncate(descriptor, off_t(file.size)) == 0 else { throw LocalRepository.failure("size", path, errno) }
            if flush { guard fsync(descriptor) == 0 else { throw LocalRepository.failure("flush", path, errno) } }
            var times = [timespec(tv_sec: time_t(file.modified), tv_nsec: 0), timespec(tv_sec: time_t(file.modified), tv_nsec: 0)]
            _ = futimens(descriptor, &times)
        }
    }

    private func apply(
        bundle number: Int, pieces: [(BackupManifest.File, BackupManifest.Piece)], of manifest: BackupManifest, progress: @Sendable (Int64) -> Void
    ) throws(FerryError) {
        let path = BackupManifest.bundlePath(manifest.id, number)
        guard let bytes = try repository.read(path) else {
            throw FerryError(
                .notFound, "backup \(manifest.id) is missing \(path) in \(repository.location)",
                fix: "this backup cannot be restored; use another one (`ferry backup list`), and run `ferry backup verify` on the rest")
        }
        // The bundle against its SHA-256 (over its compressed bytes: a twentieth of hashing every block); `ferry
        // backup verify` checks block by block and names the files a damaged bundle holds.
        guard let expected = manifest.bundles.first(where: { $0.number == number }), bytes.count == expected.bytes,
            WALArchive.hex(SHA256.hash(data: bytes)) == expected.sha256
        else {
            throw FerryError(
                .invalidInput, "backup \(manifest.id): \(path) in \(repository.location) does not match its SHA-256; nothing of it was written",
                fix: "run `ferry backup verify \(manifest.id)` to see the damaged files, and restore another backup (`ferry backup list`)")
        }
        var digests: [String: [UInt64]] = [:]
        for (file, piece) in pieces {
            if digests[file.path] == nil { digests[file.path] = file.blockDigests }
            let (blocks, numbers) = try BackupPieceReader.blocks(
                of: piece, file: file, digests: digests[file.path]!, in: bytes, backup: manifest, checkBlocks: false)
            let destination = target + "/" + file.path
            let descriptor = open(destination, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw LocalRepository.failure("open", destination, errno) }
            defer { close(descriptor) }
            // Runs of consecutive blocks go out in one write.
            var index = 0
            while index < numbers.count {
                var end = index + 1
                while end < numbers.count, numbers[end] == numbers[end - 1] + 1 { end += 1 }
                let start = index * BlockDigest.blockSize
                let stop = min(blocks.count, end * BlockDigest.blockSize)
                var done = 0
                while done < stop - start {
                    let written = blocks.withUnsafeBytes { raw in
                        pwrite(descriptor, raw.baseAddress! + start + done, stop - start - done, off_t(numbers[index] * BlockDigest.blockSize + done))
                    }
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw LocalRepository.failure("write", destination, errno)
                    }
                    done += written
                }
                index = end
            }
            // The disk starts on these bytes now, not all at once when PostgreSQL (or the final flush) asks for them.
            _ = cferry_start_writeback(
                descriptor, Int64(numbers[0] * BlockDigest.blockSize),
                Int64((numbers[numbers.count - 1] + 1) * BlockDigest.blockSize) - Int64(numbers[0] * BlockDigest.blockSize))
            progress(Int64(blocks.count))
        }
    }

    /// `relative` under `root`, refused when it would leave it (a damaged or hostile manifest).
    static func inside(_ root: String, _ relative: String) throws(FerryError) -> String {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard !relative.isEmpty, !relative.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw FerryError(
                .invalidInput, "the manifest names \"\(PrintableText.escaped(relative))\", which is not a path inside a data directory",
                fix: BackupCompression.damagedFix)
        }
        return root + "/" + relative
    }

    /// What PostgreSQL does once recovery reaches its target.
    package enum TargetAction: String, Sendable {
        case promote
        case pause
        case shutdown
    }

    /// Where recovery stops.
    package enum Target: Sendable, Equatable {
        /// Everything the archive holds.
        case latest
        /// `recovery_target_time`: a timestamp with its time zone.
        case time(String)
        case lsn(String)
        /// A restore point made with `pg_create_restore_point(name)`.
        case name(String)

        /// `latest`, a time with its zone, an LSN, or `name:NAME` (`what` names where it came from, for messages).
        package static func parse(_ text: String, what: String = "--to") throws(FerryError) -> Target {
            if text == "latest" { return .latest }
            if text.hasPrefix("name:") {
                let name = String(text.dropFirst(5))
                guard !name.isEmpty, name.utf8.count <= 63 else {
                    throw FerryError(
                        .configuration, "the restore point name in \(what) is empty or longer than 63 bytes", fix: "give \(what) name:NAME")
                }
                return .name(name)
            }
            if WALPosition(text) != nil { return .lsn(text) }
            if BackupRestore.parseTime(text) != nil { return .time(text) }
            throw FerryError(
                .configuration, "\(what) \"\(PrintableText.escaped(text))\" is not latest, a time with its zone, an LSN or name:NAME",
                fix: "e.g. '2026-12-07 14:05:00+00', 0/3A000028, name:before_migration")
        }
    }

    /// Writes the backup label, the signal file and the recovery settings (appended to `postgresql.auto.conf`).
    package func writeRecoverySettings(
        restoreCommand: String, recoveryTarget: Target, action: TargetAction, standby: [String: String]?, archiveMode: String?,
        owner: (uid: UInt32, gid: UInt32)?
    ) throws(FerryError) {
        let final = backup
        var written: [String] = []
        func put(_ name: String, _ text: String, append: Bool = false) throws(FerryError) {
            let path = target + "/" + name
            let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
            let descriptor = open(path, flags, 0o600)
            guard descriptor >= 0 else { throw LocalRepository.failure("write", path, errno) }
            defer { close(descriptor) }
            let bytes = Array(text.utf8)
            guard bytes.withUnsafeBytes({ Glibc.write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
                throw LocalRepository.failure("write", path, errno)
            }
            written.append(path)
        }
        try put("backup_label", final.backupLabel)
        if let map = final.tablespaceMap, !map.isEmpty { try put("tablespace_map", map) }
        var lines = ["", "# written by ferry restore of backup \(final.id)", "restore_command = '\(Self.quoted(restoreCommand))'"]
        switch recoveryTarget {
        case .latest: break
        case .time(let time): lines.append("recovery_target_time = '\(Self.quoted(time))'")
        case .lsn(let lsn): lines.append("recovery_target_lsn = '\(Self.quoted(lsn))'")
        case .name(let name): lines.append("recovery_target_name = '\(Self.quoted(name))'")
        }
        if recoveryTarget != .latest { lines.append("recovery_target_action = '\(action.rawValue)'") }
        if let archiveMode { lines.append("archive_mode = \(archiveMode)") }
        for (key, value) in (standby ?? [:]).sorted(by: { $0.key < $1.key }) { lines.append("\(key) = '\(Self.quoted(value))'") }
        try put("postgresql.auto.conf", lines.joined(separator: "\n") + "\n", append: true)
        try put(standby == nil ? "recovery.signal" : "standby.signal", "")
        if let owner { for path in written { lchown(path, owner.uid, owner.gid) } }
    }

    /// A value inside single quotes in postgresql.conf.
    static func quoted(_ value: String) -> String { value.replacingOccurrences(of: "'", with: "''") }
}
