package import FerryCore
import Foundation

/// A position in PostgreSQL's WAL (`16/B374D848`) and the segment files that hold it.
package struct WALPosition: Sendable, Comparable, CustomStringConvertible {
    package var value: UInt64

    package init(_ value: UInt64) { self.value = value }

    /// `16/B374D848`; nil for anything else.
    package init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, (1...8).contains(parts[0].count), (1...8).contains(parts[1].count), let high = UInt64(parts[0], radix: 16),
            let low = UInt64(parts[1], radix: 16)
        else { return nil }
        value = high << 32 | low
    }

    package var description: String {
        String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    /// The name of the segment holding `position` on `timeline` (`000000010000000000000002`).
    package static func segmentName(timeline: Int, position: UInt64, segmentSize: Int) -> String {
        segmentName(timeline: timeline, segment: position / UInt64(segmentSize), segmentSize: segmentSize)
    }

    static func segmentName(timeline: Int, segment: UInt64, segmentSize: Int) -> String {
        let perID = 0x1_0000_0000 / UInt64(segmentSize)
        return hex8(UInt64(timeline)) + hex8(segment / perID) + hex8(segment % perID)
    }

    /// Every segment name from `first` to `last` (same timeline), in order.
    package static func segments(from first: String, to last: String, segmentSize: Int) throws(FerryError) -> [String] {
        guard let (timeline, start) = parse(first, segmentSize: segmentSize), let (lastTimeline, end) = parse(last, segmentSize: segmentSize),
            timeline == lastTimeline, start <= end, end - start < 1_000_000
        else {
            throw FerryError(.invalidInput, "\(first) to \(last) is not a range of WAL segments", fix: BackupCompression.damagedFix)
        }
        return (start...end).map { segmentName(timeline: timeline, segment: $0, segmentSize: segmentSize) }
    }

    /// A segment name's timeline and segment number.
    static func parse(_ name: String, segmentSize: Int) -> (Int, UInt64)? {
        guard name.utf8.count == 24, segmentSize > 0, let timeline = UInt64(name.prefix(8), radix: 16),
            let high = UInt64(name.dropFirst(8).prefix(8), radix: 16), let low = UInt64(name.suffix(8), radix: 16)
        else { return nil }
        return (Int(timeline), high * (0x1_0000_0000 / UInt64(segmentSize)) + low)
    }

    private static func hex8(_ value: UInt64) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - text.count)) + text
    }
}

/// What Ferry reads from a backup label (`pg_backup_stop`'s `labelfile`).
package struct BackupLabel: Sendable {
    package var startLSN: String
    package var startWAL: String
    package var timeline: Int

    /// `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)` and `START TIMELINE: 1`.
    package init(_ text: String) throws(FerryError) {
        var start: (String, String)?
        var timeline: Int?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("START WAL LOCATION: ") {
                let words = line.dropFirst(20).split(separator: " ")
                if words.count == 3, WALPosition(words[0]) != nil, words[2].hasSuffix(")") {
                    start = (String(words[0]), String(words[2].dropLast()))
                }
            } else if line.hasPrefix("START TIMELINE: ") {
                timeline = Int(line.dropFirst(16).trimmingCharacters(in: .whitespaces))
            }
        }
        guard let start, let timeline, timeline > 0, start.1.utf8.count == 24 else {
            throw FerryError(
                .server, "the server's backup label does not name its start WAL and timeline", fix: "check that the server is PostgreSQL 15 or newer")
        }
        self.startLSN = start.0
        self.startWAL = start.1
        self.timeline = timeline
    }
}
