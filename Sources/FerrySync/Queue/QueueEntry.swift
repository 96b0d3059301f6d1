package import FerryCore
import FerryRedis
import Foundation
import NIOCore

/// One entry of a pipeline's stream, format version 1 (docs/QUEUE_FORMAT.md).
///
/// Fields: `v` (format version), `schema` (fingerprint of the source columns), `rows` (row count), `data` (the
/// rows in PostgreSQL COPY text format, each line starting with the row's sequence number), and for entries
/// that advance the producer's position, `pos` (JSON of the last row's watermark and key).
package struct QueueEntry: Sendable {
    package static let version = "1"

    package var schema: String
    package var rows: CopyTextRows
    package var position: SourcePosition?
    /// When the producer queued it (microseconds since 1970), for enqueue-to-commit latency.
    package var enqueuedAt: Int64?

    package init(schema: String, rows: CopyTextRows, position: SourcePosition?) {
        self.schema = schema
        self.rows = rows
        self.position = position
    }

    /// The XADD fields.
    func fields() -> [(name: String, value: ByteBuffer)] {
        var fields: [(name: String, value: ByteBuffer)] = [
            ("v", ByteBuffer(string: Self.version)),
            ("schema", ByteBuffer(string: schema)),
            ("rows", ByteBuffer(string: String(rows.rowCount))),
            ("data", rows.buffer),
        ]
        if let position, let json = try? JSONEncoder().encode(position) {
            fields.append(("pos", ByteBuffer(bytes: json)))
        }
        return fields
    }

    /// Reads an entry; `nil` fields (deleted while pending) are not an entry.
    init(_ entry: RedisStreamEntry) throws(FerryError) {
        guard let version = entry[field: "v"].map({ String(buffer: $0) }) else {
            throw FerryError(.invalidInput, "queue entry \(entry.id) has no format version (field v)", fix: "only Ferry should write to this stream")
        }
        guard version == Self.version else {
            throw FerryError(
                .unsupported, "queue entry \(entry.id) has format version \(version); this Ferry reads version \(Self.version)",
                fix: "run the Ferry version that wrote it, or drain the queue first")
        }
        guard let schema = entry[field: "schema"].map({ String(buffer: $0) }), let data = entry[field: "data"] else {
            throw FerryError(.invalidInput, "queue entry \(entry.id) lacks the schema or data field", fix: "only Ferry should write to this stream")
        }
        self.schema = schema
        self.rows = CopyTextRows(buffer: data)
        self.position = entry[field: "pos"].flatMap { try? JSONDecoder().decode(SourcePosition.self, from: Data(buffer: $0)) }
        self.enqueuedAt = entry[field: "t"].flatMap { Int64(String(buffer: $0)) }
    }
}

extension Data {
    init(buffer: ByteBuffer) {
        self.init(buffer.readableBytesView)
    }
}
