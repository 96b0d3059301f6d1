import FerryCore
import Foundation
import Testing

@testable import FerryBackup

/// After a promotion, the old timeline's complete segments the archive lacks are pushed from pg_wal; the segment
/// holding the switch point and the recycled ones past it never are.
@Suite struct WALCatchUpTests {
    @Test func theOldTimelinesCompleteSegmentsAreArchivedAndNothingPastTheSwitchPoint() throws {
        let root = NSTemporaryDirectory() + "ferry-catch-up-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = root + "/data"
        try FileManager.default.createDirectory(atPath: data + "/global", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: data + "/pg_wal", withIntermediateDirectories: true)
        var system: UInt64 = 0x7300_1234_5678_9ABC
        try Data(bytes: &system, count: 8).write(to: URL(fileURLWithPath: data + "/global/pg_control"))
        let size = 1 << 20
        func segment(_ name: String, _ fill: UInt8) throws {
            try Data(repeating: fill, count: size).write(to: URL(fileURLWithPath: data + "/pg_wal/" + name))
        }
        // Timeline 1 up to segment 4 (4 is recycled: past the switch point at 0/350000, in segment 3).
        for number in 1...4 { try segment("00000001000000000000000\(number)", UInt8(number)) }
        try segment("000000020000000000000003", 0x23)
        try Data("1\t0/350000\tno recovery target specified\n".utf8).write(to: URL(fileURLWithPath: data + "/pg_wal/00000002.history"))
        let archive = WALArchive(repository: LocalRepository(root: root + "/repository"))
        _ = try archive.push(name: "000000010000000000000001", content: Array(repeating: 1, count: size), system: system)

        let outcome = try WALCatchUp.run(dataDirectory: data, timeline: 2, archive: archive)
        #expect(outcome.pushed == ["000000010000000000000002"])
        #expect(outcome.alreadyArchived == 1)
        #expect(try archive.fetch(name: "000000010000000000000002", system: system) == Array(repeating: 2, count: size))
        for name in ["000000010000000000000003", "000000010000000000000004", "000000020000000000000003"] {
            #expect(try !archive.contains(name: name, system: system), "\(name) is not the catch-up's to archive")
        }
        // Run again: nothing left to do.
        #expect(try WALCatchUp.run(dataDirectory: data, timeline: 2, archive: archive).pushed.isEmpty)
        // Timeline 1 (never promoted): nothing to do.
        #expect(try WALCatchUp.run(dataDirectory: data, timeline: 1, archive: archive) == .init())
    }
}
