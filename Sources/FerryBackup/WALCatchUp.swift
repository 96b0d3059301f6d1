package import FerryCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// After a standby is promoted: archives the WAL of the timelines before it that the old primary may not have
/// archived yet (it died with segments waiting), from the new primary's own `pg_wal`.
///
/// A promoted server archives only its new timeline (and the old timeline's last segment as `.partial`); the
/// complete segments it received by streaming are marked done, never archived. For each timeline the new one's
/// history file names, every segment wholly before its switch point that `pg_wal` still holds and the archive lacks
/// is pushed. Segments past the switch point (recycled files that hold other data) are never pushed.
package enum WALCatchUp {
    package struct Outcome: Sendable, Equatable {
        package var pushed: [String] = []
        package var alreadyArchived = 0
    }

    /// `dataDirectory`'s current timeline's history, and the segments it makes archivable.
    package static func run(dataDirectory: String, timeline: Int, archive: WALArchive) throws(FerryError) -> Outcome {
        var outcome = Outcome()
        guard timeline > 1 else { return outcome }
        let wal = dataDirectory + "/pg_wal"
        let historyName = hex8(timeline) + ".history"
        guard let history = FileManager.default.contents(atPath: wal + "/" + historyName).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw FerryError(
                .server, "\(wal)/\(historyName) is missing after the promotion",
                fix: "check the server's log; the archive may lack the old timeline's last segments")
        }
        let system = try PostgresControlFile.systemIdentifier(dataDirectory: dataDirectory)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: wal)) ?? []).filter { $0.utf8.count == 24 }.sorted()
        guard let segmentSize = names.lazy.compactMap({ fileSize(wal + "/" + $0) }).first(where: { $0 > 0 && $0 & ($0 - 1) == 0 }) else {
            return outcome
        }
        for (parent, switchPoint) in parse(history) {
            let limit = switchPoint / UInt64(segmentSize)
            for name in names {
                guard let (segmentTimeline, segment) = WALPosition.parse(name, segmentSize: segmentSize), segmentTimeline == parent, segment < limit
                else { continue }
                if try archive.contains(name: name, system: system) {
                    outcome.alreadyArchived += 1
                    continue
                }
                // Removed by a checkpoint meanwhile: it was archived or is beyond reach either way.
                guard let content = FileManager.default.contents(atPath: wal + "/" + name), content.count == segmentSize else { continue }
                _ = try archive.push(name: name, content: Array(content), system: system)
                outcome.pushed.append(name)
            }
        }
        return outcome
    }

    /// `1\t0/5000060\tno recovery target specified` lines: each parent timeline and where the next one branched.
    static func parse(_ history: String) -> [(timeline: Int, switchPoint: UInt64)] {
        history.split(separator: "\n").compactMap { line in
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 2, !line.hasPrefix("#"), let timeline = Int(fields[0]), let position = WALPosition(fields[1]) else { return nil }
            return (timeline, position.value)
        }
    }

    private static func fileSize(_ path: String) -> Int? {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_size) : nil
    }

    private static func hex8(_ value: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - text.count)) + text
    }
}
