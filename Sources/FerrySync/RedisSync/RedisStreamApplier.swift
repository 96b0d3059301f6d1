import CoreMetrics
import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// One Redis stream entry ready for PostgreSQL: its fields as a JSON object and the time from its id.
struct StreamRow: Sendable {
    /// `{"field": "value", …}`; a value that is not UTF-8 text (or holds NUL) is written as `{"base64": "…"}`.
    let json: ByteBuffer
    /// Milliseconds since 1970 (the first part of the entry id).
    let milliseconds: Int64
}

/// Applies entries of the streams of one Redis database to `redis_streams`, or to a mapped table.
///
/// One statement per batch, the entries bound as arrays: an `INSERT … SELECT … ON CONFLICT` on (redis_db,
/// stream_key, message_id) that skips entries already stored or, with `conflict: overwrite`, replaces them when
/// their data differs.
struct RedisStreamApplier: StreamApplying {
    let database: Int
    let tables: RedisSyncTables
    let session: PostgresSession
    let metrics: RedisSyncMetrics
    let logger: Logger
    let status: RedisSyncStatus

    var name: String { "redis sync (db \(database))" }
    var config: RedisSyncConfiguration { tables.config }

    func decode(_ raw: RedisStreamEntry, stream: String) throws -> StreamRow {
        guard let milliseconds = Self.milliseconds(of: raw.id) else {
            throw FerryError(
                .invalidInput, "entry id \(raw.id) of stream \(stream) is not a stream id", fix: "nothing to do; it is kept in the dead letters")
        }
        var json = ByteBuffer()
        json.reserveCapacity(256)
        json.writeInteger(UInt8(ascii: "{"))
        let fields = raw.fields ?? []
        var first = true
        JSONBytes.forEachInJSONBOrder(
            count: fields.count, name: { fields[$0].name },
            body: { index in
                JSONBytes.appendKey(fields[index].name, first: first, to: &json)
                JSONBytes.appendValue(fields[index].value, to: &json)
                first = false
            })
        json.writeInteger(UInt8(ascii: "}"))
        return StreamRow(json: json, milliseconds: milliseconds)
    }

    /// The milliseconds part of a stream id (`1700000000000-3`), read from its bytes (once per entry: no split).
    static func milliseconds(of id: String) -> Int64? {
        var value: Int64 = 0
        var digits = 0
        for byte in id.utf8 {
            if byte == UInt8(ascii: "-") { break }
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10, digits < 18 else { return nil }
            value = value * 10 + Int64(digit)
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    func rowCount(of entry: StreamRow) -> Int { 1 }

    func canShareTransaction(_ first: StreamRow, _ second: StreamRow) -> Bool { true }

    /// The mapping for `stream`, if any (the first whose pattern matches).
    func mapping(for stream: String) -> StreamMapping? {
        config.streams.mappings.first { GlobPattern($0.stream).matches(stream) }
    }

    /// A batch's entries as a table `staged` (redis_db, stream_key, message_id, data jsonb, ts timestamptz): the
    /// database and stream are `$1` and `$2`, the entries three bound `text[]` arrays.
    private static let staged = """
        (SELECT $1::int AS redis_db, $2::text AS stream_key, message_id, data::jsonb AS data, ts::timestamptz AS ts
         FROM unnest($3::text[], $4::text[], $5::text[]) AS u(message_id, data, ts)) AS staged
        """

    /// The INSERT of a batch into the stream's target.
    func insertStatement(for stream: String) -> String {
        let overwrite = config.streams.conflict == .overwrite
        if let mapping = mapping(for: stream) {
            let table = tables.mappedTable(mapping)
            let columns = mapping.columns.map { SQLIdentifier.quote($0.column) }
            let values = mapping.columns.map { "(data->>\(SQLIdentifier.literal($0.field)))::\($0.type)" }
            var sql = """
                INSERT INTO \(table) AS t (redis_db, stream_key, message_id, \(columns.joined(separator: ", ")), "timestamp")
                SELECT redis_db, stream_key, message_id, \(values.joined(separator: ", ")), ts FROM \(Self.staged)
                ON CONFLICT (redis_db, stream_key, message_id) DO
                """
            if overwrite {
                let sets = columns.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
                let differs = columns.map { "t.\($0) IS DISTINCT FROM EXCLUDED.\($0)" }.joined(separator: " OR ")
                sql += " UPDATE SET \(sets), synced_at = now() WHERE \(differs)"
            } else {
                sql += " NOTHING"
            }
            return sql
        }
        var sql = """
            INSERT INTO \(tables.streams) AS t (redis_db, stream_key, message_id, data, "timestamp")
            SELECT redis_db, stream_key, message_id, data, ts FROM \(Self.staged)
            ON CONFLICT (redis_db, stream_key, message_id) DO
            """
        sql +=
            overwrite
            ? " UPDATE SET data = EXCLUDED.data, \"timestamp\" = EXCLUDED.\"timestamp\", synced_at = now() WHERE t.data IS DISTINCT FROM EXCLUDED.data"
            : " NOTHING"
        return sql
    }

    /// A plain INSERT into `redis_streams`: the common case, entries never stored before.
    var insertNewStatement: String {
        "INSERT INTO \(tables.streams) (redis_db, stream_key, message_id, data, \"timestamp\") SELECT * FROM \(Self.staged)"
    }

    /// The binds of ``staged``.
    private func binds(_ entries: ArraySlice<Consumed<StreamRow>>, stream: String) -> PostgresBindings {
        let bytes = entries.reduce(0) { $0 + $1.entry.json.readableBytes }
        var ids = PostgresTextArray(capacity: entries.count * 24)
        var data = PostgresTextArray(capacity: bytes + entries.count * 4)
        var times = PostgresTextArray(capacity: entries.count * 30)
        for item in entries {
            ids.append(item.id)
            data.append(item.entry.json)
            times.appendWritten { UTCTimestamp.write(milliseconds: item.entry.milliseconds, to: &$0) }
        }
        var binds = PostgresBindings(capacity: 5)
        binds.append(Int32(database))
        binds.append(stream)
        binds.append(ids)
        binds.append(data)
        binds.append(times)
        return binds
    }

    /// Entries of an unmapped stream are inserted plainly first; when one of them is already stored (a
    /// redelivery after a crash) that fails as a whole, nothing is written, and the batch takes the INSERT … ON
    /// CONFLICT. One statement either way: no transaction around it.
    private func applyRows(_ entries: ArraySlice<Consumed<StreamRow>>, stream: String) async throws {
        let binds = binds(entries, stream: stream)
        if mapping(for: stream) == nil {
            do {
                try await session.withConnection { connection in
                    try await connection.query(PostgresQuery(unsafeSQL: insertNewStatement, binds: binds), logger: logger)
                }
                return
            } catch  where PostgresDiagnosis.sqlState(of: error) == "23505" {}
        }
        let insert = insertStatement(for: stream)
        try await session.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: insert, binds: binds), logger: logger)
        }
    }

    var interrupter: @Sendable () -> Void { { [session] in session.interrupt() } }

    mutating func apply(_ entries: [Consumed<StreamRow>], stream: String) async throws {
        try await applyRows(entries[...], stream: stream)
    }

    mutating func isolate(_ entries: [Consumed<StreamRow>], stream: String, heartbeat: Heartbeat) async throws -> (applied: Int, rejected: Int) {
        let applier = self
        return try await Bisection.isolate(
            0..<entries.count,
            apply: { range in try await applier.applyRows(entries[range], stream: stream) },
            reject: { index, error in
                let reason = PostgresDiagnosis.reason(error)
                applier.logger.error(
                    "stream entry moved to the dead letters",
                    metadata: ["ferry.stream": "\(stream)", "ferry.entry": "\(entries[index].id)", "ferry.reason": "\(reason)"])
                try await applier.recordDeadLetter(
                    id: entries[index].id, stream: stream, json: entries[index].entry.json, reason: reason,
                    sqlState: PostgresDiagnosis.sqlState(of: error),
                    deliveries: nil)
            },
            beat: { try await heartbeat.beat() })
    }

    mutating func deadLetter(id: String, stream: String, entry: StreamRow?, reason: String, deliveries: Int?) async throws {
        try await recordDeadLetter(id: id, stream: stream, json: entry?.json, reason: reason, sqlState: nil, deliveries: deliveries)
    }

    /// The dead-letter row: `pipeline` is `redis:DB:STREAM`, `stream_id` the entry id, `row_data` its fields.
    private func recordDeadLetter(id: String, stream: String, json: ByteBuffer?, reason: String, sqlState: String?, deliveries: Int?) async throws {
        let queue = "redis:\(database):\(stream)"
        let data = json.map { String(buffer: $0) }
        try await session.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO \(unescaped: tables.deadLetters) (pipeline, stream_id, row_data, reason, sqlstate, deliveries)
                SELECT \(queue), \(id), \(data)::jsonb, \(reason), \(sqlState), \(deliveries.map(Int32.init))
                WHERE NOT EXISTS (SELECT 1 FROM \(unescaped: tables.deadLetters) WHERE pipeline = \(queue) AND stream_id = \(id))
                """,
                logger: logger)
        }
    }

    mutating func reset() {}

    func recordError(_ message: String) async { status.recordError(message) }

    mutating func finished(_ entries: [Consumed<StreamRow>], stream: String, rows: Int, elapsed: Duration) {
        metrics.entriesApplied.increment(by: Int64(rows))
        metrics.batchLatency.recordNanoseconds(Int64(elapsed.seconds * 1e9))
        status.recordApplied(rows)
    }

    func countRetry() { metrics.retries.increment() }

    func countDeadLetters(_ rows: Int) {
        metrics.deadLetters.increment(by: Int64(rows))
        status.recordDeadLettered(rows)
    }

    func close() async { await session.close() }
}

/// UTC timestamps in PostgreSQL's input format, from milliseconds since 1970 (stream entry ids), without Foundation.
enum UTCTimestamp {
    /// `2026-11-22 14:32:55.123+00`.
    static func format(milliseconds: Int64) -> String {
        var out = ByteBuffer()
        write(milliseconds: milliseconds, to: &out)
        return String(buffer: out)
    }

    /// Writes the timestamp's 26 bytes straight into `out` (once per stream entry).
    static func write(milliseconds: Int64, to out: inout ByteBuffer) {
        var seconds = milliseconds / 1000
        var millis = milliseconds % 1000
        if millis < 0 {
            millis += 1000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let civil = CivilDate.from(daysSince1970: Int(days))
        let (year, month, day) = (Int64(civil.year), Int64(civil.month), Int64(civil.day))
        func digits(_ value: Int64, _ width: Int) {
            guard value >= 0, value < 10_000 || width > 4 else {
                out.writeString(String(value))
                return
            }
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.writeInteger(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        out.reserveCapacity(minimumWritableBytes: 26)
        digits(year, 4)
        out.writeInteger(UInt8(ascii: "-"))
        digits(month, 2)
        out.writeInteger(UInt8(ascii: "-"))
        digits(day, 2)
        out.writeInteger(UInt8(ascii: " "))
        digits(secondOfDay / 3600, 2)
        out.writeInteger(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2)
        out.writeInteger(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        out.writeInteger(UInt8(ascii: "."))
        digits(millis, 3)
        out.writeString("+00")
    }
}
