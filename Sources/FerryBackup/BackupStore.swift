import Crypto
package import FerryCore
package import Foundation
import Synchronization

/// The base backups in a repository: listed from their manifests (a backup without one is incomplete, never usable),
/// followed as chains (full, then each incremental), verified block by block, deleted.
package struct BackupStore: Sendable {
    package let repository: any BackupRepository

    package init(repository: any BackupRepository) {
        self.repository = repository
    }

    /// `20261207-141500F` (full) or `…I` (incremental): UTC time of its start, so names sort by time.
    package static func newID(kind: BackupManifest.Kind, at date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: date) + (kind == .full ? "F" : "I")
    }

    /// Refuses anything but a backup's name: a name given on the command line never reaches another path.
    package static func checkID(_ id: String) throws(FerryError) {
        let bytes = Array(id.utf8)
        let digits = bytes.enumerated().allSatisfy { index, byte in
            switch index {
            case 8: byte == UInt8(ascii: "-")
            case 15: byte == UInt8(ascii: "F") || byte == UInt8(ascii: "I")
            default: (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            }
        }
        guard bytes.count == 16, digits else {
            throw FerryError(
                .invalidInput, "\"\(PrintableText.escaped(id))\" is not a backup's name",
                fix: "use a name `ferry backup list` shows, e.g. 20261207-141500F")
        }
    }

    /// Every usable backup, oldest first.
    package func manifests() throws(FerryError) -> [BackupManifest] {
        var manifests: [BackupManifest] = []
        for id in try usableIDs() { manifests.append(try manifest(id)) }
        return manifests
    }

    /// The names of the usable backups (those with a manifest), oldest first, without reading a manifest.
    package func usableIDs() throws(FerryError) -> [String] {
        var ids: [String] = []
        for id in try backupIDs() where try repository.list(BackupManifest.directory(id)).contains("manifest.json") { ids.append(id) }
        return ids
    }

    /// The newest usable backup `accept` takes, reading manifests from the newest back only as far as needed.
    package func newest(where accept: (BackupManifest) -> Bool) throws(FerryError) -> BackupManifest? {
        for id in try usableIDs().reversed() {
            let candidate = try manifest(id)
            if accept(candidate) { return candidate }
        }
        return nil
    }

    /// Backups a killed or failed run left without a manifest.
    package func incomplete() throws(FerryError) -> [String] {
        var ids: [String] = []
        for id in try backupIDs() where try !repository.list(BackupManifest.directory(id)).contains("manifest.json") { ids.append(id) }
        return ids
    }

    private func backupIDs() throws(FerryError) -> [String] {
        try repository.list("backups").filter { (try? Self.checkID($0)) != nil }
    }

    package func manifest(_ id: String) throws(FerryError) -> BackupManifest {
        try Self.checkID(id)
        guard let bytes = try repository.read(BackupManifest.path(id)) else {
            let partial = try repository.list(BackupManifest.directory(id)).isEmpty == false
            throw FerryError(
                .notFound,
                partial
                    ? "backup \(id) in \(repository.location) is incomplete (its run did not finish) and cannot be used"
                    : "there is no backup \(id) in \(repository.location)",
                fix: "`ferry backup list` shows the usable backups")
        }
        return try BackupManifest.decode(bytes, what: "the manifest of backup \(id) in \(repository.location)")
    }

    /// The backups restoring `id` needs, its full backup first and `id` last.
    package func chain(_ id: String) throws(FerryError) -> [BackupManifest] {
        var chain = [try manifest(id)]
        while let prior = chain[0].prior {
            guard chain.count < 10_000 else { throw FerryError(.invalidInput, "backup \(id)'s chain loops", fix: BackupCompression.damagedFix) }
            do {
                chain.insert(try manifest(prior), at: 0)
            } catch {
                throw FerryError(
                    .notFound, "backup \(id) builds on \(prior), which is missing or unreadable: \(error.message)",
                    fix: "this backup cannot be restored; use another one (`ferry backup list`)")
            }
        }
        return chain
    }

    /// The backups built on `id`, directly or not.
    package func dependents(of id: String, among manifests: [BackupManifest]) -> [String] {
        var found: Set<String> = [id]
        var changed = true
        while changed {
            changed = false
            for manifest in manifests where !found.contains(manifest.id) {
                if let prior = manifest.prior, found.contains(prior) {
                    found.insert(manifest.id)
                    changed = true
                }
            }
        }
        found.remove(id)
        return found.sorted()
    }

    /// Deletes backup `id` (its manifest first, so it stops being usable before its data goes); with
    /// `withDependents`, the incrementals built on it too, newest first. Returns what was deleted.
    @discardableResult
    package func delete(_ id: String, withDependents: Bool) throws(FerryError) -> [String] {
        let all = try manifests()
        let unfinished = try incomplete()
        guard all.contains(where: { $0.id == id }) || unfinished.contains(id) else {
            throw FerryError(.notFound, "there is no backup \(id) in \(repository.location)", fix: "`ferry backup list` shows the backups")
        }
        let dependents = dependents(of: id, among: all)
        if !dependents.isEmpty, !withDependents {
            throw FerryError(
                .conflict, "backup \(id) has incrementals built on it: \(dependents.joined(separator: ", "))",
                fix: "delete them first, or pass --with-dependents to delete them together")
        }
        let doomed = dependents.sorted(by: >) + [id]
        for victim in doomed {
            try repository.remove(BackupManifest.path(victim))
            try repository.remove(BackupManifest.directory(victim))
        }
        return doomed
    }

    // MARK: Verify

    package struct Damage: Sendable, Equatable, CustomStringConvertible {
        package var backup: String
        package var what: String
        package var description: String { "backup \(backup): \(what)" }
    }

    /// Re-reads every bundle of `id`'s chain, checks each against its SHA-256 and each block against its digest;
    /// each damaged piece is named by backup, bundle, file and blocks.
    package func verifyData(_ id: String, workers: Int = 2) throws(FerryError) -> (chain: [BackupManifest], damage: [Damage]) {
        let chain = try chain(id)
        let work = chain.flatMap { manifest in manifest.bundles.map { (manifest, $0) } }
        let next = Atomic<Int>(0)
        let damage = Mutex<[Damage]>([])
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, work.count))) { _ in
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < work.count else { return }
                let (manifest, bundle) = work[index]
                let found = check(bundle, of: manifest)
                if !found.isEmpty { damage.withLock { $0 += found } }
            }
        }
        return (chain, damage.withLock { $0 }.sorted { ($0.backup, $0.what) < ($1.backup, $1.what) })
    }

    private func check(_ bundle: BackupManifest.Bundle, of manifest: BackupManifest) -> [Damage] {
        let path = BackupManifest.bundlePath(manifest.id, bundle.number)
        let bytes: [UInt8]
        do {
            guard let read = try repository.read(path) else { return [Damage(backup: manifest.id, what: "\(path) is missing")] }
            bytes = read
        } catch {
            return [Damage(backup: manifest.id, what: "\(path) cannot be read: \(error.message)")]
        }
        var found: [Damage] = []
        if bytes.count != bundle.bytes || WALArchive.hex(SHA256.hash(data: bytes)) != bundle.sha256 {
            found.append(Damage(backup: manifest.id, what: "\(path) does not match its SHA-256 (\(bytes.count) bytes, \(bundle.bytes) expected)"))
        }
        for file in manifest.files where file.pieces.contains(where: { $0.bundle == bundle.number }) {
            let digests = file.blockDigests
            for piece in file.pieces where piece.bundle == bundle.number {
                do {
                    _ = try BackupPieceReader.blocks(of: piece, file: file, digests: digests, in: bytes, backup: manifest)
                } catch {
                    found.append(Damage(backup: manifest.id, what: error.message))
                }
            }
        }
        return found
    }
}
