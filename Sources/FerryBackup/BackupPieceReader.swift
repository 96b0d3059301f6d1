package import FerryCore

/// A piece read back from its bundle: decompressed and every block checked against the manifest's digest, so damage
/// is named (backup, bundle, file, blocks) before any byte of it reaches a data directory.
package enum BackupPieceReader {
    /// The piece's blocks, one after the other, and their numbers. `digests` are the file's (decoded once per file
    /// by the caller); with `checkBlocks`, each block is checked against its digest (`verify` does; a restore checks the
    /// whole bundle's SHA-256 instead, which costs a twentieth).
    package static func blocks(
        of piece: BackupManifest.Piece, file: BackupManifest.File, digests: [UInt64], in bundle: [UInt8], backup: BackupManifest,
        checkBlocks: Bool = true
    ) throws(FerryError) -> (bytes: [UInt8], numbers: [Int]) {
        let what = "\(file.path) (blocks \(describe(piece.blocks))) in \(BackupManifest.bundlePath(backup.id, piece.bundle))"
        let blockSize = BlockDigest.blockSize
        // Range-checked before anything is expanded or allocated: a damaged manifest names blocks the file has.
        guard piece.offset >= 0, piece.length >= 0, piece.offset <= bundle.count, piece.length <= bundle.count - piece.offset, !piece.blocks.isEmpty,
            piece.blocks.allSatisfy({ $0.count == 2 && $0[0] >= 0 && $0[1] > 0 && $0[0] < digests.count && $0[1] <= digests.count - $0[0] }),
            piece.blocks.reduce(0, { $0 + $1[1] }) <= digests.count,
            file.size > Int64(digests.count - 1) * Int64(blockSize), file.size <= Int64(digests.count) * Int64(blockSize)
        else {
            throw FerryError(.invalidInput, "\(what) is outside its bundle or names blocks the file does not have", fix: BackupCompression.damagedFix)
        }
        let numbers = piece.blockNumbers
        // Every block is whole but the file's last, which holds what is left of its size.
        var size = 0
        for number in numbers {
            size += number == digests.count - 1 ? Int(file.size) - number * blockSize : blockSize
        }
        guard size > 0, size <= numbers.count * blockSize else {
            throw FerryError(.invalidInput, "\(what) does not fit the file's size", fix: BackupCompression.damagedFix)
        }
        let bytes = try backup.compression.decompress(bundle[piece.offset..<(piece.offset + piece.length)], size: size, what: what)
        guard checkBlocks else { return (bytes, numbers) }
        let mismatch = bytes.withUnsafeBytes { raw -> Int? in
            for (index, number) in numbers.enumerated() {
                let start = index * blockSize
                let block = UnsafeRawBufferPointer(rebasing: raw[start..<min(raw.count, start + blockSize)])
                if BlockDigest.of(block) != digests[number] { return number }
            }
            return nil
        }
        if let number = mismatch {
            throw FerryError(
                .invalidInput, "\(file.path) block \(number) in \(BackupManifest.bundlePath(backup.id, piece.bundle)) does not match its checksum",
                fix: BackupCompression.damagedFix)
        }
        return (bytes, numbers)
    }

    static func describe(_ runs: [[Int]]) -> String {
        let shown = runs.prefix(3).map { $0.count == 2 ? ($0[1] == 1 ? "\($0[0])" : "\($0[0])–\($0[0] + $0[1] - 1)") : "?" }
        return shown.joined(separator: ", ") + (runs.count > 3 ? ", …" : "")
    }
}
