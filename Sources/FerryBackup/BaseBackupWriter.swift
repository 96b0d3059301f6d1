import Crypto
package import FerryCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a data directory's files and stores their blocks into a backup's bundles: every block for a full backup,
/// only the blocks whose digest differs from the prior backup's for an incremental.
///
/// Files are read by `workers` threads at once, largest first. Each worker fills its own bundle (`data/<n>`, written
/// whole when it passes `bundleSize`); a piece holds up to `pieceSize` bytes of one file's blocks, compressed.
package struct BaseBackupWriter: Sendable {
    package struct Result: Sendable {
        package var files: [BackupManifest.File]
        package var bundles: [BackupManifest.Bundle]
        package var bytes: Int64
        package var storedBytes: Int64
        package var storedBlocks: Int
    }

    package let repository: any BackupRepository
    package let id: String
    package let compression: BackupCompression
    package let prior: BackupManifest?
    package var workers = 2
    package var bundleSize = 64 << 20
    /// …or when the blocks it holds pass this: data that compresses 20:1 still makes bundles a restore can spread over
    /// its workers.
    package var bundleRawSize = 128 << 20
    package var pieceSize = 1 << 20

    package init(repository: any BackupRepository, id: String, compression: BackupCompression, prior: BackupManifest?) {
        self.repository = repository
        self.id = id
        self.compression = compression
        self.prior = prior
    }

    /// Stores `scan`'s files from `dataDirectory`; `progress` gets the bytes read as they are read.
    package func write(dataDirectory: String, scan: DataDirectoryScan, progress: @escaping @Sendable (Int64) -> Void = { _ in }) throws(FerryError)
        -> Result
    {
        let order = scan.files.sorted { $0.size > $1.size }
        let priorFiles = Dictionary((prior?.files ?? []).map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        let next = Atomic<Int>(0)
        let bundleNumbers = BundleNumbers()
        let failure = Mutex<FerryError?>(nil)
        let collected = Mutex(Result(files: [], bundles: [], bytes: 0, storedBytes: 0, storedBlocks: 0))
        let workerCount = max(1, min(workers, order.count))
        DispatchQueue.concurrentPerform(iterations: workerCount) { _ in
            var worker = Worker(writer: self, bundleNumbers: bundleNumbers)
            do throws(FerryError) {
                while failure.withLock({ $0 == nil }) {
                    let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard index < order.count else { break }
                    let entry = order[index]
                    if let file = try worker.store(entry, dataDirectory: dataDirectory, prior: priorFiles[entry.path], progress: progress) {
                        collected.withLock { $0.files.append(file) }
                    }
                }
                try worker.finishBundle()
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
            collected.withLock {
                $0.bundles += worker.bundles
                $0.bytes += worker.bytes
                $0.storedBytes += worker.storedBytes
                $0.storedBlocks += worker.storedBlocks
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        var result = collected.withLock { $0 }
        result.files.sort { $0.path < $1.path }
        result.bundles.sort { $0.number < $1.number }
        return result
    }

    /// One reading thread: its read buffer, the piece it is filling and its open bundle.
    private struct Worker {
        let writer: BaseBackupWriter
        let bundleNumbers: BundleNumbers
        var bundles: [BackupManifest.Bundle] = []
        var bytes: Int64 = 0
        var storedBytes: Int64 = 0
        var storedBlocks = 0
        private var bundle: [UInt8] = []
        private var bundleRaw = 0
        private var bundleNumber: Int?

        init(writer: BaseBackupWriter, bundleNumbers: BundleNumbers) {
            self.writer = writer
            self.bundleNumbers = bundleNumbers
        }

        /// The file's manifest entry after storing its blocks that changed; nil when it vanished before it was read.
        mutating func store(
            _ entry: DataDirectoryScan.Entry, dataDirectory: String, prior: BackupManifest.File?, progress: @Sendable (Int64) -> Void
        ) throws(FerryError) -> BackupManifest.File? {
            let path = dataDirectory + "/" + entry.path
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            if descriptor < 0 {
                if errno == ENOENT { return nil }  // dropped while the backup ran: WAL replay removes it
                throw LocalRepository.failure("read", path, errno)
            }
            defer { close(descriptor) }
            let priorDigests = prior?.blockDigests ?? []
            var digests: [UInt64] = []
            digests.reserveCapacity(Int(entry.size / Int64(BlockDigest.blockSize)) + 1)
            var pieces: [BackupManifest.Piece] = []
            var piece: [UInt8] = []
            var runs: [[Int]] = []
            var buffer = [UInt8](repeating: 0, count: writer.pieceSize)
            var offset: Int64 = 0
            while offset < entry.size {
                let wanted = Int(min(Int64(buffer.count), entry.size - offset))
                let read = try Self.readFully(descriptor, into: &buffer, count: wanted, at: offset, path: path)
                if read == 0 { break }  // shortened while the backup ran: WAL replay restores its length
                buffer.withUnsafeBytes { raw in
                    var start = 0
                    while start < read {
                        let end = min(read, start + BlockDigest.blockSize)
                        let block = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                        let digest = BlockDigest.of(block)
                        let number = digests.count
                        digests.append(digest)
                        if prior == nil || number >= priorDigests.count || priorDigests[number] != digest {
                            piece.append(contentsOf: block)
                            if let last = runs.last, last[0] + last[1] == number {
                                runs[runs.count - 1][1] += 1
                            } else {
                                runs.append([number, 1])
                            }
                        }
                        start = end
                    }
                }
                offset += Int64(read)
                progress(Int64(read))
                if piece.count >= writer.pieceSize {
                    pieces.append(try add(piece, runs: runs))
                    piece.removeAll(keepingCapacity: true)
                    runs.removeAll()
                }
                if read < wanted { break }
            }
            if !piece.isEmpty { pieces.append(try add(piece, runs: runs)) }
            let stored = pieces.reduce(0) { $0 + $1.blocks.reduce(0) { $0 + $1[1] } }
            bytes += offset
            storedBlocks += stored
            return BackupManifest.File(
                path: entry.path, size: offset, mode: entry.mode, modified: entry.modified, digests: BackupManifest.encodeDigests(digests),
                base: prior == nil || stored == digests.count ? nil : writer.prior?.id, pieces: pieces)
        }

        /// Compresses `raw` into the open bundle.
        private mutating func add(_ raw: [UInt8], runs: [[Int]]) throws(FerryError) -> BackupManifest.Piece {
            let compressed = try writer.compression.compress(raw)
            if bundleNumber == nil { bundleNumber = bundleNumbers.next() }
            let piece = BackupManifest.Piece(bundle: bundleNumber!, offset: bundle.count, length: compressed.count, blocks: runs)
            bundle.append(contentsOf: compressed)
            bundleRaw += raw.count
            storedBytes += Int64(compressed.count)
            if bundle.count >= writer.bundleSize || bundleRaw >= writer.bundleRawSize { try finishBundle() }
            return piece
        }

        mutating func finishBundle() throws(FerryError) {
            guard let number = bundleNumber else { return }
            try writer.repository.write(BackupManifest.bundlePath(writer.id, number), bundle, replacing: true)
            bundles.append(.init(number: number, bytes: bundle.count, sha256: WALArchive.hex(SHA256.hash(data: bundle))))
            bundle.removeAll(keepingCapacity: true)
            bundleRaw = 0
            bundleNumber = nil
        }

        static func readFully(_ descriptor: Int32, into buffer: inout [UInt8], count: Int, at offset: Int64, path: String) throws(FerryError) -> Int {
            var done = 0
            while done < count {
                let read = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
                if read < 0 {
                    if errno == EINTR { continue }
                    throw LocalRepository.failure("read", path, errno)
                }
                if read == 0 { break }
                done += read
            }
            return done
        }
    }
}

/// The next bundle's number, shared by a backup's workers.
private final class BundleNumbers: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
