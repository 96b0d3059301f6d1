import CoreMetrics
import FerryCore
import FerryPostgres
import FerryRESP
import FerryRedis
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Reads a pipeline's source and appends its rows to the stream.
///
/// Each page is read with a keyset condition on (watermark, key) after the checkpoint; the page's entries and the
/// new checkpoint go to Redis in one MULTI/EXEC, then the checkpoint is also written to PostgreSQL. Each poll
/// also re-reads the lookback window below the checkpoint (late commits, clock skew) and queues only rows it has
/// not queued with the same content. Rows get increasing sequence numbers: a later read of a row is never older
/// than an earlier one, so the mirror keeps the highest.
///
/// Source columns added to a mirror that already has rows are backfilled: the whole source is read again by key,
/// a page at a time between polls (at most half a second of reading per poll, so the live tail stays fresh), under
/// the current schema; how far it got is in Redis's checkpoint (atomically with the pages queued) and in
/// `ferry_backfills` (for `ferry status`).
struct Producer {
    let context: PipelineContext
    private(set) var position: SourcePosition?
    private(set) var nullPosition: [String]?
    private(set) var nextSeq: Int64 = 1
    /// The sequence number in the last checkpoint this producer wrote to Redis.
    private var writtenSeq: Int64 = 0
    private(set) var produced = 0
    private(set) var initialLoadDone = false
    private var schema: SourceSchema
    private var layout: MirrorLayout
    /// Rows queued recently, so re-reading the window skips them.
    private var recent = WindowMemory()
    private var estimatedTotal: Int?
    private var lastTrim = ContinuousClock.now
    /// When the last sweep of the lookback window began (one every `lookback_every`: sweeping on every sub-second
    /// poll would read the same rows over and over at high change rates).
    private var sweepStarted: ContinuousClock.Instant?
    /// The lookback window's sweep in progress.
    private var sweep: WindowSweep?
    /// The source's change mark taken when the last complete sweep began: the next sweep reads only rows written
    /// since (nil: the whole window).
    private var windowMark: String?
    /// The checkpoint this producer started reading from, and a change mark taken before it read anything. The
    /// first sweep needs the whole window only up to that checkpoint (rows an earlier producer may have missed);
    /// above it, this producer's own reads saw every row version older than the mark.
    private var restart: (position: SourcePosition?, mark: String)?
    /// Tail reads since the last complete sweep began (see ``TailRead``): a sweep leaves out the row versions they
    /// saw, so it returns only versions no tail read can have seen.
    private var tailReads: [TailRead] = []
    /// At most this many tail reads are kept (the oldest go first; any subset is correct, only less selective).
    static let tailReadLimit = 4_096
    /// The backfill in progress, if any.
    private var backfill: ControlTables.Backfill?
    /// What Redis's checkpoint says of the backfill (id and last key queued), as last loaded.
    private var queuedBackfill: QueuedBackfill?
    /// Redis had lost the queue when the checkpoint was last loaded (resumed from PostgreSQL's applied position).
    private var queueLost = false
    /// Reading time per poll for a backfill.
    static let backfillSlice: Duration = .milliseconds(500)

    struct QueuedBackfill: Codable, Equatable {
        var id: Int64
        var after: [String]?
    }

    struct WindowSweep {
        /// Taken as this sweep began; the next sweep reads rows written since.
        var mark: String?
        /// The previous sweep's mark.
        var since: String?
        /// Ascending watermarks cutting the window into slices: the first is `upper` minus the lookback, the last
        /// is `upper`'s watermark.
        var bounds: [String]
        /// The checkpoint when the sweep began: the window's upper end.
        var upper: SourcePosition
        /// For the first sweep after a start (`since` nil): where that start read from and a mark taken before it.
        var restart: (position: SourcePosition?, mark: String)?
        /// The next slice to read.
        var next = 0
    }

    var pipeline: PipelineConfiguration { context.pipeline }
    var logger: Logger { context.logger }

    init(context: PipelineContext, schema: SourceSchema) throws {
        self.context = context
        self.schema = schema
        self.layout = try MirrorLayout(pipeline: context.pipeline, schema: schema)
    }

    /// Loads the checkpoint (Redis first, PostgreSQL when Redis lost it) and registers the schema.
    mutating func prepare() async throws {
        let keys = context.keys
        let stored = try await loadCheckpoint()
        initialLoadDone = stored?.initialLoadDone ?? false
        // Columns the source gained while no producer ran (the schema registered last lacks them).
        let added = stored?.sourceSchema.map { Self.added(to: $0, in: schema) } ?? []
        try await resumeBackfill(added: added, appliedSeq: stored?.appliedSeq ?? 0)
        try await registerSchema()
        _ = try await context.redis.send(XGROUPCREATE(keys.stream, group: QueueKeys.group, id: "0", makeStream: true))

        if pipeline.source.nullWatermark == .refuse {
            let count = try await context.source.countNullWatermarks()
            if count > 0 {
                throw FerryError(
                    .invalidInput,
                    "pipelines \(pipeline.name): \(count) source rows have a NULL \(pipeline.source.watermark), which this pipeline refuses (source.null_watermark: refuse)",
                    fix: "give those rows a watermark, or set source.null_watermark: load to load them by key"
                )
            }
        }
        if !initialLoadDone { estimatedTotal = try? await context.source.estimatedRowCount() }
    }

    /// Reads the checkpoint: Redis's, or PostgreSQL's applied position when Redis has none (it lost its data).
    @discardableResult
    private mutating func loadCheckpoint() async throws -> ControlTables.State? {
        let keys = context.keys
        windowMark = nil
        sweep = nil
        restart = nil
        tailReads = []
        let stored = try await context.target.withTransaction { connection in
            try await MirrorDDL.lock(connection, logger)
            try await context.control.ensure(connection, logger: logger)
            return try await context.control.load(connection, logger: logger)
        }
        let checkpoint = try await context.redis.send(HGETALL(keys.checkpoint))
        var fields: [String: String] = [:]
        for (field, value) in checkpoint { fields[String(buffer: field)] = String(buffer: value) }
        let decoder = JSONDecoder()
        var redisSeq: Int64 = 0
        queueLost = false
        queuedBackfill = fields["backfill"].flatMap { try? decoder.decode(QueuedBackfill.self, from: Data($0.utf8)) }
        if !fields.isEmpty {
            position = fields["position"].flatMap { try? decoder.decode(SourcePosition.self, from: Data($0.utf8)) }
            nullPosition = fields["null_position"].flatMap { try? decoder.decode([String].self, from: Data($0.utf8)) }
            redisSeq = fields["seq"].flatMap(Int64.init) ?? 0
        } else if let stored, stored.producedPosition != nil || stored.producedSeq > 0 {
            // Redis lost the queue (and the checkpoint with it): start again from what PostgreSQL has applied.
            // Rows between that and the old checkpoint are read again; the mirror ignores versions it has.
            position = stored.appliedPosition
            nullPosition = nil
            queueLost = true
            logger.warning(
                "Redis has no checkpoint for this pipeline but PostgreSQL has: Redis lost its data; resuming from the last applied position",
                metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.position": "\(stored.appliedPosition?.watermark ?? "start")"]
            )
        }
        let wallMicroseconds = Int64(Date().timeIntervalSince1970 * 1_000_000)
        nextSeq = max(nextSeq, redisSeq + 1, (stored?.producedSeq ?? 0) + 1, (stored?.appliedSeq ?? 0) + 1, wallMicroseconds)
        writtenSeq = redisSeq
        // Before anything is read from this position (see `restart`).
        if let mark = try await context.source.changeMark() { restart = (position, mark) }
        return stored
    }

    /// Whether Redis still has the checkpoint this producer wrote last; if it went back (a restart that lost its
    /// last writes, a failover to a lagging replica), the position is reloaded so the lost rows are read again.
    private mutating func verifyCheckpoint() async throws {
        let stored = try await context.redis.send(HGET(context.keys.checkpoint, "seq")).flatMap { Int64(String(buffer: $0)) } ?? 0
        guard stored < writtenSeq else { return }
        logger.warning(
            "Redis lost recent queue writes (its checkpoint went back); reading the source again from the checkpoint it has",
            metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.written_seq": "\(writtenSeq)", "ferry.redis_seq": "\(stored)"])
        let state = try await loadCheckpoint()
        try await resumeBackfill(added: [], appliedSeq: state?.appliedSeq ?? 0)
        try await registerSchema()
        _ = try await context.redis.send(XGROUPCREATE(context.keys.stream, group: QueueKeys.group, id: "0", makeStream: true))
    }

    private func registerSchema() async throws {
        let json = ControlTables.json(schema) ?? "{}"
        _ = try await context.redis.send(HSET(context.keys.schemas, [(field: schema.fingerprint, value: json)]))
        try await context.target.withConnection { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: "UPDATE \(context.control.pipelines) SET source_schema = $1::jsonb, updated_at = now() WHERE pipeline = $2",
                    binds: context.control.binds(json, pipeline.name)),
                logger: logger)
        }
    }

    /// Notices new (or changed) source columns between polls.
    mutating func refreshSchema() async throws {
        try await adopt(try await context.source.describe())
    }

    /// Makes `current` the schema of the entries queued from now on.
    private mutating func adopt(_ current: SourceSchema) async throws {
        guard current != schema else { return }
        let added = Self.added(to: schema, in: current)
        logger.notice(
            "source columns changed; new entries use the new schema",
            metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.added": "\(added.joined(separator: ","))"])
        layout = try MirrorLayout(pipeline: pipeline, schema: current)
        // Rows the tail read just before this poll noticed the change may lack the new columns: the next sweep reads
        // every version written since it began again, and queues those whose row now differs.
        tailReads = []
        schema = current
        // The backfill is recorded before the new schema is: a producer killed between the two still sees the
        // columns as new when it starts again.
        if !added.isEmpty { try await startBackfill(columns: added) }
        try await registerSchema()
    }

    /// One poll: the tail after the checkpoint, NULL-watermark rows, then the lookback window's next slices
    /// (with `wholeWindow`, the rest of its sweep). Returns the rows queued.
    ///
    /// Every page is read under the schema its entries name: a read that finds the source's columns changed returns
    /// nothing, and the poll adopts the new schema and goes on from where it was (see ``TableSource``).
    mutating func poll(wholeWindow: Bool = false) async throws -> Int {
        var queued = 0
        try await verifyCheckpoint()
        try await refreshSchema()
        while true {
            do {
                try await pollOnce(wholeWindow: wholeWindow, queued: &queued)
                return queued
            } catch let changed as SourceSchemaChanged {
                try await adopt(changed.current)
            }
        }
    }

    private mutating func pollOnce(wholeWindow: Bool, queued: inout Int) async throws {
        // The tail: everything after the checkpoint, page by page.
        var firstPage = true
        while true {
            try Task.checkCancellation()
            var rows = CopyTextRows()
            let start = position
            let mark = try await context.source.readChanges(after: position, limit: pipeline.batchSize, schema: schema, into: &rows)
            if rows.isEmpty { break }
            if firstPage, let mark, let start, start.watermark != nil { recordTailRead(TailRead(mark: mark, position: start)) }
            firstPage = false
            let last = rows.fields(ofRow: rows.rowCount - 1)
            let newPosition = SourcePosition(watermark: last[layout.watermarkIndex], key: layout.keyIndexes.map { last[$0] ?? "" })
            try await emit(rows, advancing: newPosition, nullPosition: nullPosition)
            queued += rows.rowCount
            position = newPosition
            if rows.rowCount < pipeline.batchSize { break }
        }
        if pipeline.source.nullWatermark == .load {
            while true {
                try Task.checkCancellation()
                var rows = CopyTextRows()
                try await context.source.readNullWatermarks(afterKey: nullPosition, limit: pipeline.batchSize, schema: schema, into: &rows)
                if rows.isEmpty { break }
                let last = rows.fields(ofRow: rows.rowCount - 1)
                let newNullPosition = layout.keyIndexes.map { last[$0] ?? "" }
                try await emit(rows, advancing: nil, nullPosition: newNullPosition)
                queued += rows.rowCount
                nullPosition = newNullPosition
                if rows.rowCount < pipeline.batchSize { break }
            }
        }
        if !initialLoadDone {
            initialLoadDone = true
            try await context.target.withConnection { connection in
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "UPDATE \(context.control.pipelines) SET initial_load_done = true WHERE pipeline = $1",
                        binds: context.control.binds(pipeline.name)),
                    logger: logger)
            }
            logger.info("initial load queued", metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.rows": "\(produced)"])
        }
        queued += try await sweepWindow(whole: wholeWindow)
        queued += try await backfillStep()
        if ContinuousClock.now - lastTrim > .seconds(10) {
            lastTrim = .now
            try await trimStream()
        }
    }

    /// Re-reads the lookback window below the checkpoint and queues rows not queued with this content.
    ///
    /// A sweep of the window starts every `lookback_every` and is read in slices of watermark, as many per poll as
    /// keep it on schedule to end within `lookback_every`, so the source sees a steady trickle of small reads
    /// instead of the whole window at once. Where the source keeps row versions, a sweep reads only rows written
    /// since the previous sweep began (``TableSource/changeMark()``). `whole` reads the rest of the sweep now, and so
    /// does the first sweep after a start.
    private mutating func sweepWindow(whole: Bool) async throws -> Int {
        let every = max(pipeline.interval, pipeline.source.lookbackEvery ?? pipeline.source.lookback / 10)
        if sweep == nil {
            guard pipeline.source.lookback > .zero, let position, let watermark = position.watermark,
                sweepStarted.map({ ContinuousClock.now - $0 >= every }) ?? true
            else { return 0 }
            let slices = max(1, min(100, Int((every / pipeline.interval).rounded(.up))))
            let step = pipeline.source.lookback / slices
            let mark = try await context.source.changeMark()
            guard let bounds = try await context.source.watermarks(watermark, minus: (0...slices).map { step * (slices - $0) }) else { return 0 }
            sweepStarted = .now
            sweep = WindowSweep(mark: mark, since: windowMark, bounds: bounds, upper: position, restart: windowMark == nil ? restart : nil)
        }
        guard var current = sweep, let started = sweepStarted else { return 0 }
        let slices = current.bounds.count - 1
        // The first sweep after a start reads the window at once: rows changed while no producer ran are caught up
        // before the live stream, as one backlog.
        let due =
            whole || current.since == nil ? slices : min(slices, Int(((ContinuousClock.now - started) / every * Double(slices)).rounded(.up)) + 1)
        var queued = 0
        while current.next < min(due, slices) {
            let slice = current.next
            let lower = current.bounds[slice]
            let below = slice + 1 < slices ? current.bounds[slice + 1] : nil
            if let restart = current.restart {
                // First sweep after a start: up to the starting checkpoint, every row (an earlier producer may have
                // passed a late commit); above it, only versions no older than the mark taken before this
                // producer's first read — every older one was committed before that read and seen by it.
                if let start = restart.position {
                    queued += try await reread(from: lower, below: below, through: start, after: nil, changedSince: nil)
                }
                queued += try await reread(from: lower, below: below, through: current.upper, after: restart.position, changedSince: restart.mark)
            } else {
                queued += try await reread(from: lower, below: below, through: current.upper, after: nil, changedSince: current.since)
            }
            current.next += 1
        }
        if current.next >= slices {
            recent.forget(below: current.bounds[0])
            windowMark = current.mark
            if let mark = current.mark.flatMap(Int64.init) { tailReads.removeAll { Int64($0.mark).map { $0 <= mark } ?? true } }
            if current.restart != nil { restart = nil }
            sweep = nil
        } else {
            sweep = current
        }
        return queued
    }

    /// Reads one part of a window slice page by page and queues the rows not queued recently with this content.
    private mutating func reread(
        from lower: String, below: String?, through upper: SourcePosition, after start: SourcePosition?, changedSince mark: String?
    ) async throws -> Int {
        var queued = 0
        var after = start
        while true {
            try Task.checkCancellation()
            var rows = CopyTextRows()
            try await context.source.readWindow(
                from: lower, below: below, through: upper, after: after, changedSince: mark, tailReads: mark == nil ? [] : tailReads,
                limit: pipeline.batchSize, schema: schema, into: &rows)
            if rows.isEmpty { break }
            let last = rows.fields(ofRow: rows.rowCount - 1)
            after = SourcePosition(watermark: last[layout.watermarkIndex], key: layout.keyIndexes.map { last[$0] ?? "" })
            var fresh = CopyTextRows(capacity: 0)
            for index in 0..<rows.rowCount where !recent.contains(Self.hash(rows.row(index))) {
                fresh.append(rows.rows(index..<(index + 1)))
            }
            if !fresh.isEmpty {
                logger.debug(
                    "queued rows found in the lookback window",
                    metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.rows": "\(fresh.rowCount)"])
                try await emit(fresh, advancing: nil, nullPosition: nullPosition)
                queued += fresh.rowCount
            }
            if rows.rowCount < pipeline.batchSize { break }
        }
        return queued
    }

    /// Queues `rows` (in entries of `rows_per_entry`) and moves the checkpoint, atomically in Redis; then records
    /// the checkpoint in PostgreSQL.
    private mutating func emit(
        _ rows: CopyTextRows, advancing newPosition: SourcePosition?, nullPosition newNullPosition: [String]?, backfill queued: QueuedBackfill? = nil
    ) async throws {
        // Sequence numbers follow the wall clock (microseconds) when it is ahead, so versions written by
        // another process (a reconcile repair) never outrank what this producer reads later.
        nextSeq = max(nextSeq, Int64(Date().timeIntervalSince1970 * 1_000_000))
        var entries: [QueueEntry] = []
        var current = CopyTextRows(capacity: min(rows.byteCount + rows.rowCount * 20, 4 << 20))
        // Only rows that the next window re-read can see are remembered: at or above (this page's last
        // watermark − lookback).
        let trackWindow = pipeline.source.lookback > .zero
        var floor = Int64.min
        if trackWindow, let last = (newPosition ?? position)?.watermark, let key = WindowMemory.sortKey(ByteBuffer(string: last)) {
            floor = key - Int64(pipeline.source.lookback.seconds * 1_000_000)
        }
        let perEntry = Self.rowsPerEntry(rows: rows.rowCount, limit: pipeline.rowsPerEntry, consumers: pipeline.consumers)
        // A deleted source row is queued with its sequence number negated (docs/QUEUE_FORMAT.md).
        var deleted = rows.deletedRows.makeIterator()
        var nextDeleted = deleted.next()
        for index in 0..<rows.rowCount {
            let row = rows.row(index)
            if trackWindow { recent.remember(Self.hash(row), watermark: rows.rawField(layout.watermarkIndex, ofRow: index), floor: floor) }
            if nextDeleted == index {
                current.appendRow(sequence: -nextSeq, line: row)
                nextDeleted = deleted.next()
            } else {
                current.appendRow(sequence: nextSeq, line: row)
            }
            nextSeq += 1
            if current.rowCount == perEntry {
                entries.append(QueueEntry(schema: schema.fingerprint, rows: current, position: nil))
                current = CopyTextRows(capacity: current.byteCount)
            }
        }
        if !current.isEmpty { entries.append(QueueEntry(schema: schema.fingerprint, rows: current, position: nil)) }
        if let newPosition, !entries.isEmpty { entries[entries.count - 1].position = newPosition }

        var checkpoint: [(field: String, value: String)] = [("seq", String(nextSeq - 1)), ("schema", schema.fingerprint)]
        if let json = ControlTables.json(newPosition ?? position) { checkpoint.append(("position", json)) }
        if let json = ControlTables.json(newNullPosition) { checkpoint.append(("null_position", json)) }
        if let json = ControlTables.json(queued) { checkpoint.append(("backfill", json)) }
        let stream = context.keys.stream
        let checkpointKey = context.keys.checkpoint
        let now = String(Int64(Date().timeIntervalSince1970 * 1_000_000))
        try await context.redis.withConnection { connection in
            try await connection.transaction { batch in
                for entry in entries {
                    var fields = entry.fields()
                    fields.append(("t", ByteBuffer(string: now)))
                    batch.add(XADD(stream, fields: fields))
                }
                batch.add(HSET(checkpointKey, checkpoint))
            }
        }
        writtenSeq = nextSeq - 1
        try await context.target.withConnection { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE \(context.control.pipelines) SET produced_position = coalesce($1::jsonb, produced_position), null_position = coalesce($2::jsonb, null_position),
                          produced_seq = greatest(produced_seq, $3), produced_rows = produced_rows + $4, produced_at = now(), updated_at = now()
                        WHERE pipeline = $5
                        """,
                    binds: context.control.binds(
                        ControlTables.json(newPosition), ControlTables.json(newNullPosition), nextSeq - 1, Int64(rows.rowCount), pipeline.name)),
                logger: logger)
        }
        produced += rows.rowCount
        context.metrics.rowsProduced.increment(by: Int64(rows.rowCount))
        context.metrics.lastProduced.record(Date().timeIntervalSince1970)
        context.reportProgress(phase: initialLoadDone ? .incremental : .initialLoad, producedDelta: rows.rowCount, estimatedTotal: estimatedTotal)
    }

    // MARK: Backfill

    /// The columns of `current` that `previous` did not have.
    static func added(to previous: SourceSchema, in current: SourceSchema) -> [String] {
        current.columns.filter { column in !previous.columns.contains { $0.name == column.name } }.map(\.name)
    }

    /// Whether rows may already be queued or applied (a backfill is needed for columns added now).
    private var hasQueuedRows: Bool { position != nil || nullPosition != nil || writtenSeq > 0 || produced > 0 }

    /// Picks up the backfill recorded in PostgreSQL: from the key Redis's checkpoint says was queued last, or from the
    /// start when Redis does not know it (it lost the queue). A finished backfill whose last rows may have been lost
    /// with the queue (not applied yet) runs again. Columns added while no producer ran start one.
    private mutating func resumeBackfill(added: [String], appliedSeq: Int64) async throws {
        let control = context.control
        let logger = self.logger
        let stored = try await context.target.withConnection { connection in try await control.loadBackfill(connection, logger: logger) }
        backfill = nil
        if !added.isEmpty, hasQueuedRows {
            try await startBackfill(columns: added, previous: stored)
            return
        }
        guard let stored else { return }
        if stored.finishedAt != nil {
            guard queueLost, stored.lastSeq > appliedSeq else { return }
            logger.warning(
                "Redis lost the queue before a backfill's last rows were applied; backfilling again",
                metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.columns": "\(stored.columns.joined(separator: ","))"])
            try await startBackfill(columns: stored.columns, previous: nil)
            return
        }
        var resumed = stored
        if queuedBackfill?.id == stored.id {
            resumed.after = queuedBackfill?.after
        } else {
            resumed.after = nil
            resumed.rows = 0
        }
        backfill = resumed
        logger.info(
            "resuming a backfill of new source columns",
            metadata: [
                "ferry.pipeline": "\(pipeline.name)", "ferry.columns": "\(resumed.columns.joined(separator: ","))", "ferry.rows": "\(resumed.rows)",
            ])
    }

    /// Starts a backfill of `columns` (with those of an unfinished one, which this one replaces) when rows were
    /// queued before the source had them.
    private mutating func startBackfill(columns: [String], previous: ControlTables.Backfill? = nil) async throws {
        guard hasQueuedRows else { return }
        var all = (previous ?? backfill).flatMap { $0.finishedAt == nil ? $0.columns : nil } ?? []
        for column in columns where !all.contains(column) { all.append(column) }
        let total = (try? await context.source.estimatedRowCount()).map(Int64.init)
        let started = ControlTables.Backfill(id: nextSeq, columns: all, after: nil, total: total, lastSeq: 0)
        let control = context.control
        let logger = self.logger
        try await context.target.withConnection { connection in try await control.saveBackfill(started, connection: connection, logger: logger) }
        try await control.recordEvent(
            "backfill_started", entries: [], rows: 0,
            detail: "columns \(all.joined(separator: ", ")) added at the source; reading every row again by key",
            session: context.target, logger: logger)
        backfill = started
        logger.notice(
            "new source columns: backfilling them for the rows the mirror has (the source is read again by key, between polls)",
            metadata: [
                "ferry.pipeline": "\(pipeline.name)", "ferry.columns": "\(all.joined(separator: ","))",
                "ferry.estimated_rows": "\(total.map(String.init) ?? "unknown")",
            ])
    }

    /// Queues the backfill's next pages, for at most ``backfillSlice``; returns the rows queued.
    private mutating func backfillStep() async throws -> Int {
        guard var current = backfill else { return 0 }
        let started = ContinuousClock.now
        var queued = 0
        let control = context.control
        let logger = self.logger
        while true {
            try Task.checkCancellation()
            var rows = CopyTextRows()
            try await context.source.readByKey(afterKey: current.after, limit: pipeline.batchSize, schema: schema, into: &rows)
            if !rows.isEmpty {
                let last = rows.fields(ofRow: rows.rowCount - 1)
                let after = layout.keyIndexes.map { last[$0] ?? "" }
                try await emit(rows, advancing: nil, nullPosition: nullPosition, backfill: QueuedBackfill(id: current.id, after: after))
                current.after = after
                current.rows += Int64(rows.rowCount)
                current.lastSeq = nextSeq - 1
                queued += rows.rowCount
            }
            let done = rows.rowCount < pipeline.batchSize
            if done { current.finishedAt = Date() }
            let progress = current
            try await context.target.withConnection { connection in try await control.saveBackfill(progress, connection: connection, logger: logger) }
            backfill = done ? nil : current
            if done {
                try await control.recordEvent(
                    "backfill_done", entries: [], rows: Int(current.rows), detail: "columns \(current.columns.joined(separator: ", "))",
                    session: context.target, logger: logger)
                logger.notice(
                    "backfill of new source columns queued every row",
                    metadata: [
                        "ferry.pipeline": "\(pipeline.name)", "ferry.columns": "\(current.columns.joined(separator: ","))",
                        "ferry.rows": "\(current.rows)",
                    ])
                break
            }
            if ContinuousClock.now - started >= Self.backfillSlice { break }
        }
        return queued
    }

    /// Keeps a tail read for the sweeps; the marks of successive reads never decrease.
    private mutating func recordTailRead(_ read: TailRead) {
        if tailReads.count >= Self.tailReadLimit { tailReads.removeFirst(tailReads.count / 4) }
        tailReads.append(read)
    }

    /// Trims entries every group has acknowledged (never anything pending or undelivered).
    private func trimStream() async throws {
        let stream = context.keys.stream
        let groups = try await context.redis.send(XINFOGROUPS(stream))
        guard !groups.isEmpty else { return }
        var floor: RedisStreamID?
        for group in groups {
            var limit = RedisStreamID(group.lastDeliveredID) ?? .zero
            limit.sequence += 1
            if group.pending > 0,
                let smallest = try await context.redis.send(XPENDING(stream, group: group.name)).smallestID.flatMap({ RedisStreamID($0) })
            {
                limit = min(limit, smallest)
            }
            floor = floor.map { min($0, limit) } ?? limit
        }
        guard let floor, floor > .zero else { return }
        let removed = try await context.redis.send(XTRIM(stream, .minID(floor.description, approximate: true)))
        if removed > 0 {
            logger.debug("trimmed acknowledged entries", metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.removed": "\(removed)"])
        }
    }

    /// Rows per entry for a page of `rows`: at most `limit`, and a small page (the live stream after the initial
    /// load) is spread over up to one entry per consumer, at least 50 rows each, so the consumers apply it in
    /// parallel instead of one of them applying all of it.
    static func rowsPerEntry(rows: Int, limit: Int, consumers: Int) -> Int {
        let share = (rows + max(1, consumers) - 1) / max(1, consumers)
        return max(1, min(limit, max(50, share)))
    }

    /// FNV-1a over a row's bytes.
    static func hash(_ row: ByteBuffer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        row.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        return hash
    }
}
