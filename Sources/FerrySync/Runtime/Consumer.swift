import CoreMetrics
import FerryCore
import FerryPostgres
import FerryRESP
import FerryRedis
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Reads a pipeline's stream as a member of its consumer group and applies the rows to the mirror.
///
/// Entries are acknowledged only after the transaction that applied them commits. A restarted consumer re-reads
/// its own pending entries first; entries left pending by a consumer that stopped are claimed after
/// `claim_idle`. A row PostgreSQL rejects is isolated by bisecting its batch and goes to the dead letters with
/// the reason; the rest of the batch is applied. An entry delivered `max_deliveries` times without being
/// applied goes to the dead letters whole.
struct Consumer {
    let context: PipelineContext
    let name: String
    private var applier: BatchApplier
    private var claimCursor = "0-0"
    private var lastClaim = ContinuousClock.now
    private(set) var applied = 0

    init(context: PipelineContext, name: String, logger: Logger) {
        self.context = context
        self.name = name
        self.applier = BatchApplier(
            context: context,
            session: PostgresSession(endpoint: context.targetEndpoint, key: "postgres", logger: logger)
        )
    }

    /// Closes the consumer's PostgreSQL connection.
    func close() async {
        await applier.session.close()
    }

    var pipeline: PipelineConfiguration { context.pipeline }
    /// Queue entries in one apply batch: what a read or a claim takes at a time.
    var entriesPerBatch: Int { max(1, pipeline.applyBatchRows / max(1, pipeline.rowsPerEntry)) }
    var logger: Logger { context.logger }
    var stream: String { context.keys.stream }

    /// Consumes until the task is cancelled or shut down gracefully; `untilDrained` returns once nothing is left
    /// to read, pending or claimable (`ferry sync --once`).
    mutating func run(untilDrained: (@Sendable () -> Bool)? = nil) async throws {
        var attempt = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await context.redis.withDedicatedConnection { connection in
                    try await consume(on: connection, untilDrained: untilDrained)
                }
                return
            } catch let error as RedisError where error.code != .poolClosed && !Task.isCancelled {
                context.metrics.retries.increment()
                let delay = Backoff(base: .milliseconds(200), maximum: .seconds(5)).delay(attempt: attempt)
                attempt += 1
                logger.warning("queue unavailable, retrying", metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.error": "\(error)"])
                await applier.recordError("Redis: \(error)")
                try? await Task.sleep(for: delay)
            }
        }
    }

    private mutating func consume(on connection: RedisConnection, untilDrained: (@Sendable () -> Bool)?) async throws {
        _ = try await connection.send(XGROUPCREATE(stream, group: QueueKeys.group, id: "0", makeStream: true))
        // First this consumer's own pending entries (a restart after a crash), oldest first.
        var cursor = "0-0"
        while true {
            let read = try await connection.send(
                XREADGROUP(
                    group: QueueKeys.group, consumer: name, streams: [(key: stream, id: cursor)],
                    count: entriesPerBatch))
            let entries = read.first?.entries ?? []
            if entries.isEmpty { break }
            cursor = entries.last!.id
            try await process(entries, on: connection, checkDeliveries: true)
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if ContinuousClock.now - lastClaim > pipeline.claimIdle / 2 {
                lastClaim = .now
                try await claimAbandoned(on: connection)
            }
            let read = try await connection.send(
                XREADGROUP(group: QueueKeys.group, consumer: name, streams: [(key: stream, id: ">")], count: entriesPerBatch, block: pipeline.maxWait)
            )
            let entries = read.first?.entries ?? []
            if entries.isEmpty {
                if let untilDrained, untilDrained(), try await isDrained(on: connection) { return }
                continue
            }
            try await process(entries, on: connection, checkDeliveries: false)
        }
    }

    /// Nothing pending for the group and nothing undelivered.
    private func isDrained(on connection: RedisConnection) async throws -> Bool {
        let groups = try await connection.send(XINFOGROUPS(stream))
        guard let group = groups.first(where: { $0.name == QueueKeys.group }) else { return true }
        if group.pending > 0 { return false }
        let info = try await connection.send(XINFOSTREAM(stream))
        return info.length == 0 || RedisStreamID(group.lastDeliveredID) ?? .zero >= RedisStreamID(info.lastGeneratedID) ?? .zero
    }

    /// Takes over entries another consumer left pending for longer than `claim_idle`.
    /// Claims entries left pending by stopped consumers, one apply batch at a time: a claim counts as a delivery,
    /// so claiming more than this consumer applies next would inflate the delivery counts of entries it never
    /// tried (and a consumer killed while holding them would push good entries toward the dead letters).
    private mutating func claimAbandoned(on connection: RedisConnection) async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let claim = try await connection.send(
                XAUTOCLAIM(
                    stream, group: QueueKeys.group, consumer: name, minimumIdle: pipeline.claimIdle, start: claimCursor, count: entriesPerBatch))
            claimCursor = claim.nextStart
            guard !claim.entries.isEmpty else { return }
            logger.notice(
                "claimed entries left pending by a stopped consumer",
                metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.entries": "\(claim.entries.count)"])
            try await process(claim.entries, on: connection, checkDeliveries: true)
            if claim.nextStart == "0-0" { return }
        }
    }

    private mutating func process(_ entries: [RedisStreamEntry], on connection: RedisConnection, checkDeliveries: Bool) async throws {
        var deliveries: [String: Int] = [:]
        if checkDeliveries, let first = entries.first, let last = entries.last {
            let pending = try await connection.send(
                XPENDINGEXTENDED(stream, group: QueueKeys.group, start: first.id, end: last.id, count: entries.count + 10, consumer: name))
            for item in pending { deliveries[item.id] = item.deliveries }
        }
        var batch: [(id: String, entry: QueueEntry)] = []
        var done: [String] = []
        var isolated: Set<String> = []
        for raw in entries {
            guard raw.fields != nil else {
                done.append(raw.id)  // deleted while pending: nothing to apply
                continue
            }
            let entry: QueueEntry
            do {
                entry = try QueueEntry(raw)
            } catch {
                logger.error(
                    "unreadable queue entry moved to the dead letters",
                    metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.entry": "\(raw.id)", "ferry.error": "\(error)"])
                try await deadLetterEntry(raw.id, rows: nil, reason: "\(error)", deliveries: deliveries[raw.id])
                done.append(raw.id)
                continue
            }
            // An entry delivered max_deliveries times is applied on its own (rows PostgreSQL rejects still go to
            // the dead letters one by one); one that keeps stopping consumers even then goes there whole.
            if let count = deliveries[raw.id], count >= pipeline.maxDeliveries * 2 {
                let reason = "delivered \(count) times without being applied (a consumer stopped while applying it each time)"
                logger.error(
                    "queue entry moved to the dead letters",
                    metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.entry": "\(raw.id)", "ferry.reason": "\(reason)"])
                try await deadLetterEntry(raw.id, rows: entry, reason: reason, deliveries: count)
                done.append(raw.id)
                continue
            }
            if let count = deliveries[raw.id], count >= pipeline.maxDeliveries {
                logger.warning(
                    "queue entry delivered many times; applying it on its own",
                    metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.entry": "\(raw.id)", "ferry.deliveries": "\(count)"])
                isolated.insert(raw.id)
            }
            batch.append((raw.id, entry))
        }
        if !done.isEmpty { _ = try await connection.send(XACK(stream, group: QueueKeys.group, ids: done)) }

        // Consecutive entries of one schema, up to apply_batch_rows rows per transaction.
        var start = 0
        while start < batch.count {
            var end = start + 1
            var rows = batch[start].entry.rows.rowCount
            while end < batch.count, batch[end].entry.schema == batch[start].entry.schema,
                rows + batch[end].entry.rows.rowCount <= pipeline.applyBatchRows, !isolated.contains(batch[start].id),
                !isolated.contains(batch[end].id)
            {
                rows += batch[end].entry.rows.rowCount
                end += 1
            }
            try await applyEntries(Array(batch[start..<end]), on: connection)
            start = end
        }
    }

    private mutating func applyEntries(_ entries: [(id: String, entry: QueueEntry)], on connection: RedisConnection) async throws {
        var rows = CopyTextRows(capacity: entries.reduce(0) { $0 + $1.entry.rows.byteCount })
        for item in entries { rows.append(item.entry.rows) }
        let position = entries.last { $0.entry.position != nil }?.entry.position
        let maxSeq = entries.map { Self.lastSequence($0.entry.rows) }.max() ?? 0
        let ids = entries.map(\.id)
        let clock = ContinuousClock()
        var attempt = 0
        var reprepared = false
        let heartbeat = Heartbeat(stream: stream, consumer: name, ids: ids, interval: pipeline.claimIdle / 3, connection: connection)
        while true {
            try Task.checkCancellation()
            try await heartbeat.beat()
            let (layout, statements) = try await applier.layout(for: entries[0].entry.schema)
            let started = clock.now
            do {
                try await heartbeat.keepingAlive {
                    try await applier.apply(rows, layout: layout, statements: statements, maxSeq: maxSeq, position: position)
                }
                _ = try await connection.send(XACK(stream, group: QueueKeys.group, ids: ids))
                finished(rows.rowCount, entries: entries, elapsed: clock.now - started)
                return
            } catch let error where Self.isDataError(error) {
                logger.warning(
                    "a batch was rejected; isolating the rows PostgreSQL refuses",
                    metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.rows": "\(rows.rowCount)", "ferry.error": "\(Self.reason(error))"])
                let (good, bad) = try await isolate(
                    rows, layout: layout, statements: statements, entries: entries, position: position, heartbeat: heartbeat)
                _ = try await connection.send(XACK(stream, group: QueueKeys.group, ids: ids))
                finished(good, entries: entries, elapsed: clock.now - started)
                context.metrics.deadLetters.increment(by: Int64(bad))
                return
            } catch let error as FerryError where error.code != .unreachable {
                // A mirror that cannot take this schema (type change, permissions): the pipeline stops here.
                await applier.recordError(error.description)
                throw error
            } catch {
                if !reprepared, PostgresDiagnosis.sqlState(of: error)?.hasPrefix("42") == true {
                    // The mirror was changed or dropped by someone: create or migrate it again, once.
                    reprepared = true
                    applier.reset()
                    continue
                }
                context.metrics.retries.increment()
                context.metrics.errors.increment()
                let message = Self.reason(error)
                await applier.recordError(message)
                let delay = Backoff(base: .milliseconds(200), maximum: .seconds(10)).delay(attempt: attempt)
                attempt += 1
                logger.warning(
                    "cannot apply a batch, retrying",
                    metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.error": "\(message)", "ferry.retry_in": "\(delay)"])
                try await heartbeat.sleep(for: delay)
            }
        }
    }

    private mutating func finished(_ count: Int, entries: [(id: String, entry: QueueEntry)], elapsed: Duration) {
        applied += count
        context.metrics.rowsApplied.increment(by: Int64(count))
        context.metrics.batchLatency.recordNanoseconds(Int64(elapsed.seconds * 1e9))
        context.metrics.lastApplied.record(Date().timeIntervalSince1970)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
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

    /// Applies `rows` in halves until every row that PostgreSQL rejects on its own is found; those go to the
    /// dead letters. Returns the number of rows applied and rejected.
    private func isolate(
        _ rows: CopyTextRows, layout: MirrorLayout, statements: MirrorStatements, entries: [(id: String, entry: QueueEntry)],
        position: SourcePosition?, heartbeat: Heartbeat
    ) async throws -> (applied: Int, rejected: Int) {
        try await heartbeat.beat()
        if rows.rowCount == 1 {
            do {
                try await applier.apply(rows, layout: layout, statements: statements, maxSeq: Self.lastSequence(rows), position: nil)
                return (1, 0)
            } catch let error where Self.isDataError(error) {
                let sequence = Self.lastSequence(rows)
                let entryID = entries.first { Self.sequenceRange($0.entry.rows).contains(sequence) }?.id
                let reason = Self.reason(error)
                logger.error(
                    "row moved to the dead letters",
                    metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.entry": "\(entryID ?? "?")", "ferry.reason": "\(reason)"])
                try await applier.deadLetter(
                    rows, layout: layout, statements: statements, reason: reason, sqlState: PostgresDiagnosis.sqlState(of: error), streamID: entryID,
                    deliveries: nil)
                return (0, 1)
            }
        }
        let middle = rows.rowCount / 2
        var applied = 0
        var rejected = 0
        for half in [rows.rows(0..<middle), rows.rows(middle..<rows.rowCount)] {
            do {
                try await applier.apply(half, layout: layout, statements: statements, maxSeq: Self.lastSequence(half), position: nil)
                applied += half.rowCount
            } catch let error where Self.isDataError(error) {
                let result = try await isolate(half, layout: layout, statements: statements, entries: entries, position: nil, heartbeat: heartbeat)
                applied += result.applied
                rejected += result.rejected
            }
        }
        return (applied, rejected)
    }

    private func deadLetterEntry(_ id: String, rows entry: QueueEntry?, reason: String, deliveries: Int?) async throws {
        var applier = self.applier
        guard let entry else {
            _ = try await context.redis.send(
                XADD(context.keys.deadLetters, fields: [(name: "entry", value: id), (name: "reason", value: reason)], trim: .maxLength(100_000)))
            return
        }
        let (layout, statements) = try await applier.layout(for: entry.schema)
        for index in 0..<entry.rows.rowCount {
            try await applier.deadLetter(
                entry.rows.rows(index..<(index + 1)), layout: layout, statements: statements, reason: reason, sqlState: nil, streamID: id,
                deliveries: deliveries)
        }
        context.metrics.deadLetters.increment(by: Int64(entry.rows.rowCount))
    }

    /// PostgreSQL refused the data itself (a value, a constraint), not the connection or the statement.
    static func isDataError(_ error: any Error) -> Bool {
        guard let state = PostgresDiagnosis.sqlState(of: error) else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23") || state == "42804" || state == "21000"
    }

    static func reason(_ error: any Error) -> String {
        guard let message = PostgresDiagnosis.serverMessage(of: error) else {
            if let error = error as? FerryError { return error.description }
            return "\(error)"
        }
        var text = message
        if let state = PostgresDiagnosis.sqlState(of: error) { text += " (SQLSTATE \(state))" }
        if let detail = PostgresDiagnosis.detail(of: error) { text += ": \(detail)" }
        return text
    }

    /// The sequence number (first field) of the last row.
    static func lastSequence(_ rows: CopyTextRows) -> Int64 {
        guard rows.rowCount > 0, let field = rows.rawField(0, ofRow: rows.rowCount - 1) else { return 0 }
        return Int64(String(buffer: field)) ?? 0
    }

    static func sequenceRange(_ rows: CopyTextRows) -> ClosedRange<Int64> {
        guard rows.rowCount > 0, let first = rows.rawField(0, ofRow: 0), let low = Int64(String(buffer: first)) else { return 0...0 }
        return low...max(low, lastSequence(rows))
    }
}

/// Keeps entries a consumer is still working on from looking abandoned: `XCLAIM … JUSTID` to itself resets their
/// idle time (without counting a delivery), so another consumer does not claim them during a long apply.
final class Heartbeat: Sendable {
    let stream: String
    let consumer: String
    let ids: [String]
    let interval: Duration
    let connection: RedisConnection
    private let last = Mutex(ContinuousClock.now)

    init(stream: String, consumer: String, ids: [String], interval: Duration, connection: RedisConnection) {
        self.stream = stream
        self.consumer = consumer
        self.ids = ids
        self.interval = interval
        self.connection = connection
    }

    /// Runs `body` (a transaction that may take long) while beating every `interval` in a child task.
    func keepingAlive<T>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    try await Task.sleep(for: interval)
                    try await beat()
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Sleeps, beating meanwhile, so entries waiting for a retry stay this consumer's.
    func sleep(for duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: min(interval, deadline - ContinuousClock.now))
            try await beat()
        }
    }

    func beat() async throws {
        let due = last.withLock { last -> Bool in
            guard ContinuousClock.now - last >= interval else { return false }
            last = .now
            return true
        }
        guard due else { return }
        _ = try await connection.send(XCLAIM(stream, group: QueueKeys.group, consumer: consumer, minimumIdle: .zero, ids: ids, justID: true))
    }
}
