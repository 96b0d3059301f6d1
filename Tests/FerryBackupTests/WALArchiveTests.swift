import FerryBackup
import FerryCore
import Foundation
import Synchronization
import Testing

/// The WAL archive's own rules, on a repository in a temporary directory: what is stored comes back exactly, an
/// archived name with other content is refused by name, damage is found, and no name reaches outside the repository.
@Suite("WAL archive")
struct WALArchiveTests {
    static func withRepository(_ body: (LocalRepository, String) throws -> Void) throws {
        let root = NSTemporaryDirectory() + "ferry-wal-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try body(LocalRepository(root: root), root)
    }

    static let segment = "000000010000000A000000FE"
    static let system: UInt64 = 7_311_234_567_890_123_456

    /// A segment-like payload: mostly zeros with some varied bytes, as real WAL compresses.
    static func content(seed: UInt8 = 1) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        for index in stride(from: 0, to: bytes.count, by: 97) { bytes[index] = UInt8(truncatingIfNeeded: index) &+ seed }
        return bytes
    }

    @Test(arguments: BackupCompression.allCases) func whatIsPushedIsFetchedExactly(compression: BackupCompression) throws {
        try Self.withRepository { repository, _ in
            let archive = WALArchive(repository: repository, compression: compression)
            let content = Self.content()
            let outcome = try archive.push(name: Self.segment, content: content, system: Self.system)
            guard case .stored(let stored) = outcome else {
                Issue.record("not stored: \(outcome)")
                return
            }
            if compression == .zstd { #expect(stored < content.count / 10, "zstd stores \(stored) of \(content.count) bytes") }
            #expect(try archive.fetch(name: Self.segment, system: Self.system) == content)
            #expect(try archive.fetch(name: Self.segment, system: Self.system + 1) == nil, "another cluster's WAL is apart")
            #expect(try archive.fetch(name: "000000010000000A000000FF", system: Self.system) == nil)
        }
    }

    @Test func theSameContentAgainSucceedsOtherContentIsRefusedByName() throws {
        try Self.withRepository { repository, _ in
            let archive = WALArchive(repository: repository)
            _ = try archive.push(name: Self.segment, content: Self.content(), system: Self.system)
            #expect(try archive.push(name: Self.segment, content: Self.content(), system: Self.system) == .alreadyArchived)
            let refused = #expect(throws: FerryError.self) {
                try archive.push(name: Self.segment, content: Self.content(seed: 2), system: Self.system)
            }
            #expect(refused?.code == .conflict)
            #expect(refused?.message.contains(Self.segment) == true && refused?.message.contains("other content") == true)
            #expect(try archive.fetch(name: Self.segment, system: Self.system) == Self.content(), "the archived file was left as it was")
        }
    }

    /// Pushes racing for one name with two contents: one content wins whole, every push of it succeeds, every push of
    /// the other is refused.
    @Test func racingPushesOfOneNameNeverMixOrReplace() throws {
        try Self.withRepository { repository, _ in
            let archive = WALArchive(repository: repository, compression: .lz4)
            let contents = [Self.content(seed: 1), Self.content(seed: 2)]
            let outcomes = Mutex<[(Int, Bool)]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { index in
                let which = index % 2
                let succeeded = (try? archive.push(name: Self.segment, content: contents[which], system: Self.system)) != nil
                outcomes.withLock { $0.append((which, succeeded)) }
            }
            let stored = try #require(try archive.fetch(name: Self.segment, system: Self.system))
            let winner = try #require(contents.firstIndex(of: stored), "the archived file is one of the two, whole")
            for (which, succeeded) in outcomes.withLock({ $0 }) { #expect(succeeded == (which == winner)) }
        }
    }

    @Test func onlyWALFileNamesNameAPath() throws {
        for name in [Self.segment, Self.segment + ".partial", "00000002.history", Self.segment + ".00000028.backup"] {
            let path = try WALArchive.path(of: name, system: 1)
            #expect(path.hasPrefix("wal/0000000000000001/") && path.hasSuffix("/" + name), "\(path)")
        }
        #expect(try WALArchive.path(of: Self.segment, system: 1) == "wal/0000000000000001/000000010000000A/" + Self.segment)
        for name in [
            "", "../../etc/passwd", "000000010000000A000000FG", "000000010000000a000000fe", Self.segment + "/x", "history", "0000002.history",
            Self.segment + ".backup", Self.segment + ".partial.partial",
        ] {
            let refused = #expect(throws: FerryError.self) { try WALArchive.path(of: name, system: 1) }
            #expect(refused?.code == .invalidInput, "\(name)")
        }
        try Self.withRepository { repository, _ in
            #expect(throws: FerryError.self) { try repository.write("../outside", [1]) }
            #expect(throws: FerryError.self) { try repository.read("/etc/passwd") }
        }
    }

    @Test(arguments: BackupCompression.allCases) func damagedFilesAreFoundNeverHandedOn(compression: BackupCompression) throws {
        try Self.withRepository { repository, root in
            let archive = WALArchive(repository: repository, compression: compression)
            _ = try archive.push(name: Self.segment, content: Self.content(), system: Self.system)
            let path = root + "/" + (try WALArchive.path(of: Self.segment, system: Self.system))
            let good = try #require(FileManager.default.contents(atPath: path))
            func expectDamage(_ bytes: [UInt8], _ why: String) throws {
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let error = #expect(throws: FerryError.self, "\(why)") { try archive.fetch(name: Self.segment, system: Self.system) }
                #expect(error?.message.contains(Self.segment) == true, "\(why): \(String(describing: error))")
            }
            var flipped = Array(good)
            flipped[flipped.count / 2] ^= 0xFF
            try expectDamage(flipped, "a byte of the compressed data changed")
            try expectDamage(Array(good.prefix(good.count - 10)), "cut short")
            try expectDamage(Array(good.prefix(20)), "only part of the header")
            var huge = Array(good)
            for index in 12..<20 { huge[index] = 0xFF }
            try expectDamage(huge, "a size no WAL file has (no allocation of it)")
            var digest = Array(good)
            digest[30] ^= 1
            try expectDamage(digest, "the stored SHA-256 changed")
            try expectDamage(Array("not an archived file at all".utf8), "no header")
        }
    }
}
