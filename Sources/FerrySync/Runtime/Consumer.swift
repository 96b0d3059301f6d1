import CoreMetrics
import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging
import NIOCore

/// A table sync consumer: a ``StreamConsumer`` on the pipeline's stream with the mirror as its target.
struct Consumer {
    private var consumer: StreamConsumer<TableSyncApplier>

    /// `slot` is the consumer's index in its process: its row in `ferry_applied`.
    init(context: PipelineContext, name: String, slot: Int, logger: Logger) {
        let pipeline = context.pipeline
        var settings = StreamConsumerSettings(
            group: QueueKeys.group, consumer: name, database: nil,
            entriesPerRead: max(1, pipeline.applyBatchRows / max(1, pipeline.rowsPerEntry)), applyBatchRows: pipeline.applyBatchRows,
            block: pipeline.maxWait, claimIdle: pipeline.claimIdle, maxDeliveries: pipeline.maxDeliveries, attemptsKey: context.keys.attempts,
            createGroups: true, makeStream: true)
        settings.applyTimeout = pipeline.applyTimeout
        let stream = context.keys.stream
        consumer = StreamConsumer(
            applier: TableSyncApplier(context: context, slot: slot, logger: logger), settings: settings, redis: context.redis, logger: logger,
            streams: { [stream] })
    }

    var applied: Int { consumer.applied }

    /// Consumes until the task is cancelled or shut down gracefully; `untilDrained` returns once nothing is left
    /// to read, pending or claimable (`ferry sync --once`).
    mutating func run(untilDrained: (@Sendable () -> Bool)? = nil) async throws {
        try await consumer.run(untilDrained: untilDrained)
    }

    /// Closes the consumer's PostgreSQL connection.
    func close() async { await consumer.close() }
}

/// Applies table-sync queue entries to the mirror (see ``BatchApplier``).
struct TableSyncApplier: StreamApplying {
    let context: PipelineContext
    private var batches: BatchApplier
    /// When the last batch committed (wall clock, µs): enqueue→commit ends there, not after the XACK that follows.
    private var committedAt: Int64?

    init(context: PipelineContext, slot: Int, logger: Logger) {
        self.context = context
        batches = BatchApplier(context: context, slot: "consumer-\(slot)")
    }

    var name: String { "pipelines \(context.pipeline.name)" }
    var logger: Logger { context.logger }

    func decode(_ raw: RedisStreamEntry, stream: String) throws -> QueueEntry { try QueueEntry(raw) }

    func rowCount(of entry: QueueEntry) -> Int { entry.rows.rowCount }

    func canShareTransaction(_ first: QueueEntry, _ second: QueueEntry) -> Bool { first.schema == second.schema }

    private static func rows(of entries: [Consumed<QueueEntry>]) -> CopyTextRows {
        var rows = CopyTextRows(capacity: entries.reduce(0) { $0 + $1.entry.rows.byteCount })
        for item in entries { rows.append(item.entry.rows) }
        return rows
    }

    mutating func apply(_ entries: [Consumed<QueueEntry>], stream: String) async throws {
        committedAt = nil
        let layout: MirrorLayout
        let statements: MirrorStatements
        do {
            (layout, statements) = try await batches.layout(for: entries[0].entry.schema)
        } catch let incompatible as IncompatibleMirror {
            try await readAgain(entries, because: incompatible)
            committedAt = Self.wallMicroseconds()
            return
        }
        let position = entries.last { $0.entry.position != nil }?.entry.position
        let maxSeq = entries.map { Self.lastSequence($0.entry.rows) }.max() ?? 0
        try await batches.apply(Self.rows(of: entries), layout: layout, statements: statements, maxSeq: maxSeq, position: position)
        committedAt = Self.wallMicroseconds()
        if context.errorToClear.take() {
            // Applying again: the pipeline recovered from the error recorded while it retried.
            await context.control.clearRetriedError(session: batches.session, logger: logger)
        }
    }

    /// Entries the mirror cannot take. When the source no longer has their schema (its column changed again, or
    /// back), the rows they carried are stale: they are read again from the source under its current schema and
    /// applied, and the entries count as applied; this is recorded in `ferry_pipeline_events`. When the source still
    /// has their schema, the pipeline stops with the error naming the column and the fix.
    private mutating func readAgain(_ entries: [Consumed<QueueEntry>], because incompatible: IncompatibleMirror) async throws {
        let fingerprint = entries[0].entry.schema
        let ids = entries.map(\.id)
        let current = try await context.source.describe()
        guard current.fingerprint != fingerprint else { throw waiting(incompatible.error, at: ids[0]) }
        let schema = try await batches.registeredSchema(fingerprint)
        let keys = Self.keys(of: entries, layout: try MirrorLayout(pipeline: context.pipeline, schema: schema))
        let rows: Int
        do {
            rows = try await batches.readAgain(keys: keys, schema: current)
        } catch let other as IncompatibleMirror {
            throw waiting(other.error, at: ids[0])
        }
        let detail =
            "read under schema \(fingerprint), which the mirror cannot take (\(incompatible.column)) and the source no longer has; \(keys.count) keys read again under schema \(current.fingerprint)"
        logger.notice(
            "queue entries of an outdated schema the mirror cannot take; their rows were read again from the source",
            metadata: [
                "ferry.pipeline": "\(context.pipeline.name)", "ferry.entries": "\(ids.joined(separator: ","))",
                "ferry.column": "\(incompatible.column)",
                "ferry.keys": "\(keys.count)", "ferry.rows": "\(rows)",
            ])
        try await context.control.recordEvent("read_again", entries: ids, rows: rows, detail: detail, session: batches.session, logger: logger)
    }

    /// The mirror's error, saying which entry waits and how an operator can take it out of the way instead.
    private func waiting(_ error: FerryError, at id: String) -> FerryError {
        var error = error
        error.message += "; queue entries from \(id) wait for it"
        error.fix =
            (error.fix.map { $0 + "; " } ?? "")
            + "or, to go on without them, `ferry sync \(context.pipeline.name) --skip-entry \(id)` (recorded; their keys are left for `ferry reconcile --repair`)"
        return error
    }

    /// The distinct keys of the rows in `entries` (their fields after the sequence number, in `layout`).
    static func keys(of entries: [Consumed<QueueEntry>], layout: MirrorLayout) -> [[String]] {
        var seen: Set<[String]> = []
        var keys: [[String]] = []
        for item in entries {
            for index in 0..<item.entry.rows.rowCount {
                let fields = item.entry.rows.fields(ofRow: index)
                let key = layout.keyIndexes.map { $0 + 1 < fields.count ? fields[$0 + 1] ?? "" : "" }
                if seen.insert(key).inserted { keys.append(key) }
            }
        }
        return keys
    }

    static func wallMicroseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    mutating func isolate(_ entries: [Consumed<QueueEntry>], stream: String, heartbeat: Heartbeat) async throws -> (applied: Int, rejected: Int) {
        let (layout, statements) = try await batches.layout(for: entries[0].entry.schema)
        let rows = Self.rows(of: entries)
        let batches = self.batches
        let logger = self.logger
        let pipeline = context.pipeline.name
        return try await Bisection.isolate(
            0..<rows.rowCount,
            apply: { range in
                let part = rows.rows(range)
                try await batches.apply(
                    part, layout: layout, statements: statements, maxSeq: Self.lastSequence(part), position: nil, tryPlainInsert: false)
            },
            reject: { index, error in
                let row = rows.rows(index..<(index + 1))
                let sequence = Self.lastSequence(row)
                let entryID = entries.first { Self.sequenceRange($0.entry.rows).contains(sequence) }?.id
                let reason = PostgresDiagnosis.reason(error)
                logger.error(
                    "row moved to the dead letters",
                    metadata: ["ferry.pipeline": "\(pipeline)", "ferry.entry": "\(entryID ?? "?")", "ferry.reason": "\(reason)"])
                try await batches.deadLetter(
                    row, layout: layout, statements: statements, reason: reason, sqlState: PostgresDiagnosis.sqlState(of: error), streamID: entryID,
                    deliveries: nil)
            },
            beat: { try await heartbeat.beat() })
    }

    mutating func deadLetter(id: String, stream: String, entry: QueueEntry?, reason: String, deliveries: Int?) async throws {
        guard let entry else {
            _ = try await context.redis.send(
                XADD(context.keys.deadLetters, fields: [(name: "entry", value: id), (name: "reason", value: reason)], trim: .maxLength(100_000)))
            return
        }
        let (layout, statements) = try await batches.layout(for: entry.schema)
        for index in 0..<entry.rows.rowCount {
            try await batches.deadLetter(
                entry.rows.rows(index..<(index + 1)), layout: layout, statements: statements, reason: reason, sqlState: nil, streamID: id,
                deliveries: deliveries)
        }
    }

    mutating func reset() { batches.reset() }

    func recordError(_ message: String) async { await batches.recordError(message) }

    func countRetry() {
        context.metrics.retries.increment()
        context.metrics.errors.increment()
    }

    func countDeadLetters(_ rows: Int) {
        context.metrics.deadLetters.increment(by: Int64(rows))
        context.progress.recordDeadLettered(rows)
    }

    mutating func finished(_ entries: [Consumed<QueueEntry>], stream: String, rows count: Int, elapsed: Duration) {
        context.metrics.rowsApplied.increment(by: Int64(count))
        context.metrics.batchLatency.recordNanoseconds(Int64(elapsed.seconds * 1e9))
        context.metrics.lastApplied.record(Date().timeIntervalSince1970)
        let now = committedAt ?? Self.wallMicroseconds()
        committedAt = nil
        var latencies: [(micros: Int64, rows: Int)] = []
        latencies.reserveCapacity(entries.count)
        for item in entries {
            guard let enqueued = item.entry.enqueuedAt else { continue }
            let micros = max(0, now - enqueued)
            context.metrics.enqueueToCommit.recordNanoseconds(micros * 1000)
            latencies.append((micros, item.entry.rows.rowCount))
        }
        if let observe = context.commitLatency, !latencies.isEmpty { observe(latencies) }
        context.reportProgress(phase: .incremental, appliedDelta: count)
    }

    var interrupter: @Sendable () -> Void { { [session = batches.session] in session.interrupt() } }

    func close() async { await batches.session.close() }

    /// The sequence number (first field, negated for a deleted source row) of the last row.
    static func lastSequence(_ rows: CopyTextRows) -> Int64 {
        guard rows.rowCount > 0, let field = rows.rawField(0, ofRow: rows.rowCount - 1) else { return 0 }
        return sequence(field)
    }

    static func sequenceRange(_ rows: CopyTextRows) -> ClosedRange<Int64> {
        guard rows.rowCount > 0, let first = rows.rawField(0, ofRow: 0) else { return 0...0 }
        let low = sequence(first)
        return low...max(low, lastSequence(rows))
    }

    /// A row's sequence number from its first field: a deleted source row's is written negated.
    private static func sequence(_ field: ByteBuffer) -> Int64 {
        guard let value = Int64(String(buffer: field)), value != .min else { return 0 }
        return abs(value)
    }
}
